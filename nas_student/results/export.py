"""Read one trial of a run (read-only) and export it as a self-contained bundle.

Bundle (``export_trial``): ``arch.json`` (spec for :func:`nas_student.build`), ``weights.pt``
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
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from nas_student.config import DEFAULT_RECOMMEND, OBJECTIVES
from nas_student.errors import NasStudentError
from nas_student.families.base import ModelIO, describe
from nas_student.results.recommend import Rule, parse_rule, recommend

ONNX_TOLERANCE = 1e-5


# ------------------------------------------------------------------------------------ the run

@dataclass
class RunView:
    """A run opened for reading: its folder, study attrs and trials frame."""

    run_dir: Path
    study: optuna.Study
    attrs: dict[str, Any]
    trials: pd.DataFrame
    objectives: list[str] = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        return self.attrs.get("config", {}) or {}

    @property
    def recommend(self) -> str:
        """The run's recommendation rule (runs made before rules existed: the default)."""
        return (self.config.get("search") or {}).get("recommend", DEFAULT_RECOMMEND)


def resolve_run(run: str | Path, results_dir: str | Path = "results") -> Path:
    """A run folder path as given, else the run name under ``results_dir``."""
    from nas_student.search.storage import is_run

    p = Path(run)
    if is_run(p):
        return p
    q = Path(results_dir) / str(run)
    if is_run(q):
        return q
    raise NasStudentError(f"no run {str(run)!r}: neither {p} nor {q} holds a study.db or run.json")


def parse_objectives(text: str | None, default: list[str] | tuple[str, ...]) -> list[str]:
    if not text:
        return list(default)
    objs = [o.strip() for o in text.split(",") if o.strip()]
    bad = [o for o in objs if o not in OBJECTIVES]
    if bad or not objs or len(set(objs)) != len(objs):
        raise NasStudentError(f"--objectives must be distinct names from {sorted(OBJECTIVES)}, "
                              f"got {text!r}")
    return objs


def check_measured(view: RunView, objs: list[str]) -> None:
    """Refuse objectives the run has no values for (latency is measured only in searches that
    optimise or bound it): a front over them would be empty, not informative."""
    t = view.trials
    trained = t[t["feasible"].astype(bool)]
    missing = [o for o in objs if o not in t or (len(trained) and trained[o].isna().all())]
    if missing:
        raise NasStudentError(f"{view.run_dir}: the run has no {', '.join(missing)} values (its search "
                              f"measured {', '.join(view.objectives)}; latency_ms only when the search "
                              "optimises or bounds it)")


def open_run(run_dir: Path, objectives: list[str] | None = None) -> RunView:
    """Open a run's study (a search may still be writing to it: nothing is written here)."""
    from nas_student.results import trials_frame
    from nas_student.search.optuna_backend import load_study

    study = load_study(run_dir)
    attrs = dict(study.user_attrs)
    objs = objectives or list(attrs.get("objectives", ["accuracy", "macs", "params"]))
    return RunView(run_dir, study, attrs, trials_frame(study), objs)


def get_trial(view: RunView, number: int) -> FrozenTrial:
    trials = view.study.get_trials(deepcopy=False)
    match = [t for t in trials if t.number == number]
    if not match:
        last = f"0..{len(trials) - 1}" if trials else "none yet"
        raise NasStudentError(f"{view.run_dir}: no trial {number} (trials: {last})")
    return match[0]


def run_io(view: RunView) -> ModelIO:
    """The interface of a run's models, without loading its data or teacher: stored in the
    study (``io``); older runs of a built-in task fall back to the task's constant."""
    if view.attrs.get("io"):
        return ModelIO.from_dict(view.attrs["io"])

    return run_io(view)


def trial_model(view: RunView, t: FrozenTrial, *, weights: bool = True) -> Any:
    """Rebuild a trial's student; with ``weights``, load its proxy weights (eval mode)."""
    import torch

    from nas_student.families import build

    if "arch" not in t.user_attrs:
        raise NasStudentError(f"trial {t.number} has no architecture ({t.state.name.lower()})")
    model = build(t.user_attrs["arch"], run_io(view))
    if weights:
        path = weights_path(view, t)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def weights_path(view: RunView, t: FrozenTrial) -> Path:
    path = view.run_dir / "weights" / f"{t.user_attrs.get('arch_hash', '?')}.pt"
    if not path.exists():
        raise NasStudentError(f"trial {t.number}: no trained weights ({path} is missing)")
    return path


def trained_trial(view: RunView, number: int) -> FrozenTrial:
    """The trial, if it is a trained student (else a one-line error saying why not)."""
    t = get_trial(view, number)
    status = t.user_attrs.get("status", t.state.name.lower())
    if t.state != TrialState.COMPLETE:
        raise NasStudentError(f"trial {number} was not trained: {t.state.name.lower()} ({status})")
    if not t.user_attrs.get("feasible", False):
        raise NasStudentError(f"trial {number} was not trained: {status}")
    return t


# --------------------------------------------------------------------------------- layer table

