"""Join a run from another process or machine (``nas-student worker RUN``).

The search that created the run wrote ``run.json`` (the settings, the storage's address) and
``teacher_outputs.pt`` (the teacher's logits, computed once) into the run folder; the study
keeps the teacher's costs and the bounds. A worker reads those instead of recomputing them,
so every worker judges students against the same teacher and the same bounds. Workers on other
machines need the run folder on a shared disk (trained weights are written there too) and a
storage they all reach (``--storage postgresql://...`` or ``journal:`` on the shared disk).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial

from nas_student import storage
from nas_student.config import RunConfig
from nas_student.errors import NasStudentError
from nas_student.search import local
from nas_student.search.context import SearchContext, resolve_budget, resolve_device
from nas_student.search.study import make_sampler
from nas_student.spaces import load_run_space
from nas_student.tasks import task_for_config

TEACHER_OUTPUTS = "teacher_outputs.pt"
_COST_KEYS = ("macs", "params", "size_mb", "latency_ms")


def save_teacher_outputs(run_dir: Path, ctx: SearchContext) -> None:
    """Write the teacher's logits once, for workers to share (atomically: workers may read)."""
    path = run_dir / TEACHER_OUTPUTS
    if path.exists():
        return
    tmp = run_dir / f".{TEACHER_OUTPUTS}.{os.getpid()}.tmp"
    torch.save({"train": ctx.teacher_train_logits.cpu(), "val": ctx.teacher_val_logits.cpu()}, tmp)
    os.replace(tmp, path)


def run_config(run_dir: Path) -> RunConfig:
    info = run_dir / "run.json"
    if not info.exists():
        raise NasStudentError(f"{run_dir}: no run here (expected {info}); start it with `nas-student search`")
    return RunConfig.model_validate(json.loads(info.read_text()))


def context(cfg: RunConfig, run_dir: Path, study: optuna.Study) -> SearchContext:
    """The search context rebuilt from the run folder and the study, not recomputed."""
    outputs = run_dir / TEACHER_OUTPUTS
    if not outputs.exists():
        raise NasStudentError(f"{run_dir}: no {TEACHER_OUTPUTS}; the search that created the run "
                              "writes it before its first trial")
    logits = torch.load(outputs, weights_only=True)
    device = resolve_device(cfg.device)
    teacher = study.user_attrs["teacher"]
    cfg = resolve_budget(cfg, len(logits["train"]))  # the steps the search resolved, rungs included
    return SearchContext(cfg, load_run_space(cfg.space, run_dir), task_for_config(cfg, str(device)), device,
                         {k: teacher[k] for k in _COST_KEYS if k in teacher}, study.user_attrs["bounds"],
                         logits["train"], logits["val"], teacher["val_accuracy"])


def join(run_dir: Path, callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = ()
         ) -> optuna.Study:
    """Work on the run's study until it has its trials (with any other workers)."""
    cfg = run_config(run_dir)
    study = storage.load_study(run_dir, sampler=make_sampler(cfg))
    local.optimize(study, context(cfg, run_dir, study), run_dir, list(callbacks))
    return study
