"""``export --quantize int8``: the int8 student of an exported trial, as an ONNX file checked
against PyTorch's int8 model.

Which int8 student: the one ``nas-student train RUN --trial N --quantize int8`` left in
``RUN/train/trial-N`` (quantization-aware training with the teacher, seed 0) when there is one;
else the trial's proxy-trained weights converted after training (static families calibrated on
2,048 training inputs; weight-only ones, recurrent students, need no calibration). The check: top-1 agreement between onnxruntime on the file and PyTorch's
int8 model on the task's whole test split must reach
:data:`~nas_student.quantization.MIN_AGREEMENT`; the bundle gains ``model_int8.onnx`` and
``int8.json`` (source, path, agreement, test accuracy of both, stored bytes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nas_student import quantization as q8
from nas_student.errors import NasStudentError
from nas_student.results.runs import RunView, trained_trial, trial_model
from nas_student.trial_record import TrialRecord

FILE = "model_int8.onnx"


def _int8_student(view: RunView, number: int, task: Any) -> tuple[Any, str]:
    from nas_student.full_training_int8 import CALIBRATION, int8_of, weights_file

    t = trained_trial(view, number)
    arch = TrialRecord.from_trial(t).arch
    path = q8.int8_path(arch)
    trained = view.run_dir / "train" / f"trial-{number}"
    if weights_file(trained, 0).exists():
        how = "QAT with KD (train --quantize int8)" if (trained / "qat-s0.pt").exists() else "converted after full training"
        return int8_of(arch, task, trained, 0), how
    x, _ = task.distillation_set()
    return q8.post_training_int8(trial_model(view, t), task.io, path, x[:CALIBRATION]), \
        f"proxy weights converted after training ({path} int8)"


def add_int8(view: RunView, number: int, out: Path) -> dict[str, Any]:
    """Write ``model_int8.onnx`` and ``int8.json`` into the bundle folder ``out``; returns the
    check's numbers. Refuses (one line, nothing written) when the file disagrees with PyTorch."""
    from nas_student.config import RunConfig
    from nas_student.distill import evaluate
    from nas_student.tasks import task_for_config

    q8.require_onnx_int8(TrialRecord.from_trial(trained_trial(view, number)).arch)  # before the task loads
    cfg = RunConfig.model_validate(view.config)
    task = task_for_config(cfg, "cpu")
    int8, source = _int8_student(view, number, task)
    onnx_file = out / FILE
    tmp = out / f".{FILE}.partial"
    q8.export_onnx(int8, task.io, tmp)
    x, y = task.test.x.cpu(), task.test.y.cpu()
    agreement = q8.onnx_agreement(tmp, int8, x)
    if agreement < q8.MIN_AGREEMENT:
        tmp.unlink(missing_ok=True)
        raise NasStudentError(f"the int8 ONNX file agrees with PyTorch's int8 model on {agreement:.2%} of the test "
                              f"split (< {q8.MIN_AGREEMENT:.0%}); not written")
    tmp.replace(onnx_file)
    info = {"source": source, "path": q8.int8_path(TrialRecord.from_trial(trained_trial(view, number)).arch), "agreement_with_pytorch_int8": agreement,
            "test_accuracy_int8_pytorch": evaluate(int8, x, y)["accuracy"],
            "int8_weights_bytes": q8.stored_bytes(int8), "onnx_bytes": onnx_file.stat().st_size}
    (out / "int8.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
