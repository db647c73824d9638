"""Bring your own teacher and data: factories, TorchScript, image folders, CSV, and the errors."""

import json
import re
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from nas_student.cli import app
from nas_student.distill import ProxyRecipe, train

runner = CliRunner()

MODELS_PY = textwrap.dedent("""
    import torch
    from torch import nn

    def make_teacher(in_features=4, classes=3, hidden=256):
        return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                             nn.ReLU(), nn.Linear(hidden, classes))

    class TupleOut(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = make_teacher()
        def forward(self, x):
            return {"logits": self.net(x), "hidden": x}

    def make_dict_teacher():
        return TupleOut()

    def broken():
        raise RuntimeError("no GPU found")
""")


def blobs(n=300, features=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    x = centers[y] + rng.normal(0, 1, size=(n, features))
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A folder with models.py, a trained teacher's state_dict and .npz / .csv data."""
    d = tmp_path_factory.mktemp("project")
    (d / "models.py").write_text(MODELS_PY)
    x, y = blobs()
    np.savez(d / "train.npz", x=x, y=y)
    pd.DataFrame(np.c_[x, y], columns=["a", "b", "c", "d", "label"]).astype({"label": int}).to_csv(
        d / "table.csv", index=False)
    ns: dict = {}
    exec(MODELS_PY, ns)  # noqa: S102 - the test's own code
    torch.manual_seed(0)
    teacher = ns["make_teacher"]()
    train(teacher, torch.from_numpy(x), torch.from_numpy(y).long(), ProxyRecipe(steps=150, lr=3e-3))
    torch.save(teacher.state_dict(), d / "teacher.pt")
    from safetensors.torch import save_file
    save_file(teacher.state_dict(), str(d / "teacher.safetensors"))
    return d


def run_file(d, name, body):
    path = d / f"{name}.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def search(path, *extra):
    return runner.invoke(app, ["search", "--config", str(path), "--trials", "4", "--steps", "20",
                               "--results-dir", str(path.parent / "results"), *extra], terminal_width=200)


def test_factory_teacher_with_state_dict_on_npz(project):
    path = run_file(project, "npz", """
        task: blobs
        trust_code: true
        teacher: {factory: models.py:make_teacher, weights: teacher.pt}
        data: {train: train.npz}
        space: digits-mlp
        run: npz
    """)
    result = search(path)
    assert result.exit_code == 0, result.output
    front = pd.read_csv(project / "results" / "npz" / "pareto.csv")
    assert len(front) >= 1 and (front["params_ratio"] <= 0.1).all()
    assert "Teacher: test accuracy" in result.output


def test_csv_table_with_an_mlp_space_and_safetensors(project):
    path = run_file(project, "csv", """
        task: table
        trust_code: true
        teacher: {factory: models.py:make_dict_teacher, weights: teacher.safetensors}
        data: {train: table.csv, label: label}
        space: digits-mlp
        run: csv
    """)
    # the dict teacher's state_dict keys are prefixed "net."
    import safetensors.torch as st
    state = st.load_file(str(project / "teacher.safetensors"))
    st.save_file({f"net.{k}": v for k, v in state.items()}, str(project / "teacher.safetensors"))
    result = search(path)
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(project / "results" / "csv" / "pareto.csv")) >= 1


def _image_folder(root, classes=3, per_class=40, size=8):
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            a = rng.integers(0, 60, size=(size, size, 3)).astype(np.uint8)
            a[:, :, c] += 150  # the class is the dominant colour channel
            Image.fromarray(a).save(root / f"class{c}" / f"{i}.png")


def test_torchscript_teacher_on_an_image_folder(tmp_path):
    _image_folder(tmp_path / "images")
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(),
                                  torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(),
                                  torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(64, 3))
    torch.jit.trace(teacher.eval(), torch.zeros(1, 3, 8, 8)).save(str(tmp_path / "teacher.ts"))
    path = run_file(tmp_path, "img", """
        task: colours
        teacher: {torchscript: teacher.ts}
        data: {train: images}
        space: digits-cnn
        run: img
    """)
    result = search(path)
    assert result.exit_code == 2 and "--trust-code" in result.output  # code needs consent
    result = search(path, "--trust-code", "--max-params", "2000")
    assert result.exit_code == 0, result.output
    trials = pd.read_csv(tmp_path / "results" / "img" / "trials.csv")
    assert (trials["state"] == "COMPLETE").sum() == 4


