"""A run's study, for every backend: its sampler and storage, the lock that makes one search
per run folder, creating or resuming it (settings and space checked against the stored ones),
and claiming its trials so that none is run twice and the study never overshoots.

Running the same command again resumes the study: trials left RUNNING by a dead process are
marked FAIL, and the search goes on until the asked number of trials has finished. Any number
of processes may work on one study (``nas-student worker RUN``): each claims a trial only while
fewer than the asked number are finished or running.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas_student import storage
from nas_student import trial_record as rec
from nas_student.config import RunConfig, differences
from nas_student.distill.recipe import budget_by_depth
from nas_student.errors import NasStudentError
from nas_student.search import liveness, proposal, samplers
from nas_student.search.context import SearchContext
from nas_student.search.objective import directions
from nas_student.spaces import fingerprint

FINISHED = (TrialState.COMPLETE,)  # what counts towards --trials (pruned = broke the space's rules)
MAX_FAILURES_IN_A_ROW = 10
MAX_ATTEMPTS_PER_TRIAL = 20
WAIT_S = 1.0
_log = logging.getLogger(__name__)


def make_sampler(cfg: RunConfig) -> optuna.samplers.BaseSampler:
    return samplers.make(cfg.search.sampler, cfg.search.seed)


def open_storage(run_dir: Path, spec: str | None = None) -> optuna.storages.BaseStorage:
    return storage.open_storage(run_dir, spec)


def load_study(run_dir: Path) -> optuna.Study:
    """Open an existing run's study (read or resume)."""
    return storage.load_study(run_dir)


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
                                  f"to add workers to it run `nas-student worker {run_dir.name}`, "
                                  "or choose another --run") from None
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
    for k in ("trust", "prescreen", "recommend"):  # the report after the search; the first stage runs
        d["search"].pop(k)  # only on a new study; which student to recommend: none changes the trials
    d.pop("results_dir")
    d.pop("device")
    d.pop("execution")  # where and how trials run is not what they are
    return d


def _with_defaults(stored: dict) -> dict:
    """A stored key with the settings added since it was written at their defaults, so that a
    run made by an older version resumes unless a new setting is actually used."""
    def merge(default: object, given: object) -> object:
        if isinstance(default, dict) and isinstance(given, dict):
            return {k: merge(default[k], given[k]) if k in given else default[k] for k in default} | {
                k: v for k, v in given.items() if k not in default}
        return given
    if isinstance(stored.get("search"), dict) and "focus" not in stored["search"]:
        stored = {**stored, "search": {**stored["search"], "focus": "front"}}  # what runs did before the setting
    if isinstance(stored.get("budget"), dict) and "reference_depth" not in stored["budget"]:
        stored = {**stored, "budget": budget_by_depth(stored["budget"])}  # before steps by depth
    return merge(_config_key(RunConfig()), stored)  # type: ignore[return-value]


def create_or_resume(cfg: RunConfig, ctx: SearchContext, run_dir: Path) -> optuna.Study:
    study = optuna.create_study(study_name=cfg.run_name(), storage=open_storage(run_dir, cfg.execution.storage),
                                directions=directions(cfg), sampler=make_sampler(cfg),
                                load_if_exists=True)
    key = _config_key(cfg)
    stored = study.user_attrs.get("config_key")
    if stored is None:
        study.set_user_attr("config_key", key)
        study.set_user_attr("config", cfg.model_dump(mode="json"))
        study.set_user_attr("objectives", list(cfg.search.objectives))
        with warnings.catch_warnings():  # experimental in Optuna, stable in use since 3.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(cfg.search.sampled_objectives()))  # optuna-dashboard shows them by name
        study.set_user_attr("teacher", {
            **ctx.teacher_cost, "val_accuracy": ctx.teacher_val_accuracy,
            "test_accuracy": ctx.task.teacher_info.get("test_accuracy"), "key": ctx.task.teacher_info.get("key"),
        })
        study.set_user_attr("bounds", ctx.bounds)
        study.set_user_attr("io", ctx.task.io.to_dict())
        study.set_user_attr("space_fingerprint", fingerprint(ctx.space))
    elif _with_defaults(stored) != key:
        stored = _with_defaults(stored)
        changed = differences(stored, key)
        raise NasStudentError(
            f"run {cfg.run_name()!r} already exists with different settings ({'; '.join(changed[:4])}"
            f"{'; ...' if len(changed) > 4 else ''}); use the same settings to resume it, or another --run name")
    stored_space = study.user_attrs.get("space_fingerprint")
    if stored_space is not None and stored_space != fingerprint(ctx.space):  # runs before it: not checked
        raise NasStudentError(
            f"run {cfg.run_name()!r} was searched with another version of space {ctx.space.name!r} "
            f"({ctx.space.source or cfg.space}: its parameters or rules changed since); a run's space cannot "
            "change under its trials: search the edited space under another --run name")
    conf = study.user_attrs.get("config") or {}
    if (conf.get("search") or {}).get("recommend", cfg.search.recommend) != cfg.search.recommend:
        # the rule may change on a resume (it changes no trial): show, export and train read it here
        study.set_user_attr("config", {**conf, "search": {**conf["search"], "recommend": cfg.search.recommend}})
    was, now = study.user_attrs.get("teacher", {}).get("key"), ctx.task.teacher_info.get("key")
    if was and now and was != now:
        raise NasStudentError(f"run {cfg.run_name()!r} was searched against another built-in teacher (cache entry {was}, "
                              f"now {now}: trained with other settings, e.g. NAS_STUDENT_TEACHER_STEPS); "
                              "give a new --run or the settings it was searched with")
    return study


