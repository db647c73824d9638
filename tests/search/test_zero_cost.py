import math

import pytest
import torch
from torch import nn

from nas_student.errors import UnknownNameError
from nas_student.search import zero_cost


class Fixed(nn.Module):
    """Returns a fixed feature matrix whatever the input (for the relation score)."""

    def __init__(self, f: list[list[float]]) -> None:
        super().__init__()
        self.f = torch.tensor(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.f


def test_naswot_hand_computed() -> None:
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(2))
    model = nn.Sequential(lin, nn.ReLU())
    x = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
    # codes 11, 10, 00; K = N_A - hamming = [[2,1,0],[1,2,1],[0,1,2]], det = 4
    assert zero_cost.naswot(model, x) == pytest.approx(math.log(4.0))


def test_naswot_identical_codes_give_a_singular_kernel() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    x = torch.ones(4, 2)  # all four inputs share one code: K has rank 1
    assert zero_cost.naswot(model, x) == -math.inf


def test_synflow_hand_computed_two_layers() -> None:
    a, b = nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        a.weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 4.0]]))
        b.weight.copy_(torch.tensor([[-1.0, 2.0]]))
    model = nn.Sequential(a, nn.ReLU(), b)
    # |W1| 1 = [3, 7]; R = 1*3 + 2*7 = 17; each layer's sum |theta * dR/dtheta| equals R
    assert zero_cost.synflow(model, torch.randn(5, 2)) == pytest.approx(math.log(34.0))


def test_diswot_hand_computed() -> None:
    student, teacher = Fixed([[1.0, 0.0], [0.0, 1.0]]), Fixed([[1.0, 1.0], [1.0, 1.0]])
    # G_s = I; G_t rows = [1/sqrt2, 1/sqrt2]; ||G_t - G_s||_F^2 = 2 (1 - 1/sqrt2)^2 + 2 (1/sqrt2)^2
    r = 1 / math.sqrt(2)
    expected = -math.sqrt(2 * (1 - r) ** 2 + 2 * r**2)
    assert zero_cost.diswot(student, torch.zeros(2, 1), teacher) == pytest.approx(expected, rel=1e-6)
    assert zero_cost.diswot(teacher, torch.zeros(2, 1), teacher) == pytest.approx(0.0, abs=1e-7)


def test_scores_on_a_real_student_are_finite_and_repeatable(digits_task) -> None:
    arch = {"family": "cnn", "stem_width": 8, "groups": 1, "norm": "batch", "activation": "relu",
            "residual": False, "stages": [{"depth": 1, "width": 8, "kernel": 3, "downsample": "none"}]}
    x = digits_task.train.x[:16]
    a = zero_cost.scores(arch, digits_task.io, digits_task.teacher, x, seed=3)
    b = zero_cost.scores(arch, digits_task.io, digits_task.teacher, x, seed=3)
    assert set(a) == {"naswot", "synflow", "diswot"}
    assert a == b
    assert all(math.isfinite(v) for v in a.values())
    assert a["diswot"] <= 0


def test_unknown_score_lists_the_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="naswot"):
        zero_cost.score_fn("naswott")
