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
