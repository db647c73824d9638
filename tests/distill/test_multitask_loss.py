"""Multi-task distillation: one block of outputs per task, each against its own teacher; the
loss, the metrics and the pricing, by hand."""

import math

import pytest
import torch
from torch import nn

from nas_student.cost.price import price_teacher
from nas_student.distill.losses import kd_loss, log_softmax_heads
from nas_student.distill.multitask import TaskTeachers
from nas_student.distill.trainer import Recipe, evaluate, train
from nas_student.errors import NasStudentError
from nas_student.families.base import ModelIO, output_heads

HEADS = (3, 2)


def _kl(p_t: torch.Tensor, z_s: torch.Tensor) -> torch.Tensor:
    return (p_t * (p_t.log() - torch.log_softmax(z_s, -1))).sum(-1).mean()


def test_the_loss_is_the_mean_over_tasks_of_each_blocks_kd_loss():
    torch.manual_seed(0)
    s, t = torch.randn(6, 5), torch.randn(6, 5)
    y = torch.tensor([[0, 1], [2, 0], [1, 1], [0, 0], [2, 1], [1, 0]])
    temp, alpha, beta = 2.0, 0.7, 0.3
    got = kd_loss(s, t, y, temperature=temp, alpha=alpha, beta=beta, heads=HEADS)
    kd = ce = 0.0
    for (a, b), col in (((0, 3), 0), ((3, 5), 1)):  # each task: its own softmax, its own labels
        p_t = torch.softmax(t[:, a:b] / temp, -1)
        kd += temp**2 * _kl(p_t, s[:, a:b] / temp) / 2
        ce += nn.functional.cross_entropy(s[:, a:b], y[:, col]) / 2
    assert got.kd.item() == pytest.approx(kd.item(), rel=1e-5)
    assert got.ce.item() == pytest.approx(ce.item(), rel=1e-5)
    assert got.total.item() == pytest.approx(alpha * kd.item() + beta * ce.item(), rel=1e-5)
    # not the single-task loss over all 5 outputs (one softmax across both tasks)
    assert got.kd.item() != pytest.approx(kd_loss(s, t, None, temperature=temp, alpha=1, beta=0).kd.item(), rel=1e-3)
    with pytest.raises(ValueError, match=r"multi-task targets must be \(batch, 2\)"):
        kd_loss(s, t, y[:, 0], heads=HEADS)


def test_soft_targets_are_a_distribution_per_task():
    z = torch.randn(4, 5)
    p = log_softmax_heads(z, HEADS).exp()
    assert torch.allclose(p[:, :3].sum(-1), torch.ones(4)) and torch.allclose(p[:, 3:].sum(-1), torch.ones(4))
    assert torch.equal(log_softmax_heads(z), torch.log_softmax(z, -1))


class _Heads(nn.Linear):
    def __init__(self) -> None:
        super().__init__(4, 5)
        self.output_heads = HEADS


def test_metrics_per_task_and_their_mean():
    model = _Heads()
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0]))  # always class 1, then class 1
    x = torch.zeros(4, 4)
    y = torch.tensor([[1, 1], [1, 0], [0, 0], [1, 0]])
    teacher = torch.tensor([[0.0, 5.0, 0.0, 5.0, 0.0]]).repeat(4, 1)  # class 1, then class 0
    out = evaluate(model, x, y, teacher)
    assert out["accuracy_0"] == pytest.approx(0.75) and out["accuracy_1"] == pytest.approx(0.25)
    assert out["accuracy"] == pytest.approx(0.5)
    assert out["agreement_0"] == pytest.approx(1.0) and out["agreement_1"] == pytest.approx(0.0)
    assert out["agreement"] == pytest.approx(0.5)
    with pytest.raises(NasStudentError, match=r"needs labels of shape \(N, 2\)"):
        evaluate(model, x, y[:, 0])


def test_the_trainer_distils_each_task_against_its_own_teachers_softmax():
    torch.manual_seed(0)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8, 2))
    teacher = TaskTeachers([nn.Linear(4, 3), nn.Linear(4, 2)], HEADS)
    t_logits = teacher(x).detach()
    student = _Heads()
    with torch.no_grad():
        first = kd_loss(student(x), t_logits, y, temperature=3.0, alpha=0.6, beta=0.4, heads=HEADS).total
    res = train(student, x, y, Recipe(steps=1, batch_size=8, lr=1e-3, temperature=3.0, alpha=0.6, beta=0.4),
                teacher_logits=t_logits, seed=0)
    assert res.loss_curve[0] == pytest.approx(first.item(), rel=1e-5)  # the whole set in one batch, before the step


def test_task_teachers_concatenate_and_are_priced_as_the_sum_or_the_largest():
    small, large = nn.Linear(4, 3), nn.Sequential(nn.Linear(4, 16), nn.Linear(16, 2))
    teacher = TaskTeachers([small, large], HEADS)
    x = torch.randn(2, 4)
    assert torch.equal(teacher(x), torch.cat([small(x), large(x)], -1)) and output_heads(teacher) == HEADS
    io = ModelIO((4,), 5, heads=HEADS)
    cpu = torch.device("cpu")
    total = price_teacher(teacher, io, cpu, None, "sum")[1]
    largest = price_teacher(teacher, io, cpu, None, "largest")[1]
    assert total["macs"] == 4 * 3 + 4 * 16 + 16 * 2 and total["params"] == 15 + 80 + 34
    assert largest["macs"] == 4 * 16 + 16 * 2 and largest["params"] == 80 + 34
    with pytest.raises(NasStudentError, match="price_against: largest .* this task has one teacher"):
        price_teacher(small, ModelIO((4,), 3), cpu, None, "largest")
    with pytest.raises(NasStudentError, match="one teacher per task"):
        TaskTeachers([small, large], (3,))


def test_a_multi_task_interface_is_checked():
    with pytest.raises(ValueError, match=r"heads \[3, 3\] must be sizes >= 1 summing to num_outputs 5"):
        ModelIO((4,), 5, heads=(3, 3))
    io = ModelIO.from_dict({"input_shape": [4], "num_outputs": 5, "heads": [3, 2], "head_names": ["a", "b"]})
    assert io.heads == HEADS and io.head_names == ("a", "b") and math.isfinite(io.num_outputs)
