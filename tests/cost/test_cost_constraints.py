import math

import pytest
import torch
from typer.testing import CliRunner

from nas_student.cli import app
from nas_student.config import Constraints, LatencySettings
from nas_student.cost.constraints import constraint_values, is_feasible, limits
from nas_student.cost.price import price
from nas_student.families import ModelIO, build

TEACHER = {"macs": 1000.0, "params": 500.0, "latency_ms": 2.0, "size_mb": 4.0}


def test_default_bounds_are_a_tenth_of_the_teacher_on_macs_and_params():
    assert limits(Constraints(), TEACHER) == {"macs": 100.0, "params": 50.0}


def test_relative_and_absolute_bounds_take_the_tightest():
    c = Constraints(macs_ratio=0.5, max_macs=300, params_ratio=None, latency_ratio=0.25,
                    max_size_mb=1.5, size_ratio=0.5)
    assert limits(c, TEACHER) == {"macs": 300.0, "latency_ms": 0.5, "size_mb": 1.5}


def test_constraint_values_are_relative_overshoot_and_nan_is_violated():
    v = constraint_values({"macs": 150.0, "params": 25.0}, {"macs": 100.0, "params": 50.0})
    assert v == {"macs": pytest.approx(0.5), "params": pytest.approx(-0.5)}
    assert not is_feasible(v)
    v = constraint_values({"macs": math.nan}, {"macs": 100.0, "params": 50.0})
    assert v == {"macs": 1.0, "params": 1.0}


def test_price_reports_size_and_latency_only_when_asked():
    m = build({"family": "mlp", "layers": [{"width": 16}]}, ModelIO((4,), 3))
    cost, costs = price(m, ModelIO((4,), 3), torch.device("cpu"), None)
    assert costs["macs"] == 4 * 16 + 16 * 3 and costs["params"] == (4 * 16 + 16) + (16 * 3 + 3)
    assert costs["size_mb"] == costs["params"] * 4 / 1e6 and "latency_ms" not in costs
    _, costs = price(m, ModelIO((4,), 3), torch.device("cpu"), LatencySettings(repeats=3, warmup=1))
    assert costs["latency_ms"] > 0


def test_cost_command_prices_an_architecture_file(tmp_path):
    arch = tmp_path / "a.json"
    arch.write_text('{"family": "mlp", "layers": [{"width": 32}]}')
    result = CliRunner().invoke(app, ["cost", str(arch), "--task", "digits"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert f"{64 * 32 + 32 * 10:,} MACs" in result.output and "MACs by op" in result.output
    result = CliRunner().invoke(app, ["cost", str(arch)], terminal_width=200)  # the default task: mnist1d
    assert result.exit_code == 0 and f"{40 * 32 + 32 * 10:,} MACs" in result.output
    bad = tmp_path / "b.json"
    bad.write_text('{"family": "mlp", "layers": [{"widht": 32}]}')
    result = CliRunner().invoke(app, ["cost", str(bad)])
    assert result.exit_code == 2 and "layers.0.widht: unknown parameter" in result.output  # the misspelt key


def test_torchscript_models_are_priced_at_the_dispatcher_exactly():
    from nas_student.cost import CostError, profile

    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                            torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(8 * 16, 3)).eval()
    x = torch.zeros(1, 3, 8, 8)
    scripted = torch.jit.trace(m, x)
    eager, opaque = profile(m, x), profile(scripted, x)
    assert opaque.macs == eager.macs == 3 * 8 * 9 * 64 + 8 * 16 * 3
    assert opaque.params == eager.params

    class RNN(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = torch.nn.LSTM(4, 8, batch_first=True)

        def forward(self, x):
            return self.rnn(x)[0]

    with pytest.raises(CostError, match="aten::"):  # refused by name, never counted as 0
        profile(torch.jit.trace(RNN(), torch.zeros(1, 5, 4)), torch.zeros(1, 5, 4))
