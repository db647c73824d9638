import pytest
import torch

from nas_student.distill import ProxyRecipe, evaluate, train
from nas_student.distill.trainer import DivergedError


def _data(n=256):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return x, y


def test_training_learns_and_is_deterministic():
    x, y = _data()
    accs, weights = [], []
    for _ in range(2):
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        train(m, x, y, ProxyRecipe(steps=150, lr=1e-2), seed=3)
        accs.append(evaluate(m, x, y)["accuracy"])
        weights.append(torch.cat([p.flatten() for p in m.parameters()]))
    assert accs[0] > 0.9
    assert torch.equal(weights[0], weights[1])


def test_distillation_from_teacher_logits_alone_learns_the_teacher():
    x, y = _data()
    teacher_logits = torch.stack([-(x[:, 0] + x[:, 1]), x[:, 0] + x[:, 1]], 1) * 3
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    train(m, x, None, ProxyRecipe(steps=200, lr=1e-2, alpha=1.0, beta=0.0), teacher_logits=teacher_logits)
    metrics = evaluate(m, x, y, teacher_logits)
    assert metrics["agreement"] > 0.9 and metrics["kd_loss"] < 0.5


def test_divergence_is_reported():
    x, y = _data()
    m = torch.nn.Linear(4, 2)
    with pytest.raises(DivergedError):
        train(m, x * float("nan"), y, ProxyRecipe(steps=3))


def test_loss_curve_has_every_step_and_ends_at_the_final_loss():
    x, y = _data()
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    res = train(m, x, y, ProxyRecipe(steps=60, lr=1e-2), seed=0)
    assert len(res.loss_curve) == res.steps == 60
    assert res.loss_curve[-1] == pytest.approx(res.final_loss)
    assert sum(res.loss_curve[-10:]) < 0.5 * sum(res.loss_curve[:10])  # it learns


def test_the_proxy_step_as_one_mixed_cross_entropy_trains_as_the_separate_terms(monkeypatch):
    """At T = 1 (the proxy) a step is one cross-entropy against alpha*p_t + beta*onehot(y); the
    loss curve and the weights are the separate terms' (up to float rounding), the last step's
    parts are still reported."""
    from nas_student.distill.terms import LossTerms

    x, y = _data()
    teacher_logits = torch.stack([-(x[:, 0] + x[:, 1]), x[:, 0] + x[:, 1]], 1) * 3
    runs = []
    for fused in (True, False):
        monkeypatch.setattr(LossTerms, "fusable", lambda self, y, f=fused: f and y is not None)
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        res = train(m, x, y, ProxyRecipe(steps=40, temperature=1.0, alpha=0.7, beta=0.3),
                    teacher_logits=teacher_logits, seed=1)
        runs.append((res, torch.cat([p.detach().flatten() for p in m.parameters()])))
    (fused_res, w_fused), (plain_res, w_plain) = runs
    assert fused_res.loss_curve == pytest.approx(plain_res.loss_curve, rel=1e-4, abs=1e-6)
    assert torch.allclose(w_fused, w_plain, rtol=1e-4, atol=1e-5)
    assert set(fused_res.parts) == {"kd", "ce"} and fused_res.parts["ce"] > 0
    monkeypatch.undo()
    assert LossTerms(ProxyRecipe(temperature=1.0), m, None, x[:2]).fusable(y)  # the proxy's default is fused
    assert not LossTerms(ProxyRecipe(temperature=4.0), m, None, x[:2]).fusable(y)
    assert not LossTerms(ProxyRecipe(temperature=1.0), m, None, x[:2]).fusable(torch.tensor([0, -100]))


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_the_optimiser_is_fused_on_cpu_and_steps_as_torchs_own_loop(optimizer):
    """Fused kernels where torch has them (4x faster steps on CPU), the same update as the
    per-tensor loop to float rounding."""
    from nas_student.distill.trainer import make_optimizer

    torch.manual_seed(0)
    a = torch.nn.Linear(6, 4)
    b = torch.nn.Linear(6, 4)
    b.load_state_dict(a.state_dict())
    start = a.weight.detach().clone()
    recipe = ProxyRecipe(optimizer=optimizer, weight_decay=1e-2)
    fused = make_optimizer(list(a.parameters()), recipe)
    assert fused.defaults["fused"] is True
    loop = type(fused)(b.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay,
                       **({"momentum": 0.9, "nesterov": True} if optimizer == "sgd" else {}), foreach=False)
    for _ in range(20):
        x = torch.randn(8, 6)
        for model, opt in ((a, fused), (b, loop)):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert (a.weight - start).abs().max() > 1e-3  # it trained
