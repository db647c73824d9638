"""`nas-student train`: a report against the teacher and CE only; resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys

import torch
from waiting import wait_until

ARCH = {"family": "cnn", "stem_width": 8, "norm": "batch", "activation": "relu",
        "stages": [{"depth": 1, "width": 12, "kernel": 3, "downsample": "stride"}]}


def _train(tmp_path, out, *extra):
    cmd = [sys.executable, "-m", "nas_student.cli", "train", str(tmp_path / "arch.json"), "--task", "digits",
           "--steps", "240", "--checkpoint-every", "20", "--device", "cpu", "--out", str(out), *extra]
    return cmd


def _kill_mid_phase(cmd, out, phase, env):
    """Run ``cmd`` and SIGKILL it once phase ``phase`` of seed 0 has a checkpoint (before it ends)."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    ckpt = out / f"{phase}-s0.ckpt"
    wait_until(ckpt.exists, 300, poll=0.05, while_running=p)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert ckpt.exists() and not (out / f"{phase}-s0.json").exists(), "killed before the first checkpoint or after the end"


def test_train_reports_and_resumes_after_kill(tmp_path, digits_task):
    (tmp_path / "arch.json").write_text(json.dumps({"arch": ARCH}))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = tmp_path / "whole"
    r = subprocess.run(_train(tmp_path, whole, "--no-baseline"), capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads((whole / "report.json").read_text())
    assert 0.5 < report["kd"]["accuracy"]["mean"] <= 1.0
    assert report["retention_pct"] == 100 * report["kd"]["accuracy"]["mean"] / report["teacher"]["accuracy"]
    assert 0 < report["macs_ratio"] < 0.1 and report["latency_speedup"] > 0
    assert "retention" in (whole / "report.md").read_text()

    killed = tmp_path / "killed"
    _kill_mid_phase(_train(tmp_path, killed, "--no-baseline"), killed, "kd", env)
    r = subprocess.run(_train(tmp_path, killed, "--no-baseline"), capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    phase = json.loads((killed / "kd-s0.json").read_text())
    assert phase["resumed_from"] > 0
    assert f"kd seed 0 resumed from its checkpoint at step {phase['resumed_from']}." in r.stdout
    a = torch.load(whole / "student.pt", weights_only=True)
    b = torch.load(killed / "student.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((killed / "report.json").read_text())["kd"] == report["kd"] | {"wall_s": json.loads(
        (killed / "report.json").read_text())["kd"]["wall_s"]}


def test_a_folder_keeps_one_setting_more_seeds_join_other_settings_are_refused(tmp_path, digits_task):
    from typer.testing import CliRunner

    from nas_student.cli import app

    (tmp_path / "arch.json").write_text(json.dumps({"arch": ARCH}))
    out = tmp_path / "t"

    def train(*extra):
        return CliRunner().invoke(app, ["train", str(tmp_path / "arch.json"), "--task", "digits", "--no-baseline",
                                        "--device", "cpu", "--out", str(out), *extra])

    out.mkdir()
    (out / "settings.json").write_text('{"recipe": {"steps": 7}}')  # an attempt that failed before any phase
    assert train("--steps", "20").exit_code == 0  # nothing was trained there: it may start over
    first = (out / "kd-s0.json").read_text()
    r = train("--steps", "30")
    assert r.exit_code == 2 and "other settings (recipe.steps 20 -> 30)" in r.output, r.output
    r = train("--steps", "20", "--data-free")
    assert r.exit_code == 2 and "data_free null -> " in r.output, r.output
    assert (out / "kd-s0.json").read_text() == first and not (out / "kd-s1.json").exists()
    r = train("--steps", "20", "--seeds", "2")  # the same settings: seed 0 is kept, seed 1 added
    assert r.exit_code == 0, r.output
    assert "Kept from an earlier run with the same settings: kd seed 0." in r.output
    assert (out / "kd-s0.json").read_text() == first
    assert json.loads((out / "kd-s1.json").read_text())["steps"] == 20
    assert json.loads((out / "report.json").read_text())["kd"]["accuracy"]["n"] == 2


def test_train_of_an_unknown_run_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "nas_student.cli", "train", "somerun", "--results-dir", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "somerun" in r.stderr and "\n" not in r.stderr.strip()


def test_a_recipe_that_does_not_fit_the_models_fails_before_writing_anything(tmp_path, digits_task):
    from typer.testing import CliRunner

    from nas_student.cli import app

    (tmp_path / "arch.json").write_text(json.dumps({"arch": ARCH}))
    (tmp_path / "att.yaml").write_text("steps: 20\nattention: {weight: 1.0}\n")
    r = CliRunner().invoke(app, ["train", str(tmp_path / "arch.json"), "--task", "digits", "--device", "cpu",
                                 "--recipe", str(tmp_path / "att.yaml"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "needs Transformer layers in both models" in r.output, r.output
    assert not (tmp_path / "o").exists()


def test_born_again_generations_are_taught_by_the_previous_one(tmp_path, digits_task, monkeypatch):
    """`train --generations 3`: generation 2 is distilled from generation 1's soft targets (the
    teacher's student), generation 3 from generation 2's, each from a fresh initialisation."""
    from typer.testing import CliRunner

    from nas_student import full_training_ban
    from nas_student.cli import app
    from nas_student.distill import predict
    from nas_student.families import build

    (tmp_path / "arch.json").write_text(json.dumps({"arch": ARCH}))
    out, seen = tmp_path / "ban", {}
    real_train = full_training_ban.train

    def spy(model, x, y, recipe, *, teacher_logits, teacher, **kw):
        seen[len(seen) + 2] = (teacher_logits.clone(), {k: v.clone() for k, v in model.state_dict().items()})
        return real_train(model, x, y, recipe, teacher_logits=teacher_logits, teacher=teacher, **kw)

    monkeypatch.setattr(full_training_ban, "train", spy)
    r = CliRunner().invoke(app, ["train", str(tmp_path / "arch.json"), "--task", "digits", "--steps", "60",
                                 "--no-baseline", "--generations", "3", "--device", "cpu", "--out", str(out)])
    assert r.exit_code == 0, r.output
    x = digits_task.distillation_set()[0]
    for g, teacher_phase in ((2, "kd"), (3, "ban2")):
        prev = build(ARCH, digits_task.io)
        prev.load_state_dict(torch.load(out / f"{teacher_phase}-s0.pt", weights_only=True))
        assert torch.allclose(seen[g][0], predict(prev, x))  # taught by the previous generation
    kd_student = torch.load(out / "kd-s0.pt", weights_only=True)
    assert any(not torch.equal(seen[2][1][k], kd_student[k]) for k in kd_student)  # not a copy of it
    assert not torch.equal(seen[2][1]["stem.0.weight"] if "stem.0.weight" in seen[2][1] else next(iter(seen[2][1].values())),
                           seen[3][1]["stem.0.weight"] if "stem.0.weight" in seen[3][1] else next(iter(seen[3][1].values())))
    report = json.loads((out / "report.json").read_text())
    assert {"kd", "ban2", "ban3"} <= set(report) and report["ban3"]["accuracy"]["n"] == 1
    md = (out / "report.md").read_text()
    assert "born-again generation 2 (taught by generation 1)" in md and "generation 3 (taught by generation 2)" in md


def test_a_killed_mutual_learning_run_resumes_to_the_uninterrupted_result(tmp_path, digits_task):
    (tmp_path / "arch.json").write_text(json.dumps({"arch": ARCH}))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    r = subprocess.run(_train(tmp_path, whole, "--no-baseline", "--mutual", "2"), capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads((whole / "report.json").read_text())
    assert report["mutual"]["cohort"] == 2 and 0.5 < report["mutual"]["accuracy"]["mean"] <= 1.0
    assert "mutual learning (cohort of 2: member mean)" in (whole / "report.md").read_text()
    _kill_mid_phase(_train(tmp_path, killed, "--no-baseline", "--mutual", "2"), killed, "mutual", env)
    r = subprocess.run(_train(tmp_path, killed, "--no-baseline", "--mutual", "2"), capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert json.loads((killed / "mutual-s0.json").read_text())["resumed_from"] > 0
    for i in range(2):  # both members end exactly where the uninterrupted cohort did
        a = torch.load(whole / f"mutual-s0-{i}.pt", weights_only=True)
        b = torch.load(killed / f"mutual-s0-{i}.pt", weights_only=True)
        assert all(torch.equal(a[k], b[k]) for k in a)
    from typer.testing import CliRunner

    from nas_student.cli import app

    r = CliRunner().invoke(app, ["train", str(tmp_path / "arch.json"), "--task", "digits", "--mutual", "1"])
    assert r.exit_code == 2 and "--mutual takes a cohort of 2 or more" in r.output
