"""Read a run (read-only): its study, settings and trials; one trial's model, weights and
layers; where a trial stands on the front."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from nas_student.config import DEFAULT_RECOMMEND, OBJECTIVES
from nas_student.errors import NasStudentError
from nas_student.families.base import ModelIO
from nas_student.results.recommend import Rule, parse_rule, recommend
from nas_student.trial_record import TrialRecord

ONNX_TOLERANCE = 1e-5


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
    from nas_student.storage import is_run

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
    from nas_student.storage import load_study

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
    from nas_student.tasks import task_io

    return task_io(view.config["task"])


def trial_model(view: RunView, t: FrozenTrial, *, weights: bool = True) -> Any:
    """Rebuild a trial's student; with ``weights``, load its proxy weights (eval mode)."""
    import torch

    from nas_student.families import build

    if TrialRecord.from_trial(t).arch is None:
        raise NasStudentError(f"trial {t.number} has no architecture ({t.state.name.lower()})")
    model = build(TrialRecord.from_trial(t).arch, run_io(view))
    if weights:
        path = weights_path(view, t)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def weights_path(view: RunView, t: FrozenTrial) -> Path:
    path = view.run_dir / "weights" / f"{TrialRecord.from_trial(t).arch_hash or '?'}.pt"
    if not path.exists():
        raise NasStudentError(f"trial {t.number}: no trained weights ({path} is missing)")
    return path


def trained_trial(view: RunView, number: int) -> FrozenTrial:
    """The trial, if it is a trained student (else a one-line error saying why not)."""
    t = get_trial(view, number)
    record = TrialRecord.from_trial(t)
    if t.state != TrialState.COMPLETE:
        raise NasStudentError(f"trial {number} was not trained: {t.state.name.lower()} ({record.status_line()})")
    if not record.feasible:
        raise NasStudentError(f"trial {number} was not trained: {record.status_line()}")
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
