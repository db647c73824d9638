"""The local backend: an Optuna multi-objective study in SQLite in the run folder.

Running the same command again resumes the study: trials left RUNNING by a killed process are
marked FAIL, and the search goes on until the asked number of trials has finished.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas_student.config import RunConfig
from nas_student.errors import NasStudentError
from nas_student.search import samplers
from nas_student.search.objective import Objective, SearchContext, directions

FINISHED = (TrialState.COMPLETE,)  # what counts towards --trials (pruned = broke the space's rules)
MAX_FAILURES_IN_A_ROW = 10
MAX_ATTEMPTS_PER_TRIAL = 20


def make_sampler(cfg: RunConfig) -> optuna.samplers.BaseSampler:
    return samplers.make(cfg.search.sampler, cfg.search.seed)


def storage_url(run_dir: Path) -> str:
    return f"sqlite:///{(run_dir / 'study.db').resolve()}"


def open_storage(run_dir: Path, attempts: int = 10) -> optuna.storages.RDBStorage:
    """The run's SQLite storage. Two processes opening a new file at once (a search starting
    while ``pareto`` reads it) race to create the schema; the loser retries."""
    import sqlalchemy.exc

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(storage_url(run_dir),
                                              engine_kwargs={"connect_args": {"timeout": 60}})
        except sqlalchemy.exc.SQLAlchemyError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


def load_study(run_dir: Path) -> optuna.Study:
    """Open an existing run's study (read or resume)."""
    if not (run_dir / "study.db").exists():
        raise NasStudentError(f"{run_dir}: no study here (expected {run_dir / 'study.db'})")
    storage = open_storage(run_dir)
    names = optuna.get_all_study_names(storage)
    if len(names) != 1:
        raise NasStudentError(f"{run_dir}/study.db: expected one study, found {len(names)}")
    return optuna.load_study(study_name=names[0], storage=storage)


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run folder while searching in it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    path = run_dir / ".lock"
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise NasStudentError(f"{run_dir} is in use by another search (pid {f.read().strip() or '?'}); "
                                  "wait for it or choose another --run") from None
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _config_key(cfg: RunConfig) -> dict:
    """The settings a resumed study must share with the one that created it."""
    d = cfg.model_dump(mode="json")
    d["search"].pop("trials")
    for k in ("trust", "prescreen"):  # the report after the search; the first stage runs only on a
        d["search"].pop(k)  # new study: neither changes a study that is being resumed
    d.pop("results_dir")
    d.pop("device")
    return d


def create_or_resume(cfg: RunConfig, ctx: SearchContext, run_dir: Path) -> optuna.Study:
    storage = open_storage(run_dir)
    study = optuna.create_study(study_name=cfg.run_name(), storage=storage,
                                directions=directions(cfg), sampler=make_sampler(cfg),
                                load_if_exists=True)
    key = _config_key(cfg)
    stored = study.user_attrs.get("config_key")
    if stored is None:
        study.set_user_attr("config_key", key)
        study.set_user_attr("config", cfg.model_dump(mode="json"))
        study.set_user_attr("objectives", list(cfg.search.objectives))
        study.set_user_attr("teacher", {
            **ctx.teacher_cost, "val_accuracy": ctx.teacher_val_accuracy,
            "test_accuracy": ctx.task.teacher_info.get("test_accuracy"),
        })
        study.set_user_attr("bounds", ctx.bounds)
        study.set_user_attr("io", dataclasses.asdict(ctx.task.io))
    elif stored != key:
        changed = sorted(k for k in key if key[k] != stored.get(k))
        raise NasStudentError(
            f"run {cfg.run_name()!r} already exists with different settings ({', '.join(changed)}); "
            f"use the same settings to resume it, or another --run name")
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(study.study_name), t.number)
        storage.set_trial_user_attr(trial_id, "fail_reason", "interrupted (process killed)")
        storage.set_trial_user_attr(trial_id, "status", "failed: interrupted (process killed)")
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    return study


def n_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def optimize(study: optuna.Study, ctx: SearchContext, run_dir: Path,
             callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = ()) -> None:
    """Run trials until ``cfg.search.trials`` students have been evaluated (complete trials;
    samples that break the space's rules are pruned at once and do not count)."""
    target = ctx.cfg.search.trials
    objective = Objective(ctx, weights_dir=run_dir / "weights")
    failures = attempts = 0
    max_attempts = MAX_ATTEMPTS_PER_TRIAL * max(1, target - n_finished(study))

    def stop_when_done(study: optuna.Study, trial: FrozenTrial) -> None:
        nonlocal failures, attempts
        failures = failures + 1 if trial.state == TrialState.FAIL else 0
        attempts += 1
        if failures >= MAX_FAILURES_IN_A_ROW or attempts >= max_attempts or n_finished(study) >= target:
            study.stop()

    if n_finished(study) >= target:
        return
    study.optimize(objective, n_trials=None, catch=(Exception,),
                   callbacks=[*callbacks, stop_when_done], gc_after_trial=False)
    if failures >= MAX_FAILURES_IN_A_ROW:
        last = study.get_trials(deepcopy=False)[-1]
        reason = last.user_attrs.get("fail_reason", "unknown")
        raise NasStudentError(f"{failures} trials failed in a row; stopping. Last reason: {reason}")
    if attempts >= max_attempts and n_finished(study) < target:
        raise NasStudentError(f"{attempts} samples gave only {n_finished(study)} of {target} students: "
                              "the space's rules reject almost every sample; loosen them")


def write_run_info(run_dir: Path, cfg: RunConfig) -> None:
    (run_dir / "run.json").write_text(json.dumps(cfg.model_dump(mode="json"), indent=2))