@pytest.mark.parametrize("body,needle", [
    ("teacher: {factory: models.py:make_teacher, kwargs: {in_features: 5}, weights: teacher.pt}\n",
     "does not fit the factory's model"),
    ("teacher: {factory: models.py:make_teacher, kwargs: {in_features: 5}}\n",
     "cannot run on the data's inputs of shape [2, 4]"),
    ("teacher: {factory: models.py:make_teacher, kwargs: {classes: 7}}\n",
     "the teacher has 7 outputs but the data's labels span 3 classes"),
    ("teacher: {factory: models.py:broken}\n", "raised RuntimeError: no GPU found"),
    ("teacher: {factory: models.py:nope}\n", "has no function 'nope'"),
    ("teacher: {factory: models.py:make_teacher, weights: missing.pt}\n", "file not found"),
    ("teachers:\n  - {factory: models.py:make_teacher, weights: teacher.pt}\n"
     "  - {factory: models.py:make_teacher, kwargs: {classes: 7}}\n",
     "teachers[1]: the teacher has 7 outputs but the data's labels span 3 classes"),
    ("teachers:\n  - {factory: models.py:make_teacher, weights: teacher.pt}\n", "teachers: list should have at least 2 items"),
    ("teacher: {factory: models.py:make_teacher}\nteachers:\n  - {factory: models.py:make_teacher}\n"
     "  - {factory: models.py:make_teacher}\n", "give `teacher` (one) or `teachers` (several), not both"),
])
def test_mismatches_and_failures_are_one_line_before_training(project, body, needle):
    path = run_file(project, "bad", "task: bad\ntrust_code: true\ndata: {train: train.npz}\nspace: digits-mlp\n"
                    "run: bad\n" + body)
    result = search(path)
    assert result.exit_code == 2, result.output
    lines = [x for x in result.output.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and needle in lines[0], result.output
    assert not (project / "results" / "bad").exists()


def test_missing_data_file_and_bad_run_file_keys(project):
    path = run_file(project, "bad2", """
        task: x
        teacher: {factory: models.py:make_teacher}
        data: {train: nothere.npz}
    """)
    result = search(path, "--trust-code")
    assert result.exit_code == 2 and "nothere.npz: file not found" in result.output
    path = run_file(project, "bad3", """
        task: x
        teacher: {factory: models.py:make_teacher}
        data: {train: train.npz, lables: y}
    """)
    result = search(path)
    assert result.exit_code == 2 and f"{path}:4: data.lables: unknown key" in result.output


def test_a_pickle_that_would_run_code_is_refused_and_never_runs(project, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"0.weight": Evil()}, project / "evil.pt")
    path = run_file(project, "evil", """
        task: x
        trust_code: true
        teacher: {factory: models.py:make_teacher, weights: evil.pt}
        data: {train: train.npz}
    """)
    result = search(path)
    assert result.exit_code == 2 and "weights_only" in result.output
    assert not marker.exists()


def test_init_writes_a_template_that_validates(tmp_path):
    result = runner.invoke(app, ["init", str(tmp_path / "run.yaml")])
    assert result.exit_code == 0
    from nas_student.runfile import build_config
    cfg = build_config(tmp_path / "run.yaml", {})
    assert cfg.teacher.factory.endswith("models.py:make_teacher")
    assert cfg.data.train == str(tmp_path / "train.npz")
    assert runner.invoke(app, ["init", str(tmp_path / "run.yaml")]).exit_code == 2  # no overwrite


def test_command_line_overrides_the_run_file(tmp_path):
    from nas_student.runfile import build_config
    (tmp_path / "r.yaml").write_text("search: {trials: 7, seed: 3}\nbudget: {steps: 11}\n")
    cfg = build_config(tmp_path / "r.yaml", {("search", "trials"): 9})
    assert (cfg.search.trials, cfg.search.seed, cfg.budget.steps) == (9, 3, 11)


DATA_PY = textwrap.dedent("""
    import numpy as np
    import torch

    def splits():
        rng = np.random.default_rng(1)
        centers = rng.normal(0, 3, size=(3, 4))
        def part(n):
            y = rng.integers(0, 3, size=n)
            x = (centers[y] + rng.normal(0, 1, size=(n, 4))).astype("float32")
            return x, y
        train = torch.utils.data.TensorDataset(*map(torch.as_tensor, part(200)))
        return {"train": train, "val": part(60), "test": part(60)}
""")


def test_data_factory_returning_datasets_and_arrays(project):
    (project / "data_fn.py").write_text(DATA_PY)
    path = run_file(project, "factory", """
        task: blobs-factory
        teacher: {factory: models.py:make_teacher, weights: teacher.pt}
        data: {factory: data_fn.py:splits}
        space: digits-mlp
        run: factory
    """)
    result = search(path)
    assert result.exit_code == 2 and "data.factory" in result.output and "--trust-code" in result.output
    result = search(path, "--trust-code")
    assert result.exit_code == 0, result.output
    trials = pd.read_csv(project / "results" / "factory" / "trials.csv")
    assert (trials["state"] == "COMPLETE").sum() == 4


