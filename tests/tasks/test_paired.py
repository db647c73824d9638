"""Cross-modal distillation: the built-in `mnist1d-from-digits` task pairs each signal with an
image of its digit; the teacher (the digits CNN) sees the images, the student the signals."""

import json
import subprocess
import sys

import pytest
import torch

from nas_student.distill import predict
from nas_student.errors import NasStudentError
from nas_student.tasks import load_task, paired
from nas_student.tasks.base import Split

CLI = [sys.executable, "-m", "nas_student.cli"]


def _split(labels: list[int], tag: float) -> Split:
    y = torch.tensor(labels)
    return Split(tag + torch.arange(len(y), dtype=torch.float32).view(-1, 1), y)


def test_pairs_are_same_class_in_order_as_many_as_the_scarcer_modality_has():
    images = _split([0, 1, 0, 1, 1], 100.0)      # class 0: rows 0, 2; class 1: rows 1, 3, 4
    signals = _split([1, 0, 0, 0, 1, 1, 1], 0.0)  # class 0: rows 1, 2, 3; class 1: rows 0, 4, 5, 6
    student, view = paired.pair(images, signals)
    # class 0 keeps signals 1, 2 (two images); class 1 keeps signals 0, 4, 5 (three images)
    assert student.x.flatten().tolist() == [0.0, 1.0, 2.0, 4.0, 5.0]
    assert student.y.tolist() == [1, 0, 0, 1, 1]
    assert view.flatten().tolist() == [101.0, 100.0, 102.0, 103.0, 104.0]  # each signal's image, same class
    student, view = paired.pair(images, signals, cycle=True)  # every signal; images reused in turn
    assert student.y.tolist() == signals.y.tolist()
    assert view.flatten().tolist() == [101.0, 100.0, 102.0, 100.0, 103.0, 104.0, 101.0]


def test_a_class_without_a_partner_is_one_line():
    with pytest.raises(NasStudentError, match="class 2 has signals but no image"):
        paired.pair(_split([0, 1], 100.0), _split([0, 2], 0.0))


@pytest.mark.slow
def test_the_teacher_sees_the_paired_images_and_is_priced_on_them(mnist1d_task, digits_task):
    task = load_task(paired.NAME, seed=0)
    assert task.cross_modal and task.io == mnist1d_task.io and task.teacher_interface() == digits_task.io
    assert task.train.x.shape[1:] == (1, 40) and task.teacher_inputs("train").shape[1:] == (1, 8, 8)
    for split in ("train", "val", "test"):
        s = getattr(task, split)
        assert len(task.teacher_inputs(split)) == len(s)
    logits = task.teacher_logits("train")
    assert torch.equal(logits, predict(task.teacher, task.teacher_inputs("train")))
    # the teacher's predictions on the paired images are the signals' labels (it is a good digits teacher)
    assert (logits.argmax(-1) == task.train.y).float().mean() > 0.97
    assert len(task.test) == len(mnist1d_task.test)  # students are scored on every test signal
    assert task.teacher_info["pairs"]["train"] == len(task.train) > 1000


@pytest.mark.slow
def test_train_distils_a_signal_student_from_the_image_teacher(tmp_path, mnist1d_task, digits_task):
    arch = {"family": "cnn1d", "stem_width": 8, "stem_kernel": 5, "norm": "batch", "activation": "relu",
            "residual": False, "stages": [{"depth": 1, "width": 8, "kernel": 3, "downsample": "stride"}]}
    (tmp_path / "arch.json").write_text(json.dumps(arch))
    r = subprocess.run(CLI + ["train", str(tmp_path / "arch.json"), "--task", paired.NAME, "--steps", "60",
                              "--device", "cpu", "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["task"] == paired.NAME
    assert report["teacher"]["accuracy"] > 0.97  # on its images
    assert report["teacher"]["macs"] > 10 * report["student_cost"]["macs"]  # priced on 8x8 images
    assert 0.1 < report["kd"]["accuracy"]["mean"] <= 1 and 0.1 < report["ce"]["accuracy"]["mean"] <= 1
    # one modality only: features or data-free distillation are refused in one line
    recipe = tmp_path / "feat.yaml"
    recipe.write_text("steps: 10\nfeatures: {weight: 1.0}\n")
    r = subprocess.run(CLI + ["train", str(tmp_path / "arch.json"), "--task", paired.NAME, "--recipe", str(recipe),
                              "--device", "cpu", "--out", str(tmp_path / "f")], capture_output=True, text=True)
    assert r.returncode == 2 and "is cross-modal" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = subprocess.run(CLI + ["train", str(tmp_path / "arch.json"), "--task", paired.NAME, "--data-free", "--steps", "5",
                              "--device", "cpu", "--out", str(tmp_path / "d")], capture_output=True, text=True)
    assert r.returncode == 2 and "is cross-modal" in r.stderr and "Traceback" not in r.stderr, r.stderr
