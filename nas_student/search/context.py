"""The search context: everything a trial needs, computed once per search (the space, the task
and its teacher's outputs and costs, the bounds, the device) and the proxy's budget resolved
once, in steps. The search builds it with :func:`prepare`; a worker rebuilds it from the run
folder (:mod:`nas_student.search.worker`) through the same :func:`resolve_budget`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from nas_student.config import RunConfig
from nas_student.cost.constraints import limits
from nas_student.cost.price import price_teacher
from nas_student.distill import score
from nas_student.families.base import output_heads
from nas_student.errors import NasStudentError
from nas_student.search import feasibility
from nas_student.spaces import (
    SearchSpace,
    auto,
    load_space,
    load_space_file,
    parse_space,
)
from nas_student.spaces.auto import AUTO
from nas_student.tasks import Task, task_for_config, task_io
from nas_student.yamlio import loads_yaml


def _mps() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(name: str) -> torch.device:
    """``auto``: a GPU when present, else the CPU. A device asked for by name must be here."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps() else "cpu")
    kind = name.split(":")[0]
    if (kind == "cuda" and not torch.cuda.is_available()) or (kind == "mps" and not _mps()):
        why = "a CPU-only build of torch" if torch.version.cuda is None and kind == "cuda" else "no such device"
        raise NasStudentError(f"device {name!r} is not available here ({why}, torch {torch.__version__}); "
                              "use --device auto (a GPU when present) or cpu")
    return torch.device(name)


@dataclass
class SearchContext:
    """Everything a trial needs, computed once per search (teacher outputs included)."""

    cfg: RunConfig
    space: SearchSpace
    task: Task
    device: torch.device
    teacher_cost: dict[str, float]  # macs, params, size_mb, latency_ms
    bounds: dict[str, float]
    teacher_train_logits: torch.Tensor
    teacher_val_logits: torch.Tensor
    teacher_val_accuracy: float
    #: a space generated for this run (``space: auto``), to keep in the run folder
    space_yaml: str | None = None


def prepare(cfg: RunConfig) -> SearchContext:
    """Validate the space first (cheap, clear errors), then load the task and its teacher. With
    ``space: auto`` the space is derived from the task and the teacher's cost (or, on a resume,
    read from the run folder)."""
    space = None if cfg.space == AUTO else load_space(cfg.space)
    if space is not None and not cfg.custom_task:  # a built-in task's interface is known before its teacher loads
        feasibility.check_buildable(space, task_io(cfg.task))
    device = resolve_device(cfg.device)
    task = task_for_config(cfg, str(device))
    _, t_cost = price_teacher(task.teacher, task.teacher_interface(), device, cfg.latency, cfg.price_against)
    train_logits = task.teacher_logits("train")  # + the unlabelled pool
    val_logits = task.teacher_logits("val")
    val_acc = score(val_logits, task.val.y, heads=output_heads(task.teacher))["accuracy"]  # padding-aware for LM
    bounds = limits(cfg.constraints, t_cost)
    space_yaml = None
    if space is None:
        space, space_yaml = _auto_space(cfg, task, t_cost, bounds)
    if cfg.custom_task:
        feasibility.check_buildable(space, task.io)  # before any student is trained
    feasibility.check(space, task.io, bounds, cfg.constraints)
    cfg = resolve_budget(cfg, len(train_logits))
    return SearchContext(cfg, space, task, device, t_cost, bounds,
                         train_logits, val_logits, val_acc, space_yaml)


def generate_space(cfg: RunConfig) -> str:
    """The YAML of the space ``space: auto`` would search for ``cfg`` (loads the task and
    prices its teacher)."""
    device = resolve_device(cfg.device)
    task = task_for_config(cfg, str(device))
    _, t_cost = price_teacher(task.teacher, task.teacher_interface(), device, None, cfg.price_against)
    return _auto_yaml(cfg, task, t_cost, limits(cfg.constraints, t_cost))


def _auto_yaml(cfg: RunConfig, task: Task, t_cost: dict[str, float], bounds: dict[str, float]) -> str:
    return auto.auto_space_yaml(task.io, t_cost, bounds, name=f"{cfg.task}-auto", task=cfg.task)


def _auto_space(cfg: RunConfig, task: Task, t_cost: dict[str, float], bounds: dict[str, float]
                ) -> tuple[SearchSpace, str | None]:
    """The run's own generated space when it has one (a resume), else a new one and its YAML
    (for the run folder)."""
    stored = Path(cfg.results_dir) / cfg.run_name() / auto.FILE
    if stored.exists():
        return load_space_file(stored), None
    text = _auto_yaml(cfg, task, t_cost, bounds)
    data, lines = loads_yaml(text, f"{cfg.run_name()}/{auto.FILE}")
    return parse_space(data, lines, str(stored)), text


def resolve_budget(cfg: RunConfig, n_train: int) -> RunConfig:
    """``cfg`` with the proxy's budget in steps (a budget in epochs is converted with the size
    of the distillation set): the one place the search's step count is decided. Rungs, the
    objective and workers read ``cfg.budget.steps`` after this."""
    if cfg.budget.epochs is None:
        return cfg
    steps = cfg.budget.total_steps(n_train)
    return cfg.model_copy(update={"budget": cfg.budget.model_copy(update={"steps": steps, "epochs": None})})
