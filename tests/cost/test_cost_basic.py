"""profile(): conv/linear/matmul/einsum counts, other_ops, errors, side effects, Cost."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas_student.cost import Cost, CostError, profile
from nas_student.errors import NasStudentError


class Fn(nn.Module):
    """Wraps a function of the inputs so functional ops can be profiled."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.fn(*xs)


def conv_macs(b: int, cin: int, cout: int, k: tuple[int, int], g: int, out: tuple[int, int]) -> int:
    return b * cout * (cin // g) * k[0] * k[1] * out[0] * out[1]


@pytest.mark.parametrize(
    ("kwargs", "out"),
    [
        (dict(in_channels=3, out_channels=8, kernel_size=3), (14, 14)),
        (dict(in_channels=4, out_channels=8, kernel_size=3, stride=2, padding=1), (8, 8)),
        (dict(in_channels=4, out_channels=8, kernel_size=3, dilation=2), (12, 12)),
        (dict(in_channels=4, out_channels=8, kernel_size=(1, 3), groups=2), (16, 14)),
        (dict(in_channels=8, out_channels=8, kernel_size=3, groups=8, padding=1), (16, 16)),
        (dict(in_channels=4, out_channels=6, kernel_size=3, padding="same"), (16, 16)),
    ],
)
def test_conv2d(kwargs: dict, out: tuple[int, int]) -> None:
    conv = nn.Conv2d(**kwargs)
    x = torch.randn(2, kwargs["in_channels"], 16, 16)
    k = kwargs["kernel_size"]
    k = k if isinstance(k, tuple) else (k, k)
    expected = conv_macs(2, kwargs["in_channels"], kwargs["out_channels"], k, kwargs.get("groups", 1), out)
    cost = profile(conv, x)
    assert cost.macs == expected
    assert cost.by_op == {"conv": expected}
    assert cost.params == sum(p.numel() for p in conv.parameters())


def test_conv1d_and_transposed() -> None:
    assert profile(nn.Conv1d(3, 5, 3), torch.randn(1, 3, 10)).macs == 5 * 3 * 3 * 8
    # transposed: every input pixel is scattered through the whole kernel
    assert profile(nn.ConvTranspose2d(3, 4, 3, stride=2), torch.randn(1, 3, 5, 5)).macs == 3 * 4 * 9 * 25


def test_linear_2d_and_3d() -> None:
    lin = nn.Linear(16, 32)
    assert profile(lin, torch.randn(4, 16)).macs == 4 * 16 * 32
    assert profile(lin, torch.randn(2, 7, 16)).macs == 2 * 7 * 16 * 32
    assert profile(nn.Linear(16, 32, bias=False), torch.randn(3, 16)).macs == 3 * 16 * 32


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((3, 4), (4, 5), 3 * 4 * 5),
        ((3, 4), (4,), 3 * 4),
        ((4,), (4, 5), 4 * 5),
        ((4,), (4,), 4),
        ((2, 3, 4), (2, 4, 5), 2 * 3 * 4 * 5),
        ((3, 4), (7, 4, 5), 7 * 3 * 4 * 5),  # fvcore counts 60 here
        ((6, 1, 3, 4), (2, 4, 5), 6 * 2 * 3 * 4 * 5),
    ],
)
def test_matmul(a: tuple, b: tuple, expected: int) -> None:
    assert profile(Fn(torch.matmul), (torch.randn(*a), torch.randn(*b))).macs == expected


def test_bmm_mm_baddbmm_einsum() -> None:
    a, b = torch.randn(2, 3, 4), torch.randn(2, 4, 5)
    assert profile(Fn(torch.bmm), (a, b)).macs == 2 * 3 * 4 * 5
    assert profile(Fn(torch.mm), (a[0], b[0])).macs == 3 * 4 * 5
    c = torch.randn(2, 3, 5)
    assert profile(Fn(torch.baddbmm), (c, a, b)).macs == 2 * 3 * 4 * 5
    ein = Fn(lambda x, y: torch.einsum("bij,bjk->bik", x, y))
    assert profile(ein, (a, b)).macs == 2 * 3 * 4 * 5
    ell = Fn(lambda x, y: torch.einsum("...ij,...jk->...ik", x, y))
    assert profile(ell, (a, b)).macs == 2 * 3 * 4 * 5
    had = Fn(lambda x, y: torch.einsum("ij,ij->ij", x, y))
    assert profile(had, (a[0], a[1])).macs == 12  # one multiply per element (fvcore: 6.0)
    three = Fn(lambda x, y, z: torch.einsum("ij,jk,kl->il", x, y, z))
    x, y, z = torch.randn(2, 3), torch.randn(3, 4), torch.randn(4, 5)
    assert profile(three, (x, y, z)).macs == 2 * 3 * 4 + 2 * 4 * 5