def test_a_run_file_without_a_space_searches_auto_and_a_resume_keeps_it(project):
    """Your own task with no `space`: the space is generated from the data and the teacher
    (MLP students for flat vectors), kept in the run folder, read again on a resume (even when
    edited there), and written by `spaces --auto` for the same run file."""
    path = run_file(project, "auto", """
        task: blobs
        trust_code: true
        teacher: {factory: models.py:make_teacher, weights: teacher.pt}
        data: {train: train.npz}
        run: auto
    """)
    result = search(path)
    assert result.exit_code == 0, result.output
    run_dir = project / "results" / "auto"
    kept = run_dir / "space.yaml"
    assert "family: mlp" in kept.read_text() and "teacher" in kept.read_text().splitlines()[0]
    assert json.loads((run_dir / "run.json").read_text())["space"] == "auto"
    front = pd.read_csv(run_dir / "pareto.csv")
    assert len(front) >= 1 and (front["params_ratio"] <= 0.1).all()
    original = kept.read_text()
    kept.write_text(original.replace("name: blobs-auto", "name: blobs-auto-kept"))
    result = search(path, "--trials", "5")  # a resume: one more trial, from the kept space
    assert result.exit_code == 0, result.output
    assert "Resuming" in result.output and "Space 'blobs-auto-kept'" in result.output
    edited = re.sub(r"width: \{type: choice, values: \[[0-9, ]+\]\}", "width: {type: choice, values: [7]}", original)
    assert edited != original
    kept.write_text(edited)  # a space edited under its trials: refused in one line, nothing run
    result = search(path, "--trials", "6")
    assert result.exit_code == 2 and "another version of space 'blobs-auto'" in result.output, result.output
    assert len(pd.read_csv(run_dir / "trials.csv")) == 5
    kept.write_text(original)
    out = project / "generated.yaml"
    result = runner.invoke(app, ["spaces", "--auto", "--config", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().split("\nname:")[1:] == original.split("\nname:")[1:]  # same rules, same space
    result = runner.invoke(app, ["spaces", "--task", "digits"])
    assert result.exit_code == 2 and "go with --auto" in result.output


def test_inputs_are_kept_in_the_standard_layout(tmp_path):
    """An image folder's pixels come channels-last strided; they are stored (N, C, H, W)
    contiguous, as is any array given transposed. (Torch 2.13's CPU depthwise-conv backward
    corrupted memory on channels-last inputs: a segfault mid-search, found by bench/auto_space.py.)"""
    from nas_student.config import DataSpec
    from nas_student.tasks.data_files import read_split

    _image_folder(tmp_path / "images", size=16)
    split, classes = read_split(str(tmp_path / "images"), DataSpec(train=str(tmp_path / "images")))
    assert split.x.shape == (120, 3, 16, 16) and split.x.is_contiguous() and classes == ["class0", "class1", "class2"]
    x = np.random.default_rng(0).normal(size=(4, 16, 16, 3)).astype(np.float32).transpose(0, 3, 1, 2)
    np.savez(tmp_path / "t.npz", x=x, y=np.arange(4))
    split, _ = read_split(str(tmp_path / "t.npz"), DataSpec(train=str(tmp_path / "t.npz")))
    assert split.x.is_contiguous() and torch.equal(split.x, torch.from_numpy(np.ascontiguousarray(x)))


def test_a_run_file_with_two_teachers_distils_their_combination(project):
    """`teachers:` (several for one task): one ensemble teacher, priced as all of them run."""
    x, y = blobs()
    ns: dict = {}
    exec(MODELS_PY, ns)  # noqa: S102 - the test's own code
    torch.manual_seed(1)
    second = ns["make_teacher"](hidden=128)
    train(second, torch.from_numpy(x), torch.from_numpy(y).long(), ProxyRecipe(steps=150, lr=3e-3))
    torch.save(second.state_dict(), project / "teacher2.pt")
    path = run_file(project, "two", """
        task: blobs2
        trust_code: true
        teachers:
          - {factory: models.py:make_teacher, weights: teacher.pt}
          - {factory: models.py:make_teacher, kwargs: {hidden: 128}, weights: teacher2.pt}
        combine: confidence
        data: {train: train.npz}
        space: digits-mlp
        run: two
    """)
    result = search(path)
    assert result.exit_code == 0, result.output
    from nas_student.cost import profile
    from nas_student.distill.ensemble import TeacherEnsemble
    from nas_student.runfile import build_config
    from nas_student.tasks import task_for_config

    task = task_for_config(build_config(path, {}))
    assert isinstance(task.teacher, TeacherEnsemble) and task.teacher.how == "confidence"
    assert task.teacher_info["teachers"] == 2 and task.teacher_info["combine"] == "confidence"
    one = profile(ns["make_teacher"](), torch.zeros(1, 4)).params
    both = one + profile(ns["make_teacher"](hidden=128), torch.zeros(1, 4)).params
    assert profile(task.teacher, torch.zeros(1, 4)).params == both  # priced against both teachers
    trials = pd.read_csv(project / "results" / "two" / "trials.csv").query("feasible")
    assert len(trials) and (trials["params"] <= 0.1 * both).all()
