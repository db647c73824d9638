"""Export one trial of a run as a self-contained bundle.

Bundle (``export_trial``): ``arch.json`` (spec for :func:`nas_student.load_student`), ``weights.pt``
(state_dict), ``model.ts`` (TorchScript, traced in eval mode), ``model.onnx`` (checked against
PyTorch with onnxruntime), ``recipe.json`` (the KD budget and settings) and ``MODEL_CARD.md``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import shutil
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial

from nas_student.errors import NasStudentError
from nas_student.families.base import ModelIO, describe
from nas_student.results.runs import (
    RunView,
    front_position,
    run_io,
    trained_trial,
    trial_model,
    weights_path,
)
from nas_student.trial_record import TrialRecord

ONNX_TOLERANCE = 1e-5


# ---------------------------------------------------------------------------------- the export

@dataclass
class Bundle:
    out: Path
    files: list[Path]
    onnx_max_abs_diff: float
    torchscript_max_abs_diff: float


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("nas-student", "torch", "optuna", "onnx", "onnxruntime", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _recipe(view: RunView, t: FrozenTrial) -> dict[str, Any]:
    from nas_student.seeds import student_seed

    cfg = view.config
    seed = cfg.get("search", {}).get("seed", 0)
    h = TrialRecord.from_trial(t).arch_hash
    return {"task": cfg.get("task"), "space": cfg.get("space"), "budget": cfg.get("budget"),
            "constraints": cfg.get("constraints"), "search_seed": seed,
            "student_seed": student_seed(h, seed), "objectives": cfg.get("search", {}).get("objectives"),
            "teacher": view.attrs.get("teacher"), "arch_hash": h,
            "note": "proxy training: the student was trained for budget.steps x (depth / budget.reference_depth) ^ "
                    "budget.depth_power steps (its depth: CNN blocks, MLP hidden layers, RNN or Transformer layers; "
                    "times budget.family_step_factor for its family, where set, in a space of several families) with "
                    "alpha*T^2*KL(teacher||student) + beta*CE; retrain longer for deployment"}


def _card(view: RunView, t: FrozenTrial, pos: dict[str, Any], io: ModelIO, b: Bundle,
          recipe: dict[str, Any]) -> str:
    record = TrialRecord.from_trial(t)
    rec, arch = record.metrics, record.arch
    teacher = view.attrs.get("teacher", {}) or {}
    if pos["on_front"]:
        place = (f"on the Pareto front ({', '.join(pos['objectives'])}): point {pos['rank']} of "
                 f"{pos['front_size']} by cost" + (", the recommended student" if pos["is_recommended"] else
                                                    f" (the recommended one is trial {pos['recommended']})"))
    else:
        place = f"not on the Pareto front ({pos['front_size']} points; recommended: trial {pos['recommended']})"
    dup = record.duplicate_of
    lines = [
        f"# Student: trial {t.number} of run `{view.run_dir.name}`", "",
        f"`{describe(arch)}`", "",
        f"- Place: {place}",
        f"- Status: {record.status}" + (f" (weights of trial {dup})" if dup is not None else ""),
        f"- Task: {recipe['task']}; input {list(io.input_shape)}, {io.num_outputs} outputs"
        + (" (one block of logits per task, each its own softmax: " + ", ".join(  # multi-task
            f"`{n}` {sum(io.heads[:i])}..{sum(io.heads[:i + 1]) - 1}" for i, n in enumerate(io.head_names)) + ")"
           if io.heads else ""),
        f"- Search space: {recipe['space']}; search seed {recipe['search_seed']}; "
        f"student seed {recipe['student_seed']}",
        "", "## Costs", "",
        "| | student | teacher | ratio |", "|---|---:|---:|---:|",
        f"| MACs | {rec.get('macs', 0):,} | {teacher.get('macs', 0):,} | {rec.get('macs_ratio', math.nan):.4f} |",
        f"| params | {rec.get('params', 0):,} | {teacher.get('params', 0):,} | "
        f"{rec.get('params_ratio', math.nan):.4f} |",
        "", "## Metrics (validation split, after the proxy training)", "",
        f"- accuracy: {rec.get('accuracy', math.nan):.4f} (teacher: "
        f"{teacher.get('val_accuracy', math.nan):.4f} val, {teacher.get('test_accuracy') or math.nan:.4f} test)",
        f"- agreement with the teacher: {rec.get('agreement', math.nan):.4f}",
        f"- KD loss: {rec.get('kd_loss', math.nan):.4f}",
        "", "## Training recipe (proxy budget)", "", "```json", json.dumps(recipe["budget"], indent=2), "```",
        "", "## Files", "",
        "- `arch.json`: `nas_student.load_student(\"arch.json\", weights=\"weights.pt\")` rebuilds the model",
        "- `weights.pt`: state_dict, `torch.load(path, weights_only=True)`",
        "- `model.ts`: TorchScript (traced, eval mode), `torch.jit.load(path)`",
        f"- `model.onnx`: ONNX (input `input`, output `logits`, dynamic batch); max abs diff to "
        f"PyTorch {b.onnx_max_abs_diff:.2e} (onnxruntime, CPU)",
        "- `recipe.json`: the KD budget and search settings", "",
        "## Versions", "",
        *[f"- {k}: {v}" for k, v in _versions().items()], "",
    ]
    return "\n".join(lines)


def fixed_input(io: ModelIO, batch: int = 4) -> Any:
    """A fixed example batch of the task's input: token ids for token tasks, else uniform."""
    import torch

    g = torch.Generator().manual_seed(0)
    if io.tokens:
        return torch.randint(0, int(io.vocab_size or 1), (batch, *io.input_shape), generator=g)
    return torch.rand(batch, *io.input_shape, generator=g)