def test_embedding_is_free() -> None:
    cost = profile(nn.Embedding(100, 8), torch.tensor([[1, 2, 3]]))
    assert cost.macs == 0 and cost.params == 800 and cost.by_op == {}


def test_norm_activation_pool_are_other_ops() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.GroupNorm(2, 4), nn.GELU(), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.LayerNorm(4), nn.Linear(4, 2), nn.Softmax(-1),
    )
    x = torch.randn(1, 3, 8, 8)
    cost = profile(model, x)
    assert cost.macs == 4 * 3 * 9 * 64 + 4 * 2
    assert cost.by_op == {"conv": 4 * 3 * 9 * 64, "linear": 8}
    assert cost.other_ops == {
        "batch_norm": 256, "relu": 256, "max_pool2d": 64, "group_norm": 64, "gelu": 64,
        "avg_pool2d": 16, "adaptive_avg_pool2d": 4, "layer_norm": 4, "softmax": 2,
    }
    assert cost.by_module == {str(i): 0 for i in range(12)} | {"0": 4 * 3 * 9 * 64, "10": 8}
    train = profile(model, x, mode="train")
    assert (train.macs, train.by_op, train.by_module) == (cost.macs, cost.by_op, cost.by_module)
    assert train.other_ops["batch_norm"] == 256  # (train also has num_batches_tracked.add_)


def test_functional_ops_go_to_root_and_by_module_sums() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.fc(x)
            return F.relu(h @ h.transpose(-1, -2)) + 1

    cost = profile(Net(), torch.randn(1, 5, 8))
    assert cost.by_module == {"fc": 5 * 8 * 8, "(root)": 5 * 8 * 5}
    assert sum(cost.by_module.values()) == cost.macs
    assert cost.other_ops == {"relu": 25, "add": 25}


def test_shared_params_counted_once() -> None:
    lin = nn.Linear(4, 4)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    cost = profile(model, torch.randn(1, 4))
    assert cost.params == 20
    assert cost.macs == 32


@pytest.mark.parametrize(
    ("fn", "op"),
    [
        (lambda x: torch.fft.fft(x).real, "aten::fft_fft"),
        (lambda x: torch.linalg.inv(x), "aten::linalg_inv"),
    ],
)
def test_unpriceable_op_raises(fn, op: str) -> None:
    with pytest.raises(CostError, match=op) as info:
        profile(nn.Sequential(nn.Linear(4, 4), Fn(fn)), torch.randn(1, 4, 4))
    assert isinstance(info.value, NasStudentError)
    assert "\n" not in str(info.value)


def test_bad_input_and_failing_forward_raise_cost_error() -> None:
    with pytest.raises(CostError, match="Tensor"):
        profile(nn.Linear(2, 2), [1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(CostError, match="tracing"):
        profile(nn.Linear(2, 2), torch.randn(1, 3))


def test_mode_buffers_and_rng_restored() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.ReLU())
    model.train()
    model[1].eval()
    before = {name: m.training for name, m in model.named_modules()}
    stats = model[1].running_mean.clone()
    x = torch.randn(2, 3, 8, 8)
    state = torch.random.get_rng_state()
    for mode in ("eval", "train"):
        profile(model, x, mode=mode)  # type: ignore[arg-type]
        assert {name: m.training for name, m in model.named_modules()} == before
    model[1].train()
    profile(model, x, mode="train")
    assert torch.equal(model[1].running_mean, stats)
    assert int(model[1].num_batches_tracked) == 0
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.is_grad_enabled()


def test_cost_is_frozen_and_serialisable() -> None:
    cost = profile(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), torch.randn(1, 4))
    assert isinstance(cost, Cost)
    with pytest.raises(AttributeError):
        cost.macs = 1  # type: ignore[misc]
    data = json.loads(json.dumps(cost.to_dict()))
    assert data == {
        "macs": 12, "params": 15, "by_module": {"0": 12, "1": 0},
        "by_op": {"linear": 12}, "other_ops": {"relu": 3},
    }
