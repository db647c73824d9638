"""The trainer under full recipes: feature and attention terms, schedules, semi-supervised
labels, and resuming from a checkpoint."""

import functools

import pytest
import torch

from nas_student.distill import evaluate, predict, train
from nas_student.distill.losses import IGNORE_INDEX
from nas_student.distill.recipe import AttentionKD, FeatureKD, Recipe
from nas_student.distill.trainer import hide_labels
from nas_student.families import ModelIO, build

MLP = {"family": "mlp", "layers": [{"width": 24, "dropout": 0.2}, {"width": 16}], "norm": "batch"}
IO = ModelIO(input_shape=(6,), num_outputs=3)


def _data(n=240):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, :3].argmax(1)).long()
    return x, y


@functools.lru_cache(maxsize=1)
def _teacher():
    torch.manual_seed(1)
    t = build({"family": "mlp", "layers": [{"width": 64}, {"width": 64}, {"width": 32}]}, IO)
    x, y = _data()
    train(t, x, y, Recipe(steps=300, lr=1e-2))
    return t.eval()


def _weights(m):
    return {k: v.clone() for k, v in m.state_dict().items()}


def test_hide_labels_keeps_the_fraction_per_class():
    y = torch.arange(10).repeat_interleave(50)
    h = hide_labels(y, 0.1, seed=0)
    kept = h != IGNORE_INDEX
    assert int(kept.sum()) == 50 and all(int((h == c).sum()) == 5 for c in range(10))
    assert torch.equal(h[kept], y[kept])
    assert torch.equal(h, hide_labels(y, 0.1, seed=0)) and not torch.equal(h, hide_labels(y, 0.1, seed=1))


def test_semi_supervised_uses_only_the_kept_labels_for_ce():
    x, y = _data()
    recipe = Recipe(steps=100, lr=1e-2, labelled_fraction=0.05, alpha=0.0, beta=1.0)
    # CE on 5% of the labels: the same training as on labels already hidden by hand
    runs = []
    for yy, r in ((y, recipe), (hide_labels(y, 0.05, seed=0), recipe.model_copy(update={"labelled_fraction": 1.0}))):
        torch.manual_seed(0)
        m = build(MLP, IO)
        train(m, x, yy, r, teacher_logits=torch.zeros(len(x), 3), seed=0)
        runs.append(_weights(m))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    torch.manual_seed(0)
    m = build(MLP, IO)
    train(m, x, y, recipe.model_copy(update={"labelled_fraction": 1.0}), teacher_logits=torch.zeros(len(x), 3), seed=0)
    assert not all(torch.equal(runs[0][k], v) for k, v in m.state_dict().items())


def test_unlabelled_rows_are_distilled_and_an_unlabelled_batch_is_finite():
    x, y = _data()
    teacher = _teacher()
    t_logits = predict(teacher, x)
    torch.manual_seed(0)
    m = build(MLP, IO)
    res = train(m, x, torch.full_like(y, IGNORE_INDEX), Recipe(steps=200, lr=1e-2), teacher_logits=t_logits)
    assert res.parts["ce"] == 0.0
    assert evaluate(m, x, y, t_logits)["agreement"] > 0.85


def test_feature_hints_train_and_pull_features_together():
    x, y = _data()
    teacher = _teacher()
    t_logits = predict(teacher, x)
    recipe = Recipe(steps=150, lr=1e-2, features=FeatureKD(weight=1.0))
    torch.manual_seed(0)
    m = build(MLP, IO)
    first = train(m, x, y, recipe.model_copy(update={"steps": 1}), teacher_logits=t_logits, teacher=teacher)
    torch.manual_seed(0)
    m = build(MLP, IO)
    last = train(m, x, y, recipe, teacher_logits=t_logits, teacher=teacher)
    assert set(last.parts) == {"kd", "ce", "features"}
    assert last.parts["features"] < 0.5 * first.parts["features"]


