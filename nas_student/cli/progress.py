"""Progress display for a search: a spinner while the teacher is prepared, then a bar
with trial n/N, the best accuracy so far, the front's size and the time left."""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from nas_student.config import RunConfig
from nas_student.search import SearchOutcome, liveness, run_search
from nas_student.search.context import SearchContext
from nas_student.search.study import FINISHED
from nas_student.trial_record import TrialRecord


def run_with_progress(cfg: RunConfig, console: Console) -> SearchOutcome:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("nas_student").setLevel(logging.WARNING)
    progress = Progress(
        TextColumn("[bold]trial"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[best]}"),
        TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), console=console, transient=False)
    state: dict = {}
    status = console.status(f"Preparing task {cfg.task!r} and its teacher (trained once, then cached)...")
    status.start()

    def on_ready(ctx: SearchContext, done: int) -> None:
        status.stop()
        state["ctx"] = ctx
        t = ctx.task.teacher_info
        console.print(f"Teacher: test accuracy {t.get('test_accuracy', float('nan')):.4f}, "
                      f"{ctx.teacher_cost['macs']:,} MACs, {ctx.teacher_cost['params']:,} params, "
                      f"{ctx.teacher_cost['latency_ms']:.2f} ms "
                      f"(cache: {t.get('cache', '?')}). Bounds: "
                      + ", ".join(f"{k} <= {v:,.4g}" for k, v in ctx.bounds.items()))
        io = ctx.task.io
        if io.heads:  # a multi-task student: what "accuracy" means here
            console.print(f"Multi-task: {len(io.heads)} tasks ({', '.join(io.head_names)}), one head each; accuracy is "
                          f"their mean; costs are fractions of the {cfg.price_against} of their teachers'.")
        factors = cfg.budget.family_step_factor if len(set(ctx.space.families)) > 1 else {}
        longer = state["longer"] = ", ".join(f"{f} x{factors[f]:g}" for f in sorted(set(ctx.space.families) & set(factors)))
        b = cfg.budget
        ratio, power = f"depth/{b.reference_depth}", b.depth_power
        per = (f"{b.steps} KD steps per student" if not power
               else f"{b.steps} KD steps x sqrt({ratio}) per student" if power == 0.5
               else f"{b.steps} KD steps x ({ratio})^{power:g} per student")
        console.print(f"Space {ctx.space.name!r} ({ctx.space.family}), {cfg.search.sampler} sampler, "
                      f"seed {cfg.search.seed}, {per}{f' ({longer})' if longer else ''}, device {ctx.device}.")
        if done >= cfg.search.trials:
            console.print(f"The run already has {done} finished trials (--trials {cfg.search.trials}): "
                          "nothing to search; pass a larger --trials to add more.")
        elif done:
            console.print(f"Resuming: {done} trials already finished.")
        state["task"] = progress.add_task("search", total=max(cfg.search.trials, done), completed=done, best="")
        progress.start()

    def on_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        finished = study.get_trials(deepcopy=False, states=FINISHED)
        records = [TrialRecord.from_trial(t) for t in finished]
        accs = [r.metrics["accuracy"] for r in records if r.feasible and "accuracy" in r.metrics]
        best = f"best acc {max(accs):.4f}" if accs else "no feasible student yet"
        progress.update(state["task"], completed=min(len(finished), cfg.search.trials), best=best)

    def on_trust() -> None:
        progress.stop()
        from nas_student.search.trust import trust_steps

        factor = (" (each student in proportion to its own proxy steps)"
                  if state.get("longer") or cfg.budget.depth_power else "")
        status.update(f"Trust report: re-training the front and a few others for "
                      f"{trust_steps(state['ctx'])} steps{factor}...")
        status.start()

    try:
        return run_search(cfg, on_ready=on_ready, callbacks=[on_trial], on_trust=on_trust)
    finally:
        status.stop()
        progress.stop()


def run_worker(run_dir: Path, console: Console) -> None:
    """``nas-student worker``: one line per trial this process finishes, then the study's count."""
    from nas_student.search import worker

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    target = worker.run_config(run_dir).search.trials
    console.print(f"Worker {liveness.owner()} joining {run_dir} (target {target} trials).")

    def on_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        done = len(study.get_trials(deepcopy=False, states=FINISHED))
        console.print(f"trial {trial.number}: {escape(TrialRecord.from_trial(trial).status_line())} "
                      f"[{done}/{target} finished]", highlight=False)

    study = worker.join(run_dir, [on_trial])
    console.print(f"Done: the study has {len(study.get_trials(deepcopy=False, states=FINISHED))} "
                  f"finished trials. See them with `nas-student pareto {run_dir}`.")
