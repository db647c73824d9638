"""A user's own 1-D signals (.npz, x of shape (N, 40) or (N, 1, 40)) and their own 1-D CNN
teacher go through --config with the mnist1d spaces, and every family of those spaces fits."""

import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from nas_student.cli import app
from nas_student.distill import ProxyRecipe, train
from nas_student.families import ModelIO, build
from nas_student.spaces import RandomSuggester, load_space
from nas_student.tasks.mnist1d import dataset

MODELS_PY = textwrap.dedent("""
    from torch import nn

    class Signals(nn.Module):
        def __init__(self, flat=False, classes=10):
            super().__init__()
            self.flat = flat
            self.net = nn.Sequential(
                nn.Conv1d(1, 32, 5, padding=2), nn.ReLU(), nn.Conv1d(32, 32, 5, stride=2, padding=2),
                nn.ReLU(), nn.Conv1d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
                nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(64, classes))

        def forward(self, x):
            return self.net(x.unsqueeze(1) if self.flat else x)

    def make_teacher(flat=False):
        return Signals(flat)
""")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    d = tmp_path_factory.mktemp("signals")
    (d / "models.py").write_text(MODELS_PY)
    data = dataset()
    x, y = data["x"][:1200], data["y"][:1200]
    np.savez(d / "flat.npz", x=x, y=y)
    np.savez(d / "channels.npz", x=x[:, None, :], y=y)
    ns: dict = {}
    exec(MODELS_PY, ns)  # noqa: S102 - the test's own code
    torch.manual_seed(0)
    teacher = ns["make_teacher"]()
    train(teacher, torch.from_numpy(x[:, None, :]), torch.from_numpy(y).long(), ProxyRecipe(steps=200, lr=3e-3))
    torch.save(teacher.state_dict(), d / "teacher.pt")
    return d


@pytest.mark.parametrize("shape", [(40,), (1, 40)])
def test_every_family_of_the_signal_spaces_fits_user_signals(shape):
    io = ModelIO(shape, 10)
    for name in ("mnist1d-cnn", "mnist1d-mixed"):
        space, rng, families = load_space(name), RandomSuggester(0), set()
        for _ in range(200):
            arch = space.sample(rng)
            if space.violations(arch) or arch["family"] in families:
                continue
            out = build(arch, io)(torch.randn(2, *shape))
            assert out.shape == (2, 10)
            families.add(arch["family"])
        assert families == set(space.families)


@pytest.mark.slow
@pytest.mark.parametrize("data,flat", [("flat.npz", True)])  # (N, 1, L) is the built-in task's own shape
def test_user_signals_and_teacher_search_the_mixed_space(project, data, flat):
    path = project / f"run-{flat}.yaml"
    path.write_text(textwrap.dedent(f"""
        task: my-signals
        trust_code: true
        teacher: {{factory: models.py:make_teacher, kwargs: {{flat: {str(flat).lower()}}}, weights: teacher.pt}}
        data: {{train: {data}}}
        space: mnist1d-mixed
        run: r{int(flat)}
    """))
    result = CliRunner().invoke(app, ["search", "--config", str(path), "--trials", "6", "--steps", "10",
                                      "--macs-ratio", "0", "--params-ratio", "0", "--no-trust", "--results-dir", str(project / "results")],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    trials = pd.read_csv(project / "results" / f"r{int(flat)}" / "trials.csv")
    trained = trials[(trials["state"] == "COMPLETE") & trials["accuracy"].notna()]
    assert len(trained) >= 4
    families = {a.split('"family": "')[1].split('"')[0] for a in trained["arch"]}
    assert len(families) >= 2, families
