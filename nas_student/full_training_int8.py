"""The int8 phases of full training (``nas-student train --quantize int8``), after a seed's
distilled float student (phase ``kd``):

- ``ptq``: that student converted to int8 without training (static: calibrated on 2,048
  training inputs; weight-only and dynamic: as it is): the comparison that shows what QAT buys;
- ``qat`` (static families only): quantization-aware training from the distilled weights with
  the teacher's soft targets through fake-quantised weights and activations, for
  :data:`QAT_FRACTION` of the recipe's steps at :data:`QAT_LR_FACTOR` of its learning rate
  (the usual fine-tuning schedule: Jacob et al. 2018, arXiv:1712.05877), then converted.

Each phase writes ``<phase>-s<seed>.json``; ``qat`` checkpoints like every phase and resumes.
The report gives the int8 students next to the float one and the teacher, with stored weight
bytes and CPU latency measured side by side (:mod:`nas_student.quantization`).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Callable

import torch

from nas_student import quantization as q8
from nas_student.cost.latency import measure_latency, model_size_bytes
from nas_student.distill import evaluate, train
from nas_student.distill.recipe import Recipe
from nas_student.errors import NasStudentError
from nas_student.families import build
from nas_student.tasks import Task

QAT_FRACTION = 0.1
QAT_LR_FACTOR = 0.1
CALIBRATION = 2048


def kinds(arch: dict[str, Any]) -> list[str]:
    """The int8 phases a student of ``arch`` has (refused in one line without an int8 path)."""
    return ["ptq", "qat"] if q8.int8_path(arch) == "static" else ["ptq"]


def qat_recipe(recipe: Recipe, n: int) -> Recipe:
    """QAT's recipe: the full recipe's KD settings, a tenth of its steps at a tenth of its lr,
    output distillation only (feature and attention terms read modules that QAT rewrites)."""
    steps = max(1, round(QAT_FRACTION * recipe.total_steps(n)))
    return recipe.model_copy(update={"steps": steps, "epochs": None, "lr": recipe.lr * QAT_LR_FACTOR,
                                     "warmup_steps": 0, "features": None, "attention": None})


def weights_file(out: Path, seed: int) -> Path:
    """The distilled float student of ``seed`` (written by phase ``kd``)."""
    return out / f"kd-s{seed}.pt"


def _float_student(arch: dict[str, Any], task: Task, out: Path, seed: int) -> torch.nn.Module:
    path = weights_file(out, seed)
    if not path.exists():
        raise NasStudentError(f"{path} is missing: the int8 phases start from the distilled student; "
                              f"delete kd-s{seed}.json to distil it again")
    model = build(arch, task.io)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def run_phase(kind: str, arch: dict[str, Any], recipe: Recipe, task: Task, out: Path, seed: int,
              x: torch.Tensor, y: torch.Tensor | None, teacher_logits: torch.Tensor, device: torch.device,
              checkpoint_every: int, on_step: Callable[[int], bool] | None) -> dict[str, Any]:
    """Run int8 phase ``kind`` for ``seed``; returns its record (test metrics of the int8 model)."""
    path = q8.int8_path(arch)
    student = _float_student(arch, task, out, seed)
    record: dict[str, Any] = {"kind": kind, "seed": seed, "path": path, "steps": 0, "wall_s": 0.0,
                              "resumed_from": 0}
    if kind == "ptq":
        int8 = q8.post_training_int8(student, task.io, path, x[:CALIBRATION])
    else:
        torch.manual_seed(seed)
        qat = q8.quantization_aware(student, task.io).to(device)
        rec = qat_recipe(recipe, len(x))
        res = train(qat, x, y, rec, seed=seed, teacher_logits=teacher_logits,
                    checkpoint=out / f"qat-s{seed}.ckpt", checkpoint_every=checkpoint_every, on_step=on_step)
        torch.save({k: v.detach().cpu() for k, v in qat.state_dict().items()}, out / f"qat-s{seed}.pt")
        int8 = q8.int8_model(qat, path)
        record.update(steps=res.steps, wall_s=res.wall_s, resumed_from=res.resumed_from, lr=rec.lr)
    record.update(evaluate(int8, task.test.x.cpu(), task.test.y.cpu()))
    return record


def int8_of(arch: dict[str, Any], task: Task, out: Path, seed: int) -> torch.nn.Module:
    """The int8 student of ``seed`` as ``train --quantize int8`` left it: QAT's weights where
    there are some (static families), else the post-training conversion."""
    path = q8.int8_path(arch)
    student = _float_student(arch, task, out, seed)
    if path == "static" and (out / f"qat-s{seed}.pt").exists():
        qat = q8.quantization_aware(student, task.io)
        qat.load_state_dict(torch.load(out / f"qat-s{seed}.pt", map_location="cpu", weights_only=True))
        return q8.int8_model(qat, path)
    return q8.post_training_int8(student, task.io, path, task.distillation_set()[0][:CALIBRATION])


def report(arch: dict[str, Any], task: Task, out: Path, seeds: list[int], latency_batch: int,
           results: dict[tuple[str, int], dict[str, Any]]) -> dict[str, Any]:
    """Accuracy of each int8 kind (mean, sd over seeds) and, for the first seed, stored weight
    bytes and CPU latency (1 thread, batch ``latency_batch``) of teacher, float and int8 student,
    measured one after the other in this process."""
    out_: dict[str, Any] = {"path": q8.int8_path(arch)}
    for kind in ("ptq", "qat"):
        runs = [r["accuracy"] for (k, _), r in sorted(results.items()) if k == kind]
        if runs:
            out_[kind] = {"mean": statistics.fmean(runs), "sd": statistics.stdev(runs) if len(runs) > 1 else 0.0,
                          "n": len(runs)}
    student = _float_student(arch, task, out, seeds[0])
    int8 = int8_of(arch, task, out, seeds[0])
    example = task.io.example_input(latency_batch)
    models = {"teacher": task.teacher, "float": student, "int8": int8}
    examples = {"teacher": task.teacher_interface().example_input(latency_batch)}  # its own modality
    out_["bytes"] = {k: model_size_bytes(m.cpu() if k != "teacher" else m, "fp32") for k, m in models.items()}
    out_["latency_ms"] = {k: measure_latency(m, examples.get(k, example), device="cpu", repeats=50, warmup=10)
                          for k, m in models.items()}
    return out_


def markdown(r: dict[str, Any], float_acc: float) -> list[str]:
    """The report's int8 lines."""
    def acc(kind: str) -> str:
        d = r[kind]
        return f"{d['mean']:.4f}" + (f" ± {d['sd']:.4f}" if d["n"] > 1 else "") + f" (n={d['n']})"

    lines = ["", f"## int8 ({r['path']})", "",
             "| model | test accuracy | weights (bytes) | CPU latency (ms) |", "|---|---|---|---|"]
    b, ms = r["bytes"], r["latency_ms"]
    lines.append(f"| teacher | | {b['teacher']:,} | {ms['teacher']:.3f} |")
    lines.append(f"| student, float | {float_acc:.4f} | {b['float']:,} | {ms['float']:.3f} |")
    if "qat" in r:
        lines.append(f"| student, int8 (QAT with KD) | {acc('qat')} | {b['int8']:,} | {ms['int8']:.3f} |")
    lines.append(f"| student, int8 (converted after training) | {acc('ptq')} | | |")
    best = r.get("qat", r["ptq"])["mean"]
    lines += ["", f"- int8 student: {100 * (float_acc - best):.2f} points loss, "
                  f"{b['float'] / b['int8']:.1f}x smaller, {ms['float'] / ms['int8']:.2f}x faster than its float version"]
    return lines
