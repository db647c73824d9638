"""The objective: one function, shared by every backend. Sample -> build -> cost -> (train).

An architecture that breaks the space's rules is pruned with a positive constraint value; one
over the cost bounds is completed as infeasible with its real costs and accuracy 0 (never
trained); an architecture already evaluated in this study is not trained again (its record is
copied, marked ``duplicate_of``).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from nas_student import trial_record as rec
from nas_student.config import OBJECTIVES, RunConfig
from nas_student.cost.constraints import constraint_values, is_feasible
from nas_student.cost.price import price
from nas_student.distill import evaluate, train
from nas_student.families import build
from nas_student.quantization import int8_path
from nas_student.search import early_stop, liveness, memory
from nas_student.search.context import SearchContext
from nas_student.seeds import student_seed
from nas_student.spaces import arch_hash


class Objective:
    """Called once per trial. With ``weights_dir``, each trained student's proxy weights are
    kept there as ``<arch_hash>.pt`` (a state_dict, for export)."""

    def __init__(self, ctx: SearchContext, weights_dir: Path | None = None) -> None:
        self.ctx, self.weights_dir = ctx, weights_dir

    def _values(self, record: dict[str, float]) -> tuple[float, ...]:
        """The objective values; a NaN or infinite one fails the trial with its reason (Optuna
        would fail it silently)."""
        names = self.ctx.cfg.search.sampled_objectives()
        values = tuple(float(record[o]) for o in names)
        bad = [f"{o}={v}" for o, v in zip(names, values) if not math.isfinite(v)]
        if bad:
            raise ValueError(f"objective value not finite: {', '.join(bad)}")
        return values

    def sample(self, trial: optuna.Trial) -> None:
        """Sample the trial's student and record it (the claim does this under its lock, so
        every earlier trial's student is known to a later one). An error here is left for
        :meth:`__call__`, which samples again (the same values) and records it."""
        try:
            arch = self.ctx.space.sample(trial)
        except Exception:  # noqa: BLE001 - recorded when the trial runs
            return
        trial.set_user_attr(rec.ARCH, arch)
        trial.set_user_attr(rec.ARCH_HASH, arch_hash(arch))

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        """Evaluate one student; an exception fails the trial with its reason recorded."""
        try:
            return self._evaluate(trial)
        except optuna.TrialPruned:
            raise
        except Exception as e:
            reason = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
            rec.mark_failed(trial.set_user_attr, rec.Failure.ERROR, reason)
            raise

    def _evaluate(self, trial: optuna.Trial) -> tuple[float, ...]:
        ctx, t0 = self.ctx, time.perf_counter()
        arch = ctx.space.sample(trial)
        h = arch_hash(arch)
        trial.set_user_attr(rec.ARCH, arch)
        trial.set_user_attr(rec.ARCH_HASH, h)
        broken = ctx.space.violations(arch)
        if broken:
            trial.set_constraint("space_rules", float(len(broken)))
            trial.set_user_attr(rec.STATUS, "invalid: " + "; ".join(broken))
            raise optuna.TrialPruned("; ".join(broken))
        earlier = find_evaluated(trial, h)
        if earlier is not None:
            return self._copy(trial, earlier)
        t_sample = time.perf_counter()
        self._check_memory(trial, memory.training_bytes(memory.meta_params(lambda: build(arch, ctx.task.io))))
        torch.manual_seed(student_seed(h, ctx.cfg.search.seed))
        model = build(arch, ctx.task.io).to(ctx.device)
        t_build = time.perf_counter()
        cost, costs = price(model, ctx.task.io, ctx.device,
                         ctx.cfg.latency if ctx.cfg.needs_latency() else None,
                         int8_path(arch) if ctx.cfg.needs_int8() else None)
        t_cost = time.perf_counter()
        record: dict[str, Any] = dict(costs)
        for k, v in costs.items():
            if k in ctx.teacher_cost:  # int8 costs have no teacher to divide by
                record[f"{k.split('_')[0]}_ratio"] = v / ctx.teacher_cost[k]
        constraints = constraint_values(record, ctx.bounds)
        for k, v in constraints.items():
            trial.set_constraint(k, v)
        feasible = is_feasible(constraints)
        timing = {"sample_s": t_sample - t0, "build_s": t_build - t_sample, "cost_s": t_cost - t_build}
        if feasible:
            self._check_memory(trial, memory.training_bytes(  # activations known now
                cost.params, sum(cost.other_ops.values()), ctx.cfg.budget.batch_size))
            stopper = early_stop.hook(ctx, trial, model, costs)
            budget = ctx.cfg.budget.for_student(arch, ctx.space.families)
            res = train(model, *ctx.task.distillation_set(), budget, teacher=ctx.task.teacher,
                        teacher_logits=ctx.teacher_train_logits, seed=student_seed(h, ctx.cfg.search.seed),
                        on_step=stopper)
            t_train = time.perf_counter()
            record.update(evaluate(model, ctx.task.val.x, ctx.task.val.y, ctx.teacher_val_logits,
                                   temperature=ctx.cfg.budget.final_temperature))
            timing.update(train_s=res.wall_s, eval_s=time.perf_counter() - t_train)
            self._save_weights(model, h)
        else:
            record.update(accuracy=0.0, agreement=0.0)
        trial.set_user_attr(rec.RECORD, record)
        trial.set_user_attr(rec.FEASIBLE, feasible)
        status = f"trained ({budget.steps} KD steps)" if feasible else "infeasible (over the cost bounds)"
        if feasible and stopper is not None and res.steps < budget.steps:  # stopped at a rung
            trial.set_user_attr(rec.STOPPED_EARLY, res.steps)
            status = f"stopped early at step {res.steps} (dominated there by trial {stopper.stopped_by})"
        trial.set_user_attr(rec.STATUS, status)
        timing["total_s"] = time.perf_counter() - t0
        trial.set_user_attr(rec.TIMING, timing)
        return self._values(record)

    def _check_memory(self, trial: optuna.Trial, need: int) -> None:
        """Prune the student (constraint ``memory`` > 0) if training it would not fit."""
        ok, free = memory.fits(need, self.ctx.device)
        if ok:
            return
        trial.set_constraint("memory", need / (memory.SAFETY * free) - 1.0)
        status = f"too large for memory: training needs ~{need / 1e9:.1f} GB, {free / 1e9:.1f} GB free"
        trial.set_user_attr(rec.STATUS, status)
        raise optuna.TrialPruned(status)

    def _save_weights(self, model: torch.nn.Module, h: str) -> None:
        if self.weights_dir is None:
            return
        self.weights_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.weights_dir / f".{h}.{os.getpid()}.tmp"
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
        os.replace(tmp, self.weights_dir / f"{h}.pt")

    def _copy(self, trial: optuna.Trial, earlier: optuna.trial.FrozenTrial) -> tuple[float, ...]:
        for k, v in earlier.constraints.items():
            trial.set_constraint(k, v)
        first = rec.TrialRecord.from_trial(earlier)
        trial.set_user_attr(rec.RECORD, first.metrics)
        trial.set_user_attr(rec.FEASIBLE, first.feasible)
        trial.set_user_attr(rec.DUPLICATE_OF, earlier.number)
        trial.set_user_attr(rec.STATUS, f"duplicate of trial {earlier.number} (not retrained)")
        return self._values(first.metrics)


def find_evaluated(trial: optuna.Trial, h: str, poll_s: float = 0.5) -> optuna.trial.FrozenTrial | None:
    """The trial that evaluated architecture ``h`` first, if any. While an earlier trial of
    another process is still evaluating it (parallel workers), wait for it rather than train
    the same student twice; if that process dies, this one trains it."""
    while True:
        waiting = False
        for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
            if t.user_attrs.get(rec.ARCH_HASH) != h:
                continue
            if t.state == TrialState.COMPLETE and rec.TrialRecord.from_trial(t).duplicate_of is None:
                return t
            if t.state == TrialState.RUNNING and t.number < trial.number:
                waiting = waiting or liveness.orphan_reason(t, time.time()) is None
        if not waiting:
            return None
        time.sleep(poll_s)


def directions(cfg: RunConfig) -> list[str]:
    return [OBJECTIVES[o] for o in cfg.search.sampled_objectives()]
