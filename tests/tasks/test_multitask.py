"""Multi-task students: the built-in two-task case (digit + shear on MNIST-1D signals) and a
run file with one teacher per task (`combine: tasks`), their search, training and errors."""

import json
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from nas_student.cli import app
from nas_student.distill import ProxyRecipe, train

runner = CliRunner()

MODELS_PY = textwrap.dedent("""
    from torch import nn

    def make_teacher(classes=3, hidden=256):
        return nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                             nn.Linear(hidden, classes))
""")


def test_the_shear_is_recorded_row_for_row_with_the_signals(_teacher_cache):
    from nas_student.tasks import mnist1d, multitask

    d = mnist1d.dataset()
    t = np.linspace(-0.5, 0.5, mnist1d.LENGTH)
    for suffix in ("", "_test"):
        x, coeff = d[f"x{suffix}"], d[f"shear{suffix}"]
        assert len(coeff) == len(x) and -0.375 <= coeff.min() and coeff.max() < 0.375
        slope = (x - x.mean(1, keepdims=True)) @ (t - t.mean())
        # the generator subtracts coeff * ramp: the signals' fitted slope follows it (-0.85 here;
        # one row off, as a misaligned record would be, gives 0.0)
        assert np.corrcoef(slope, coeff)[0, 1] < -0.8
        assert abs(np.corrcoef(slope, np.roll(coeff, 1))[0, 1]) < 0.1
        counts = np.bincount(multitask.shear_class(coeff), minlength=3)
        assert counts.min() > 0.3 * len(x)  # three equal bins of a uniform draw


def test_the_builtin_two_task_case_searches_one_student_for_both(tmp_path, _teacher_cache):
    from nas_student.config import RunConfig
    from nas_student.cost.price import price_teacher
    from nas_student.search import run_search
    from nas_student.tasks import load_task

    task = load_task("mnist1d-multitask")
    assert task.io.heads == (10, 3) and task.io.head_names == ("digit", "shear")
    assert task.train.y.shape == (len(task.train), 2) and int(task.train.y[:, 1].max()) == 2
    info = task.teacher_info["tasks"]
    assert info["digit"]["test_accuracy"] > 0.8 and info["shear"]["test_accuracy"] > 0.45  # chance: 0.33
    cfg = RunConfig(task="mnist1d-multitask", run="two", results_dir=str(tmp_path), device="cpu",
                    budget=ProxyRecipe(steps=30), search={"trials": 2, "seed": 0, "trust": {"enabled": False}})
    digit, shear = (sum(p.numel() for p in t.parameters()) for t in task.teacher.teachers)
    assert digit == sum(p.numel() for p in load_task("mnist1d").teacher.parameters())
    assert digit - shear == 7 * 129  # the same residual CNN, 7 classes fewer in its head
    cpu = torch.device("cpu")
    assert price_teacher(task.teacher, task.io, cpu, None, "sum")[1]["params"] == digit + shear
    assert price_teacher(task.teacher, task.io, cpu, None, "largest")[1]["params"] == digit
    result = run_search(cfg)
    assert result.ctx.teacher_cost["params"] == digit + shear  # the search prices against the sum by default
    run = result.run_dir
    trials = pd.read_csv(run / "trials.csv").query("feasible")
    assert len(trials) >= 1
    assert np.allclose(trials["accuracy"], (trials["accuracy_digit"] + trials["accuracy_shear"]) / 2)
    assert list(trials.columns[3:7]) == ["accuracy", "agreement", "kd_loss", "accuracy_digit"]
    r = runner.invoke(app, ["export", str(run), "--out", str(tmp_path / "export")], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "one block of logits per task, each its own softmax: `digit` 0..9, `shear` 10..12" in \
        (tmp_path / "export" / "MODEL_CARD.md").read_text()


def test_training_a_multi_task_student_reports_each_task(tmp_path, _teacher_cache):
    arch = {"family": "cnn1d", "stem_width": 8, "stem_kernel": 5,
            "stages": [{"depth": 1, "width": 16, "kernel": 5, "downsample": "stride"}]}
    (tmp_path / "arch.json").write_text(json.dumps({"arch": arch}))
    out = tmp_path / "out"
    args = ["train", str(tmp_path / "arch.json"), "--task", "mnist1d-multitask", "--steps", "60", "--device", "cpu",
            "--out", str(out)]
    r = runner.invoke(app, args, terminal_width=200)
    assert r.exit_code == 0, r.output
    report = json.loads((out / "report.json").read_text())
    assert report["tasks"] == ["digit", "shear"] and report["price_against"] == "sum"
    for kind in ("kd", "ce"):
        both = report[kind]["accuracy_0"]["mean"], report[kind]["accuracy_1"]["mean"]
        assert report[kind]["accuracy"]["mean"] == pytest.approx(sum(both) / 2)
    text = (out / "report.md").read_text()
    assert "- task `digit`: teacher" in text and "- task `shear`: teacher" in text
    refused = runner.invoke(app, [*args[:-1], str(tmp_path / "m"), "--mutual", "2"], terminal_width=200)
    assert refused.exit_code == 2 and "is multi-task (2 tasks)" in refused.output.strip().splitlines()[-1]
    assert not (tmp_path / "m").exists()  # refused before anything was written


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Inputs with two tasks' labels (`a`: 3 blobs, `b`: the first feature's sign) and a
    trained teacher for each."""
    d = tmp_path_factory.mktemp("multi")
    (d / "models.py").write_text(MODELS_PY)
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, size=(3, 4))
    a = rng.integers(0, 3, size=300)
    x = (centers[a] + rng.normal(0, 1, size=(300, 4))).astype(np.float32)
    b = (x[:, 0] > 0).astype(np.int64)
    np.savez(d / "train.npz", x=x, a=a, b=b)
    np.savez(d / "short.npz", x=x, a=a, b=b[:-5])
    ns: dict = {}
    exec(MODELS_PY, ns)  # noqa: S102 - the test's own code
    for name, y, classes in (("a", a, 3), ("b", b, 2)):
        torch.manual_seed(0)
        teacher = ns["make_teacher"](classes=classes)
        train(teacher, torch.from_numpy(x), torch.from_numpy(y).long(), ProxyRecipe(steps=150, lr=3e-3))
        torch.save(teacher.state_dict(), d / f"teacher_{name}.pt")
    return d


TEACHERS = """\
teachers:
  - {factory: models.py:make_teacher, weights: teacher_a.pt}
  - {factory: models.py:make_teacher, kwargs: {classes: 2}, weights: teacher_b.pt}