def test_attention_transfer_between_transformers():
    io = ModelIO(input_shape=(8,), num_outputs=11, input_dtype="int64", vocab_size=11, per_token=True, causal=True)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 11, (64, 8), generator=g)
    y = torch.roll(x, -1, 1)
    torch.manual_seed(0)
    teacher = build({"family": "transformer", "layers": 2, "d_model": 16, "heads": 4}, io).eval()
    student = build({"family": "transformer", "layers": 1, "d_model": 8, "heads": 2}, io)
    recipe = Recipe(steps=60, batch_size=16, lr=1e-2, attention=AttentionKD(weight=1.0))
    start = {k: v.clone() for k, v in student.state_dict().items()}
    res = train(student, x, y, recipe, teacher_logits=predict(teacher, x), teacher=teacher)
    assert "attention" in res.parts and 0 < res.parts["attention"] < 1  # an MSE of attention weights in [0, 1]
    without = build({"family": "transformer", "layers": 1, "d_model": 8, "heads": 2}, io)
    without.load_state_dict(start)
    train(without, x, y, Recipe(steps=60, batch_size=16, lr=1e-2), teacher_logits=predict(teacher, x))
    assert not all(torch.equal(student.state_dict()[k], without.state_dict()[k]) for k in start)  # the term acts
    with pytest.raises(Exception, match="Transformer layers"):
        train(build(MLP, IO), *_data(), recipe, teacher_logits=torch.zeros(240, 3), teacher=_teacher())


def test_temperature_curriculum_changes_training():
    x, y = _data()
    t_logits = predict(_teacher(), x)
    out = []
    for temp in (4.0, {"kind": "linear", "start": 8.0, "end": 1.0}):
        torch.manual_seed(0)
        m = build(MLP, IO)
        train(m, x, y, Recipe(steps=50, lr=1e-2, temperature=temp), teacher_logits=t_logits)
        out.append(_weights(m))
    assert not all(torch.equal(out[0][k], out[1][k]) for k in out[0])


class _Stop(Exception):
    pass


def test_resume_from_checkpoint_ends_where_an_uninterrupted_run_ends(tmp_path):
    x, y = _data()
    teacher = _teacher()
    t_logits = predict(teacher, x)
    recipe = Recipe(steps=90, batch_size=50, lr=1e-2, features=FeatureKD(weight=0.5),
                    temperature={"kind": "cosine", "start": 6.0, "end": 2.0})

    def run(ckpt=None, stop_at=None):
        torch.manual_seed(0)
        m = build(MLP, IO)  # dropout: the random state must be restored too

        def on_step(s):
            if s == stop_at:
                raise _Stop
            return False
        train(m, x, y, recipe, teacher_logits=t_logits, teacher=teacher, seed=5, checkpoint=ckpt,
              checkpoint_every=20, on_step=on_step)
        return _weights(m)

    whole = run()
    ckpt = tmp_path / "kd.ckpt"
    with pytest.raises(_Stop):
        run(ckpt, stop_at=47)  # killed 7 steps after the checkpoint at step 40
    assert ckpt.exists()
    resumed = run(ckpt)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    with pytest.raises(Exception, match="another recipe"):
        torch.manual_seed(0)
        train(build(MLP, IO), x, y, recipe.model_copy(update={"steps": 91}), teacher_logits=t_logits,
              teacher=teacher, checkpoint=ckpt)


def test_the_unlabelled_pool_joins_the_distillation_set():
    from nas_student.tasks.base import Split, Task

    x, y = _data()
    task = Task("t", IO, Split(x[:100], y[:100]), Split(x[100:150], y[100:150]), Split(x[150:], y[150:]),
                _teacher(), unlabelled=x[150:190])
    xs, ys = task.distillation_set()
    assert xs.shape == (140, 6) and torch.equal(xs[100:], x[150:190])
    assert torch.equal(ys[:100], y[:100]) and bool((ys[100:] == IGNORE_INDEX).all())
