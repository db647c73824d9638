"""Pareto-aware early stopping of proxy runs (multi-fidelity), for every backend.

Optuna's pruners refuse multi-objective studies and Ray's schedulers rank by one metric, so the
rule here is Pareto dominance at a rung: at each rung (a fraction of the proxy steps, e.g. 1/4
and 1/2) the student is evaluated on the validation set, and it is stopped if another student
*at the same rung* dominates it on the study's objectives (its costs lower or equal, its
accuracy/agreement at that rung higher or equal, one of them strictly). Costs are known before
training, so only the metrics are partial; comparing at the same rung keeps the comparison fair.

A stopped student is a COMPLETE trial whose record holds its metrics at the rung (a lower bound
of what the full proxy would give), marked ``stopped_early`` (the step it stopped at); it stays
in the front computation at those values, where its dominator usually hides it. Each rung's
metrics and costs are kept in the trial's ``rungs`` user attr (``{step: {metric: value}}``),
written as they come so that concurrent workers compare against each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import optuna
import torch
from optuna.trial import TrialState

from nas_student import trial_record as rec
from nas_student.config import OBJECTIVES, RunConfig
from nas_student.distill import evaluate

if TYPE_CHECKING:
    from nas_student.search.context import SearchContext

METRICS = ("accuracy", "agreement")


def rung_steps(cfg: RunConfig) -> list[int]:
    """The steps at which students are compared (each < the full budget)."""
    steps = cfg.budget.steps
    return sorted({max(1, round(f * steps)) for f in cfg.search.rungs} - {steps})


def dominates(a: dict[str, float], b: dict[str, float], objectives: Sequence[str]) -> bool:
    """True if ``a`` is at least as good as ``b`` on every objective and better on one."""
    better = False
    for o in objectives:
        sign = 1.0 if OBJECTIVES[o] == "maximize" else -1.0
        da, db = sign * a[o], sign * b[o]
        if da < db:
            return False
        better = better or da > db
    return better


def dominated_at(point: dict[str, float], step: int, peers: Sequence[optuna.trial.FrozenTrial],
                 objectives: Sequence[str]) -> int | None:
    """The number of a peer that dominates ``point`` at rung ``step``, or None."""
    for t in peers:
        other = t.user_attrs.get(rec.RUNGS, {}).get(str(step))
        if other is not None and dominates(other, point, objectives):
            return t.number
    return None


class RungStopper:
    """The ``on_step`` hook for :func:`nas_student.distill.train`: at each rung, evaluate,
    record, and stop the run if another student dominates this one there."""

    def __init__(self, ctx: SearchContext, trial: optuna.Trial, model: torch.nn.Module,
                 costs: dict[str, float]) -> None:
        self.ctx, self.trial, self.model, self.costs = ctx, trial, model, dict(costs)
        self.rungs = set(rung_steps(ctx.cfg))
        self.seen: dict[str, dict[str, float]] = {}
        self.stopped_by: int | None = None

    def __call__(self, step: int) -> bool:
        if step not in self.rungs:
            return False
        ctx = self.ctx
        metrics = evaluate(self.model, ctx.task.val.x, ctx.task.val.y, ctx.teacher_val_logits,
                           temperature=ctx.cfg.budget.final_temperature)  # as the objective scores
        point = {**self.costs, **{m: float(metrics[m]) for m in METRICS}}
        self.seen[str(step)] = point
        self.trial.set_user_attr(rec.RUNGS, self.seen)
        peers = [t for t in self.trial.study.get_trials(deepcopy=False,
                                                        states=(TrialState.COMPLETE, TrialState.RUNNING))
                 if t.number != self.trial.number]
        self.stopped_by = dominated_at(point, step, peers, ctx.cfg.search.objectives)
        return self.stopped_by is not None


def hook(ctx: SearchContext, trial: optuna.Trial, model: torch.nn.Module,
         costs: dict[str, float]) -> RungStopper | None:
    """A stopper when the run asks for early stopping, else None (train to the full budget)."""
    return RungStopper(ctx, trial, model, costs) if ctx.cfg.search.early_stop else None
