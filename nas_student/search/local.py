"""The local backend: this process claims trials from the study and runs them, one at a
time, with any number of other processes (``nas-student worker RUN``) on the same study.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas_student import storage
from nas_student.errors import NasStudentError, disk_error_line, is_disk_error
from nas_student import trial_record as rec
from nas_student.search import liveness
from nas_student.search.context import SearchContext
from nas_student.search.objective import Objective
from nas_student.search.study import WAIT_S, Claim, Tally, claim

_log = logging.getLogger(__name__)


def run_trial(study: optuna.Study, trial: optuna.Trial, objective: Callable[[optuna.Trial], tuple[float, ...]]
              ) -> FrozenTrial:
    """Run one claimed trial here, its heartbeat going, and tell the study how it ended."""
    with liveness.heartbeat(storage.of(study), trial._trial_id):
        try:
            values, state = objective(trial), TrialState.COMPLETE
        except optuna.TrialPruned:
            values, state = None, TrialState.PRUNED
        except Exception as e:  # noqa: BLE001 - the objective recorded the reason; the search goes on
            if is_disk_error(e):  # the machine's condition, not the student's: stop, keep the trial retryable
                _stop_on_disk_error(study, trial, e)
            _log.warning("trial %d failed: %s", trial.number, trial.user_attrs.get(rec.FAIL_REASON, e))
            values, state = None, TrialState.FAIL
        except BaseException:  # Ctrl-C, SystemExit: never leave the trial RUNNING
            rec.mark_failed(trial.set_user_attr, rec.Failure.INTERRUPTED, "interrupted")
            study.tell(trial, state=TrialState.FAIL)
            raise
    return study.tell(trial, values, state=state)


def _stop_on_disk_error(study: optuna.Study, trial: optuna.Trial, e: Exception) -> None:
    line = disk_error_line(e, "the run folder")
    try:
        rec.mark_failed(trial.set_user_attr, rec.Failure.INTERRUPTED, f"interrupted: {line.split(';')[0]}")
        study.tell(trial, state=TrialState.FAIL)
    except Exception:  # noqa: BLE001 - the study's own disk may be full: the next run marks it failed
        pass
    raise NasStudentError(line) from None


def optimize(study: optuna.Study, ctx: SearchContext, run_dir: Path,
             callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = ()) -> None:
    """Claim and run trials until ``cfg.search.trials`` students have been evaluated (complete
    trials; samples that break the space's rules are pruned at once and do not count), by this
    process and any others working on the same study."""
    target, spec = ctx.cfg.search.trials, ctx.cfg.execution.storage
    objective = Objective(ctx, weights_dir=run_dir / "weights")
    tally = Tally(study, target)
    with liveness.crash_log(run_dir):  # a native crash leaves its report for whoever finds the trial
        while not tally.exhausted:
            trial = claim(study, target, run_dir, spec, prepare=objective.sample)
            if trial is Claim.DONE:
                break
            if trial is Claim.WAIT:  # others run the last trials; take over any that fails
                time.sleep(WAIT_S)
                continue
            frozen = run_trial(study, trial, objective)
            tally.add(frozen)
            for callback in callbacks:
                callback(study, frozen)
    tally.check()
