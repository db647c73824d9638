"""measure_latency() side effects and model_size_bytes() arithmetic."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas_student.cost import CostError, measure_latency, model_size_bytes


def test_latency_restores_threads_and_mode() -> None:
    model = nn.Sequential(nn.Linear(16, 16), nn.Dropout(0.1), nn.ReLU())
    model.train()
    model[1].eval()
    flags = [m.training for m in model.modules()]
    before = torch.get_num_threads()
    ms = measure_latency(model, torch.randn(1, 16), warmup=1, repeats=3, threads=1)
    assert isinstance(ms, float) and ms > 0
    assert torch.get_num_threads() == before
    assert [m.training for m in model.modules()] == flags
    assert torch.is_grad_enabled()


def test_latency_other_device_leaves_model_in_place() -> None:
    model = nn.Linear(4, 4)
    assert measure_latency(model, torch.randn(1, 4), warmup=0, repeats=1, device="cpu") > 0
    assert model.weight.device.type == "cpu"


def test_latency_rejects_bad_arguments() -> None:
    with pytest.raises(CostError):
        measure_latency(nn.Linear(2, 2), torch.randn(1, 2), repeats=0)


def test_size_fp32_and_int8() -> None:
    lin = nn.Linear(8, 4)
    assert model_size_bytes(lin) == 36 * 4
    # qint8 weight (32 B) + scale/zero point (8 B) + fp32 bias (16 B)
    # + the dynamic module's unused output scale (fp32) and zero point (int64): 12 B
    assert model_size_bytes(lin, "int8") == 32 + 8 + 16 + 12
    assert model_size_bytes(lin) == 144 and lin.weight.dtype == torch.float32  # untouched


def test_size_recurrent_and_conv() -> None:
    gru = nn.GRU(4, 6)
    assert model_size_bytes(gru) == 216 * 4
    weights, biases = 18 * 4 + 18 * 6, 2 * 18
    assert model_size_bytes(gru, "int8") == weights + 2 * 8 + 4 * biases
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    fp32 = (4 * 27 + 4 + 4 * 4) * 4 + 8  # params, BN stats at 4 B, num_batches_tracked int64
    assert model_size_bytes(net) == model_size_bytes(net, "int8") == fp32
    shared = nn.Linear(4, 4)
    assert model_size_bytes(nn.Sequential(shared, shared)) == 20 * 4


def test_size_rejects_unknown_dtype() -> None:
    with pytest.raises(CostError, match="int8"):
        model_size_bytes(nn.Linear(2, 2), "fp16")  # type: ignore[arg-type]
