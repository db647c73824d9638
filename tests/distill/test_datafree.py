"""Data-free synthesis: each loss term against hand-computed values, then the inputs made from
the built-in teachers (confident, balanced, diverse, BN statistics matched, deterministic)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from nas_student.distill import ProxyRecipe, predict, train
from nas_student.distill.datafree import (
    DataFreeSettings,
    _BNStats,
    _init,
    bn_stat_loss,
    diversity_loss,
    synthesis_loss,
    synthesize,
    tv_loss,
)
from nas_student.errors import NasStudentError
from nas_student.families import build
from nas_student.families.base import ModelIO
from nas_student.tasks.datafree import data_free_task

DIGITS = DataFreeSettings(enabled=True, input_range=(0.0, 1.0))
N = 100  # 10 per class


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Synthesis is many small backward passes: on a shared machine, extra threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- loss terms, by hand

def test_bn_stat_loss_hand_computed() -> None:
    # channel 0 holds 1, 3, 5, 7 (mean 4, biased var 5); channel 1 holds 0, 0, 2, 2 (mean 1, var 1)
    x = torch.tensor([[[[1.0, 3.0]], [[0.0, 0.0]]], [[[5.0, 7.0]], [[2.0, 2.0]]]])  # (2, 2, 1, 2)
    loss = bn_stat_loss(x, torch.tensor([4.0, 0.0]), torch.tensor([5.0, 3.0]))
    # ||(0, 1)|| + ||(0, -2)|| = 1 + 2
    assert float(loss) == pytest.approx(3.0)
    assert float(bn_stat_loss(x, torch.tensor([4.0, 1.0]), torch.tensor([5.0, 1.0]))) == pytest.approx(0.0)
    # (N, C) rows, as BatchNorm1d sees them: column stats; ||(3, 4)|| = 5 on the means
    flat = torch.tensor([[3.0, 4.0], [3.0, 4.0]])
    assert float(bn_stat_loss(flat, torch.zeros(2), torch.zeros(2))) == pytest.approx(5.0)


def test_bn_hooks_sum_layers_with_the_first_weighted() -> None:
    model = nn.Sequential(nn.BatchNorm1d(2), nn.BatchNorm1d(2)).eval()
    model[1].running_mean.fill_(1.0)
    x = torch.tensor([[3.0, 4.0], [3.0, 4.0]])
    with torch.no_grad():  # by hand, before the hooks: the second layer sees the first's output
        first = float(bn_stat_loss(x, torch.zeros(2), torch.ones(2)))
        second = float(bn_stat_loss(model[0](x), torch.ones(2), torch.ones(2)))
    hooks = _BNStats(model, first_multiplier=10.0)
    with torch.no_grad():
        model(x)
    assert float(hooks.pop()) == pytest.approx(10 * first + second)
    assert hooks.terms == []
    hooks.close()
    model(x)
    assert hooks.terms == []  # hooks removed


def test_tv_loss_hand_computed() -> None:
    x = torch.tensor([[[[0.0, 1.0], [3.0, 5.0]]]])
    # along height: |3-0|, |5-1| -> mean 3.5; along width: |1-0|, |5-3| -> mean 1.5
    assert float(tv_loss(x)) == pytest.approx(5.0)
    assert float(tv_loss(torch.ones(3, 1, 4, 4))) == 0.0
    assert float(tv_loss(torch.randn(4, 7))) == 0.0  # flat vectors have no neighbours


def test_diversity_loss_hand_computed() -> None:
    same = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    classes = torch.tensor([0, 0, 1, 1])
    assert float(diversity_loss(same, classes)) == pytest.approx(1.0)  # collapsed within each class
    apart = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert float(diversity_loss(apart, torch.tensor([0, 0, 1, 1]))) == pytest.approx(0.0)
    # pairs across classes do not count: identical rows in different classes score nothing
    assert float(diversity_loss(apart, torch.tensor([0, 1, 0, 1]))) == pytest.approx(1.0)
    assert float(diversity_loss(apart, torch.tensor([0, 1, 2, 3]))) == 0.0


def test_settings_forbid_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        DataFreeSettings(sample=10)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        DataFreeSettings(validation="test")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="low < high"):
        DataFreeSettings(input_range=(1.0, 0.0))
    assert DataFreeSettings.model_validate({"input_range": [0, 1]}).input_range == (0.0, 1.0)  # YAML list


def test_batches_near_equal_and_progress_reported(digits_task) -> None:
    seen: list[tuple[int, int]] = []
    s = DIGITS.model_copy(update={"steps": 1, "batch_size": 4})
    x = synthesize(digits_task.teacher, digits_task.io, 9, s, progress=lambda d, t: seen.append((d, t)))
    assert x.shape == (9, 1, 8, 8)
    assert seen == [(3, 9), (6, 9), (9, 9)]  # 3 + 3 + 3, not 4 + 4 + 1


# ---------------------------------------------------------------- digits (DeepInversion)

@pytest.fixture(scope="module")
def synth(digits_task):
    return synthesize(digits_task.teacher, digits_task.io, N, DIGITS, seed=0)


def test_digits_inputs_are_confident_and_class_balanced(digits_task, synth) -> None:
    assert synth.shape == (N, 1, 8, 8) and synth.dtype == torch.float32
    assert float(synth.min()) >= 0.0 and float(synth.max()) <= 1.0
    probs = predict(digits_task.teacher, synth).softmax(-1)
    assert float(probs.max(-1).values.mean()) >= 0.9
    assigned = torch.arange(N) % 10
    assert float((probs.argmax(-1) == assigned).float().mean()) >= 0.95
    counts = torch.bincount(probs.argmax(-1), minlength=10)
    assert int(counts.min()) >= 8 and int(counts.max()) <= 12
    # random inputs of the same range: the teacher is far from confident and not balanced
    noise = predict(digits_task.teacher, torch.rand(N, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    assert float((noise.argmax(-1) == assigned).float().mean()) < 0.3


def _within_class_distance(x: torch.Tensor, classes: torch.Tensor) -> float:
    return float(torch.stack([torch.pdist(x[classes == c].flatten(1)).mean() for c in classes.unique()]).mean())


def test_digits_inputs_are_diverse(digits_task, synth) -> None:
    assigned = torch.arange(N) % 10
    spread = _within_class_distance(synth, assigned)
    real = _within_class_distance(digits_task.train.x, digits_task.train.y)
    assert spread > 0.5 * real  # same-class inputs differ about as much as real digits do
    collapsed = synth[assigned]  # sample c stands for its whole class: no diversity at all
    assert _within_class_distance(collapsed, assigned) == 0.0
    # in the teacher's feature space too: far from the collapsed value 1
    feats = digits_task.teacher.forward_features(synth)[1]["pooled"]
    assert float(diversity_loss(feats, assigned)) < 0.95
    assert float(diversity_loss(digits_task.teacher.forward_features(collapsed)[1]["pooled"],
                                assigned)) == pytest.approx(1.0, abs=1e-5)


def test_digits_bn_statistics_matched(digits_task, synth) -> None:
    teacher = digits_task.teacher
    hooks = _BNStats(teacher)
    try:
        def bn(x: torch.Tensor) -> float:
            with torch.no_grad():
                teacher(x)
            return float(hooks.pop())

        start = _init(N, digits_task.io, DIGITS, torch.Generator().manual_seed(0))
        real = bn(digits_task.train.x[:N])
        assert bn(synth) < 0.25 * bn(start)
        assert bn(synth) < 2.0 * real  # close to what a batch of real digits gives
    finally:
        hooks.close()


def test_synthesis_loss_terms_and_total(digits_task) -> None:
    s = DIGITS.model_copy(update={"l2_weight": 0.5})
    x = torch.rand(20, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    classes = torch.arange(20) % 10
    hooks = _BNStats(digits_task.teacher, s.first_bn_multiplier)
    try:
        terms = synthesis_loss(digits_task.teacher, x, classes, hooks, s)
    finally:
        hooks.close()
    assert float(terms["ce"]) == pytest.approx(float(F.cross_entropy(digits_task.teacher(x), classes)), rel=1e-5)
    assert float(terms["tv"]) == pytest.approx(float(tv_loss(x)))
    assert float(terms["l2"]) == pytest.approx(float(x.flatten(1).norm(dim=1).mean()), rel=1e-6)
    expected = (s.bn_weight * terms["bn"] + s.ce_weight * terms["ce"] + s.tv_weight * terms["tv"]
                + s.l2_weight * terms["l2"] + s.diversity_weight * terms["diversity"])
    assert float(terms["total"]) == pytest.approx(float(expected), rel=1e-6)


def test_synthesis_deterministic_and_leaves_teacher_alone(digits_task) -> None:
    s = DIGITS.model_copy(update={"steps": 3, "batch_size": 8})
    before = {k: v.clone() for k, v in digits_task.teacher.state_dict().items()}
    a = synthesize(digits_task.teacher, digits_task.io, 12, s, seed=3)
    b = synthesize(digits_task.teacher, digits_task.io, 12, s, seed=3)
    c = synthesize(digits_task.teacher, digits_task.io, 12, s, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    after = digits_task.teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats untouched too
    assert not digits_task.teacher.training
    assert not any(p.requires_grad for p in digits_task.teacher.parameters())


def test_teacher_without_batchnorm_warns_and_still_works() -> None:
    io = ModelIO((6,), 3)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 3
    x = torch.randn(300, 6, generator=g) + 3 * torch.eye(3, 6)[y]  # three separable blobs
    torch.manual_seed(0)
    teacher = build({"family": "mlp", "layers": [{"width": 16}], "norm": "none"}, io)
    train(teacher, x, y, ProxyRecipe(steps=100), seed=0)
    teacher.eval()
    with pytest.warns(UserWarning, match="no BatchNorm"):
        synth = synthesize(teacher, io, 9, DataFreeSettings(steps=30), seed=0)
    assert synth.shape == (9, 6)
    assert torch.equal(predict(teacher, synth).argmax(-1), torch.arange(9) % 3)


def test_data_free_task_view(digits_task) -> None:
    s = DIGITS.model_copy(update={"samples": 30, "steps": 5, "validation": "synthetic", "val_samples": 20})
    view = data_free_task(digits_task, s, seed=0)
    assert view.train.x.shape == (30, 1, 8, 8) and view.val.x.shape == (20, 1, 8, 8)
    assert torch.equal(view.train.y, predict(digits_task.teacher, view.train.x).argmax(-1))
    assert torch.equal(view.val.y, predict(digits_task.teacher, view.val.x).argmax(-1))
    assert not torch.equal(view.val.x[:20], view.train.x[:20])  # held out: made apart
    assert view.test is digits_task.test and view.teacher is digits_task.teacher
    info = view.teacher_info["data_free"]
    assert info["samples"] == 30 and info["val_samples"] == 20 and 0.1 <= info["teacher_confidence"] <= 1.0
    assert digits_task.train.x.shape[0] == 1078  # the task itself is not changed
    real_val = data_free_task(digits_task, s.model_copy(update={"validation": "real"}), seed=0)
    assert real_val.val is digits_task.val and real_val.teacher_info["data_free"]["val_samples"] == 0
    assert torch.equal(real_val.train.x, view.train.x)


# ---------------------------------------------------------------- text (teacher samples)

@pytest.fixture(scope="module")
def text_task():
    from nas_student.tasks import load_task

    return load_task("text", seed=0)


def _log_likelihood(teacher: nn.Module, x: torch.Tensor) -> float:
    """Mean log p(x[t+1] | x[:t+1]) under the teacher, in nats per token."""
    logp = predict(teacher, x).log_softmax(-1)[:, :-1]
    return float(logp.gather(-1, x[:, 1:, None]).mean())


def test_text_samples_are_valid_and_teacher_likely(text_task) -> None:
    io = text_task.io
    x = synthesize(text_task.teacher, io, 24, DataFreeSettings(batch_size=12), seed=0)
    assert x.shape == (24, io.input_shape[0]) and x.dtype == torch.long
    assert int(x.min()) >= 0 and int(x.max()) < io.vocab_size
    sampled = _log_likelihood(text_task.teacher, x)
    uniform = _log_likelihood(text_task.teacher, torch.randint(io.vocab_size, x.shape,
                                                               generator=torch.Generator().manual_seed(0)))
    real = _log_likelihood(text_task.teacher, text_task.test.x[text_task.test.y[:, -1] != -100])
    assert sampled > uniform + 3.0  # e^3 = 20x likelier per token
    assert abs(sampled - real) < 1.0  # as likely as real text, to within a factor e per token
    again = synthesize(text_task.teacher, io, 24, DataFreeSettings(batch_size=12), seed=0)
    assert torch.equal(x, again)
    cold = synthesize(text_task.teacher, io, 24, DataFreeSettings(batch_size=12, temperature=0.5), seed=0)
    assert _log_likelihood(text_task.teacher, cold) > sampled  # a lower temperature: likelier text


def test_non_causal_token_teacher_is_refused() -> None:
    io = ModelIO((8,), 3, input_dtype="int64", vocab_size=5)
    with pytest.raises(NasStudentError, match="causal language-model teacher"):
        synthesize(nn.Linear(8, 3), io, 4)