def export_trial(view: RunView, number: int, out: Path) -> Bundle:
    """Write the bundle for a trained trial into ``out`` (created; files replaced). The bundle
    is written and checked in ``out/.partial`` and moved into ``out`` only when complete."""
    t = trained_trial(view, number)
    if out.exists() and not out.is_dir():
        raise NasStudentError(f"--out {out}: is a file, not a folder")
    created = not out.exists()
    partial = out / ".partial"  # inside out: the final moves stay on one filesystem
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        bundle = _write_bundle(view, t, number, partial)
        for f in bundle.files:
            os.replace(f, out / f.name)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return dataclasses.replace(bundle, out=out, files=[out / f.name for f in bundle.files])


def _write_bundle(view: RunView, t: FrozenTrial, number: int, out: Path) -> Bundle:
    import numpy as np
    import torch

    io = run_io(view)
    model = trial_model(view, t)
    files = []
    spec = {"arch": TrialRecord.from_trial(t).arch,
            "io": io.to_dict()}
    (out / "arch.json").write_text(json.dumps(spec, indent=2) + "\n")
    files.append(out / "arch.json")
    shutil.copyfile(weights_path(view, t), out / "weights.pt")
    files.append(out / "weights.pt")

    x = fixed_input(io)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still works
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # RNN shape checks; check_trace verifies
        ref = model(x)
        ts = torch.jit.trace(model, io.example_input(), check_trace=True)
        ts.save(str(out / "model.ts"))
        ts_diff = float((torch.jit.load(str(out / "model.ts"))(x) - ref).abs().max())
    files.append(out / "model.ts")

    onnx_path = out / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (io.example_input(),), str(onnx_path), dynamo=False,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    files.append(onnx_path)
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as e:
        raise NasStudentError(f"cannot check the ONNX export: {e} (pip install onnx onnxruntime)") from None
    onnx.checker.check_model(str(onnx_path))
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})[0]
    onnx_diff = float(np.abs(got - ref.numpy()).max())
    if not onnx_diff <= ONNX_TOLERANCE:
        raise NasStudentError(f"ONNX export of trial {number} differs from PyTorch by {onnx_diff:.2e} "
                              f"(> {ONNX_TOLERANCE:g})")

    recipe = _recipe(view, t)
    (out / "recipe.json").write_text(json.dumps(recipe, indent=2) + "\n")
    files.append(out / "recipe.json")
    bundle = Bundle(out, files, onnx_diff, ts_diff)
    (out / "MODEL_CARD.md").write_text(_card(view, t, front_position(view, number), io, bundle, recipe))
    files.append(out / "MODEL_CARD.md")
    return bundle