"""


def _search(d, name, body):
    path = d / f"{name}.yaml"
    path.write_text(f"task: two\ntrust_code: true\nspace: digits-mlp\nrun: {name}\n" + textwrap.dedent(body))
    return runner.invoke(app, ["search", "--config", str(path), "--trials", "4", "--steps", "20",
                               "--results-dir", str(d / "results")], terminal_width=200)


def test_a_run_file_with_one_teacher_per_task(project):
    r = _search(project, "both", TEACHERS + "combine: tasks\ndata: {train: train.npz, label: [a, b]}\n")
    assert r.exit_code == 0, r.output
    assert "Multi-task: 2 tasks (a, b), one head each" in r.output
    trials = pd.read_csv(project / "results" / "both" / "trials.csv").query("feasible")
    assert len(trials) and {"accuracy_a", "accuracy_b"} <= set(trials.columns)
    assert np.allclose(trials["accuracy"], (trials["accuracy_a"] + trials["accuracy_b"]) / 2)
    ns: dict = {}
    exec(MODELS_PY, ns)  # noqa: S102
    both = sum(p.numel() for c in (3, 2) for p in ns["make_teacher"](classes=c).parameters())
    assert (trials["params"] <= 0.1 * both).all()
    from nas_student.results.runs import open_run

    io = open_run(project / "results" / "both").attrs["io"]
    assert io["heads"] == [3, 2] and io["head_names"] == ["a", "b"]
    r = _search(project, "largest", TEACHERS + "combine: tasks\nprice_against: largest\n"
                "data: {train: train.npz, label: [a, b]}\n")
    assert r.exit_code == 0, r.output
    largest = sum(p.numel() for p in ns["make_teacher"](classes=3).parameters())
    attrs = open_run(project / "results" / "largest").attrs
    assert attrs["teacher"]["params"] == largest and attrs["bounds"]["params"] == pytest.approx(0.1 * largest)


@pytest.mark.parametrize("body, needle", [
    (TEACHERS + "combine: tasks\ndata: {train: short.npz, label: [a, b]}\n",
     "short.npz: the tasks' labels have different lengths ('a' 300, 'b' 295)"),
    ("teachers:\n  - {factory: models.py:make_teacher, weights: teacher_a.pt}\n"
     "  - {factory: models.py:make_teacher, weights: teacher_a.pt}\n"
     "combine: tasks\ndata: {train: train.npz, label: [a, b]}\n",
     "teachers[1] (task 'b'): the teacher has 3 outputs but the data's labels span 2 classes"),
    (TEACHERS + "combine: tasks\ndata: {train: train.npz, label: a}\n",
     "combine: tasks needs one teacher per task and one data.label per task: 2 teacher(s), 1 label(s)"),
    (TEACHERS + "data: {train: train.npz, label: [a, b]}\n", "several data.label keys are several tasks"),
    (TEACHERS + "combine: tasks\ndata: {train: train.npz, label: [a, c]}\n", "no array 'c'"),
    (TEACHERS + "combine: tasks\ndata: {train: train.npz, label: [a, b]}\ndata_free: {enabled: true}\n",
     "is multi-task (a, b)"),
    ("teacher: {factory: models.py:make_teacher, weights: teacher_a.pt}\nprice_against: largest\n"
     "data: {train: train.npz, label: a}\n", "this task has one teacher"),
])
def test_bad_multi_task_input_is_one_line_before_training(project, body, needle):
    r = _search(project, "bad", body)
    assert r.exit_code == 2, r.output
    lines = [x for x in r.output.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and needle in lines[0], r.output
    assert not (project / "results" / "bad").exists()