def layer_table(model: Any, io: ModelIO) -> tuple[pd.DataFrame, int]:
    """One row per leaf module run in a forward pass of one example: name, type, output shape
    (the first output of modules that return several, e.g. RNNs), own params and MACs (as
    :func:`nas_student.cost.profile` counts them, module by module). A parent that holds
    parameters itself (e.g. a learned positional embedding) or runs ops in its own forward (an
    attention block's matmuls) gets an ``(own)`` row, so params and MACs sum to the model's; a
    row ``(elsewhere)`` would hold any MACs left over. Returns the table and the total MACs."""
    import torch
    from torch import nn

    from nas_student.cost import profile
    from nas_student.cost.profile import macs_by_path

    macs = macs_by_path(model, io.example_input())
    rows: list[dict[str, Any]] = []
    hooks = []

    def hook(name: str):
        def fn(mod: nn.Module, inp: tuple, out: Any) -> None:
            first = out[0] if isinstance(out, (tuple, list)) and out else out
            shape = tuple(first.shape) if isinstance(first, torch.Tensor) else None
            rows.append({"module": name, "type": type(mod).__name__,
                         "output": "x".join(map(str, shape[1:])) if shape else "?",
                         "params": sum(p.numel() for p in mod.parameters(recurse=False)),
                         "macs": macs.get(name, 0)})
        return fn

    for name, mod in model.named_modules():
        if name and not list(mod.children()):
            hooks.append(mod.register_forward_hook(hook(name)))
    was = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(io.example_input())
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    total = profile(model, io.example_input()).macs
    macs[""] = total
    for name, mod in model.named_modules():  # a parent's own parameters and ops (its forward's matmuls)
        children = [f"{name}.{c}" if name else c for c, _ in mod.named_children()]
        if not children:
            continue
        held = sum(p.numel() for p in mod.parameters(recurse=False))
        own = macs.get(name, 0) - sum(macs.get(c, 0) for c in children)
        if held or own:
            rows.append({"module": name or "(model)", "type": f"{type(mod).__name__} (own)", "output": "",
                         "params": held, "macs": own})
    df = pd.DataFrame(rows, columns=["module", "type", "output", "params", "macs"])
    rest = total - int(df["macs"].sum())
    if rest:
        df.loc[len(df)] = ["(elsewhere)", "", "", 0, rest]
    return df, total


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


def recommended_trial(view: RunView) -> tuple[int, Rule]:
    """The trial the run recommends (its rule, :mod:`nas_student.results.recommend`) and the
    rule, for commands given no ``--trial``."""
    from nas_student.results import pareto_front

    front = pareto_front(view.trials, view.objectives)
    if front.empty:
        raise NasStudentError(f"{view.run_dir}: no trained student on the front yet; give --trial N "
                              "(see `nas-student pareto`)")
    rule = parse_rule(view.recommend)
    return int(recommend(front, view.objectives, rule)), rule  # type: ignore[arg-type]


def front_position(view: RunView, number: int) -> dict[str, Any]:
    """Where a trial stands: on the front (rank by cost among its n points), recommended or not."""
    from nas_student.results import pareto_front

    front = pareto_front(view.trials, view.objectives)
    chosen = recommend(front, view.objectives, parse_rule(view.recommend))
    trials = front["trial"].tolist()
    src = view.trials.set_index("trial").get("duplicate_of")
    original = number
    if src is not None and number in src.index and not pd.isna(src.loc[number]):
        original = int(src.loc[number])
    return {"on_front": original in trials, "rank": trials.index(original) + 1 if original in trials else None,
            "front_size": len(trials), "recommended": chosen, "is_recommended": original == chosen,
            "objectives": list(view.objectives)}


def _recipe(view: RunView, t: FrozenTrial) -> dict[str, Any]:
    from nas_student.search.objective import _seed  # the per-student training seed

    cfg = view.config
    seed = cfg.get("search", {}).get("seed", 0)
    h = t.user_attrs["arch_hash"]
    return {"task": cfg.get("task"), "space": cfg.get("space"), "budget": cfg.get("budget"),
            "constraints": cfg.get("constraints"), "search_seed": seed,
            "student_seed": _seed(h, seed), "objectives": cfg.get("search", {}).get("objectives"),
            "teacher": view.attrs.get("teacher"), "arch_hash": h,
            "note": "proxy training: the student was trained for budget.steps steps with "
                    "alpha*T^2*KL(teacher||student) + beta*CE; retrain longer for deployment"}


def _card(view: RunView, t: FrozenTrial, pos: dict[str, Any], io: ModelIO, b: Bundle,
          recipe: dict[str, Any]) -> str:
    rec = t.user_attrs.get("record", {})
    teacher = view.attrs.get("teacher", {}) or {}
    arch = t.user_attrs["arch"]
    if pos["on_front"]:
        place = (f"on the Pareto front ({', '.join(pos['objectives'])}): point {pos['rank']} of "
                 f"{pos['front_size']} by cost" + (", the recommended student" if pos["is_recommended"] else
                                                    f" (the recommended one is trial {pos['recommended']})"))
    else:
        place = f"not on the Pareto front ({pos['front_size']} points; recommended: trial {pos['recommended']})"
    dup = t.user_attrs.get("duplicate_of")
    lines = [
        f"# Student: trial {t.number} of run `{view.run_dir.name}`", "",
        f"`{describe(arch)}`", "",
        f"- Place: {place}",
        f"- Status: {t.user_attrs.get('status', '')}" + (f" (weights of trial {dup})" if dup is not None else ""),
        f"- Task: {recipe['task']}; input {list(io.input_shape)}, {io.num_outputs} outputs",
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
        "- `arch.json`: `nas_student.build(\"arch.json\", weights=\"weights.pt\")` rebuilds the model",
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
    spec = {"arch": t.user_attrs["arch"],
            "io": {**dataclasses.asdict(io), "input_shape": list(io.input_shape)}}
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
