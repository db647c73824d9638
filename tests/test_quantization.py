"""int8 students: `train --quantize int8` (QAT with KD, and the conversion after training),
resume of QAT after an interruption, the int8 ONNX export checked against PyTorch's int8 model,
and a family without an int8 path refused in one line."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from nas_student import quantization as q8
from nas_student.cli import app
from nas_student.config import RunConfig
from nas_student.distill.recipe import Recipe
from nas_student.errors import NasStudentError
from nas_student.families.base import ModelIO
from nas_student.full_training import TrainJob, run_job
from nas_student.full_training_int8 import int8_of

ARCH = {"family": "cnn", "stem_width": 8, "norm": "batch", "activation": "relu",
        "stages": [{"depth": 1, "width": 16, "kernel": 3, "downsample": "stride"}]}


def _job(out: Path) -> TrainJob:
    return TrainJob(ARCH, RunConfig(task="digits"), Recipe(steps=200, lr=0.01), out, baseline=False, checkpoint_every=5,
                    quantize="int8")


class Interrupted(Exception):
    pass


def test_train_int8_reports_qat_and_conversion_and_resumes_after_an_interruption(tmp_path, digits_task):
    whole = run_job(_job(tmp_path / "whole"), torch.device("cpu"))
    r = whole["int8"]
    assert r["path"] == "static" and r["qat"]["n"] == 1 and r["ptq"]["n"] == 1
    float_acc = whole["kd"]["accuracy"]["mean"]
    assert float_acc > 0.8 and r["qat"]["mean"] > float_acc - 0.1 and r["ptq"]["mean"] > 0.5
    assert r["bytes"]["int8"] < 0.5 * r["bytes"]["float"] < r["bytes"]["teacher"]
    assert all(v > 0 for v in r["latency_ms"].values())
    qat = json.loads((tmp_path / "whole" / "qat-s0.json").read_text())
    assert qat["steps"] == 20 and qat["lr"] == pytest.approx(0.001)  # a tenth of the steps and lr
    assert "int8 student:" in (tmp_path / "whole" / "report.md").read_text()

    def stop_in_qat(phase: str, done: int, total: int) -> None:
        if phase.startswith("qat") and done == 12:  # after the checkpoint at step 10
            raise Interrupted

    out = tmp_path / "killed"
    with pytest.raises(Interrupted):
        run_job(_job(out), torch.device("cpu"), stop_in_qat)
    assert (out / "qat-s0.ckpt").exists() and not (out / "qat-s0.json").exists()
    again = run_job(_job(out), torch.device("cpu"))
    record = json.loads((out / "qat-s0.json").read_text())
    assert record["resumed_from"] == 10 and "kd seed 0" in again["reused"]
    assert record["accuracy"] == qat["accuracy"]  # ends where the uninterrupted run ends
    a, b = (torch.load(d / "qat-s0.pt", weights_only=True) for d in (tmp_path / "whole", out))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # the int8 ONNX file of that student agrees with PyTorch's int8 model on the test split
    int8 = int8_of(ARCH, digits_task, out, 0)
    onnx_file = q8.export_onnx(int8, digits_task.io, tmp_path / "m.onnx")
    assert q8.onnx_agreement(onnx_file, int8, digits_task.test.x) >= q8.MIN_AGREEMENT


@pytest.mark.parametrize("arch", [
    {"family": "rnn", "cell": "gru", "layers": 1, "hidden": 24},
    {"family": "rnn", "cell": "lstm", "layers": 1, "hidden": 12, "bidirectional": True},
])
def test_a_recurrent_student_is_int8_weight_only_and_its_onnx_file_repeats_it(arch, tmp_path):
    import onnx
    from onnx import numpy_helper

    torch.manual_seed(0)
    io = ModelIO((1, 40), 4)
    from nas_student.families import build

    model = build(arch, io)
    x = torch.randn(512, 1, 40)
    y = x.reshape(512, 4, 10).mean(-1).argmax(-1)  # which quarter of the signal is highest
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(150):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert q8.int8_path(arch) == "weight-only"
    int8 = q8.int8_model(model, "weight-only")
    acc = {name: float((m(x).argmax(-1) == y).float().mean()) for name, m in (("float", model), ("int8", int8))}
    assert acc["float"] > 0.6 and abs(acc["int8"] - acc["float"]) < 0.02, acc
    stored = int8.state_dict()
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    assert sum(t.dtype == torch.int8 for t in stored.values()) == len(matrices)  # every weight matrix
    assert q8.stored_bytes(int8) < 0.4 * q8.stored_bytes(model)
    with torch.no_grad():  # the int8 weights, per row: within half a step of the float ones
        for p, d in zip(model.parameters(), int8.dequantized().parameters()):
            if p.dim() >= 2:
                step = p.abs().amax(dim=tuple(range(1, p.dim())), keepdim=True) / 127
                assert bool(((p - d).abs() <= step / 2 + 1e-7).all())
    onnx_file = q8.export_onnx(int8, io, tmp_path / "m.onnx")
    graph = onnx.load(str(onnx_file)).graph
    weights = [numpy_helper.to_array(i) for i in graph.initializer]
    # every weight stored int8 (the export merges a cell's directions into one tensor)
    assert sum(w.size for w in weights if w.dtype == np.int8) == sum(p.numel() for p in matrices)
    biases = sum(p.numel() for p in model.parameters() if p.dim() < 2)
    floats = sum(numpy_helper.to_array(i).size for i in graph.initializer
                 if numpy_helper.to_array(i).dtype == np.float32 and not i.name.endswith("_scale"))
    assert floats == biases  # besides the per-row scales, the only float numbers left are biases
    assert q8.onnx_agreement(onnx_file, int8, x) >= q8.MIN_AGREEMENT


def test_a_dynamic_int8_student_has_no_onnx_file():
    arch = {"family": "transformer", "d_model": 16, "heads": 2, "layers": 1, "ffn_ratio": 2}
    assert q8.int8_path(arch) == "dynamic"
    with pytest.raises(NasStudentError, match="int8 ONNX file is written for cnn, cnn1d, mlp, rnn students; a transformer"):
        q8.require_onnx_int8(arch)  # onnxruntime's dynamic int8 is not PyTorch's


def test_a_family_without_an_int8_path_is_one_line_before_any_work(tmp_path):
    from nas_student.families import register
    from nas_student.families.base import ArchModel, Family, TappedModel

    class ToyArch(ArchModel):
        family: str

    class Toy(TappedModel):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward_features(self, x):
            return self.fc(x.flatten(1)), {}

    @register
    class ToyFamily(Family):
        name = "toy-without-int8"
        arch_model = ToyArch

        def build(self, arch, io):
            return Toy()

    job = TrainJob({"family": "toy-without-int8"}, RunConfig(task="digits"), Recipe(steps=10), tmp_path / "t",
                   quantize="int8")
    with pytest.raises(NasStudentError) as e:
        run_job(job, torch.device("cpu"))
    assert "family 'toy-without-int8' has no int8 path" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "t").exists()


def test_export_quantize_int8_writes_a_checked_onnx_file(tmp_path, small_run):
    """search -> train --quantize int8 -> export --quantize int8: the file holds the QAT student."""
    import shutil

    run = tmp_path / small_run.name
    shutil.copytree(small_run, run)
    trained = CliRunner().invoke(app, ["train", run.name, "--results-dir", str(tmp_path), "--steps", "200",
                                       "--no-baseline", "--quantize", "int8", "--device", "cpu"])
    assert trained.exit_code == 0, trained.output
    res = CliRunner().invoke(app, ["export", run.name, "--results-dir", str(tmp_path),
                                   "--out", str(tmp_path / "b"), "--quantize", "int8"])
    assert res.exit_code == 0, res.output
    info = json.loads((tmp_path / "b" / "int8.json").read_text())
    assert (tmp_path / "b" / "model_int8.onnx").exists() and info["source"] == "QAT with KD (train --quantize int8)"
    assert info["agreement_with_pytorch_int8"] >= q8.MIN_AGREEMENT and 0 < info["test_accuracy_int8_pytorch"] <= 1
    bad = CliRunner().invoke(app, ["export", run.name, "--results-dir", str(tmp_path),
                                   "--out", str(tmp_path / "c"), "--quantize", "int4"])
    assert bad.exit_code != 0 and "--quantize takes int8" in bad.output and not (tmp_path / "c").exists()


def test_a_search_can_aim_at_int8_size_and_latency(tmp_path, digits_task):
    """int8 latency as an objective and int8 size as a bound: every student is priced as int8
    (static int8 for CNNs: about a quarter of its fp32 size), and the bound decides feasibility."""
    import pandas as pd

    from nas_student.config import SearchSettings
    from nas_student.distill.recipe import ProxyRecipe
    from nas_student.search import run_search

    cfg = RunConfig(task="digits", run="q", results_dir=str(tmp_path), device="cpu", space="digits-cnn",
                    budget=ProxyRecipe(steps=5), constraints={"max_size_mb_int8": 0.05},
                    search=SearchSettings(trials=6, seed=0, objectives=("accuracy", "latency_int8_ms"),
                                          trust={"enabled": False}))
    assert cfg.needs_int8() and cfg.needs_latency()
    run_search(cfg)
    df = pd.read_csv(tmp_path / "q" / "trials.csv")
    priced = df[df["size_mb_int8"].notna()]
    assert len(priced) >= 3 and (priced["size_mb_int8"] < 0.5 * priced["size_mb"]).all()
    assert (priced["latency_int8_ms"] > 0).all()
    within = priced["size_mb_int8"] <= 0.05
    assert within.any() and not within.all()  # the bound cuts through these students
    ok = priced["macs_ratio"].le(0.1) & priced["params_ratio"].le(0.1) & within
    assert (priced["feasible"] == ok).all(), priced[["feasible", "size_mb_int8", "macs_ratio", "params_ratio"]]
    assert "latency_int8_ms" in pd.read_csv(tmp_path / "q" / "pareto.csv").columns