def n_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


class Claim(Enum):
    DONE = "done"  # the study has its trials
    WAIT = "wait"  # enough are running; one of them may still fail


def claim(study: optuna.Study, target: int, run_dir: Path, spec: str | None,
          prepare: Callable[[optuna.Trial], None] | None = None) -> optuna.Trial | Claim:
    """Fail orphaned trials, then ask for a trial if fewer than ``target`` are finished or
    running. The asked trial is owned by this process (see :mod:`liveness`). ``prepare(trial)``
    runs under the claim lock too: the objective samples the trial's student there, so that a
    process claiming after this one sees it (the sampler's constant liar, and the check that no
    student is trained twice). With ``prepare`` the student is sampled in memory and the trial
    written once (:mod:`proposal`)."""
    store = storage.of(study)
    with storage.claim_lock(study, run_dir, spec) as exclusive:
        liveness.fail_orphans(study, store, claim_held=exclusive, crash_dir=run_dir)
        trials = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
        done = sum(t.state in FINISHED for t in trials)
        if done >= target:
            return Claim.DONE
        if len(trials) >= target:
            return Claim.WAIT
        try:
            if prepare is not None:  # sampled in memory, written once, owned from the start
                return proposal.ask_sampled(study, prepare, liveness.owner_attrs())
            trial = study.ask()
            liveness.adopt(store, trial._trial_id)
            return trial
        except optuna.exceptions.UpdateFinishedTrialError:  # failed by a worker not sharing our lock
            return Claim.WAIT  # (a misconfigured claim lock); ask again


class Tally:
    """A worker's count of its trials: it stops after too many failures in a row, or when the
    space's rules reject almost every sample."""

    def __init__(self, study: optuna.Study, target: int) -> None:
        self.study, self.target = study, target
        self.failures = self.attempts = 0
        self.max_attempts = MAX_ATTEMPTS_PER_TRIAL * max(1, target - n_finished(study))
        self.refused: Counter[str] = Counter()  # why samples were refused before training

    def add(self, trial: FrozenTrial) -> None:
        self.failures = self.failures + 1 if trial.state == TrialState.FAIL else 0
        self.attempts += 1
        if trial.state == TrialState.PRUNED:
            self.refused[str(trial.user_attrs.get(rec.STATUS) or "no reason recorded").split(":")[0]] += 1

    @property
    def exhausted(self) -> bool:
        return self.failures >= MAX_FAILURES_IN_A_ROW or self.attempts >= self.max_attempts

    def check(self) -> None:
        """Raise the reason the worker stopped early, if it did."""
        if self.failures >= MAX_FAILURES_IN_A_ROW:
            last = self.study.get_trials(deepcopy=False)[-1]
            reason = rec.TrialRecord.from_trial(last).fail_reason or "unknown"
            raise NasStudentError(f"{self.failures} trials failed in a row; stopping. Last reason: {reason}")
        done = n_finished(self.study)
        if self.attempts >= self.max_attempts and done < self.target:
            why = ", ".join(f"{kind} ({n})" for kind, n in self.refused.most_common()) or "none recorded"
            advice = ("the space's rules reject almost every sample; loosen them" if self.refused and set(self.refused) <= {"invalid"}
                      else "loosen what refuses them")
            raise NasStudentError(f"{self.attempts} samples gave only {done} of {self.target} students "
                                  f"(refused: {why}): {advice}")


def write_run_info(run_dir: Path, cfg: RunConfig) -> None:
    (run_dir / "run.json").write_text(json.dumps(cfg.model_dump(mode="json"), indent=2))
