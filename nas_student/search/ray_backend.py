"""The Ray Tune backend: the same objective, run as Ray Tune trials on a local or existing cluster.

Tune schedules the trials (resources per trial, concurrency, retries when a worker dies); the
study stays in the run's Optuna storage, so ``pareto``, ``show`` and ``export`` work unchanged.

Ray's ``OptunaSearch`` can keep its study in a storage too, but it only tells values: the
records, constraints and pruned/failed states that the artefacts are made of are written by
the objective on the Optuna trial itself. So :class:`StudySearcher` is the equivalent that
keeps them: in the driver it claims a trial from the study (the same claim as local workers:
never more trials than asked), samples the architecture there (the sampler's proposals stay
reproducible), and the trainable runs the objective on that trial, opened from the storage,
in a Ray worker; the driver then tells the study how it ended. The teacher's outputs go into
Ray's object store once (``tune.with_parameters``) and are shared by every trial.

Ray stays behind this module.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no experiment tables on the console: the CLI has its bar
import ray
import torch
from optuna.trial import FrozenTrial, TrialState
from ray import tune
from ray.tune.search import ConcurrencyLimiter, Searcher

from nas_student import storage
from nas_student import trial_record as rec
from nas_student.search import liveness
from nas_student.search.context import SearchContext, resolve_device
from nas_student.search.objective import Objective
from nas_student.search.study import WAIT_S, Claim, Tally, claim

RETRIES = 3  # a trial whose worker dies is run again this many times, then marked failed
_log = logging.getLogger(__name__)


def _trainable(config: dict[str, Any], ctx: SearchContext, run_dir: str) -> None:
    """One Tune trial: run the objective on the Optuna trial the driver claimed."""
    ex = ctx.cfg.execution
    torch.set_num_threads(max(1, int(ex.cpus_per_trial)))
    ctx = dataclasses.replace(ctx, device=resolve_device(ctx.cfg.device))  # this worker's device
    study = optuna.load_study(study_name=ctx.cfg.run_name(),
                              storage=storage.open_storage(Path(run_dir), ex.storage),
                              sampler=optuna.samplers.RandomSampler())  # params were sampled in the driver
    trial = optuna.Trial(study, config["trial_id"])
    out: dict[str, Any] = {"finished": 1}
    if trial._cached_frozen_trial.state.is_finished():  # told meanwhile: nothing left to do
        tune.report({**out, "state": "GONE"})
        return
    node = ray.get_runtime_context().get_node_id()
    # every attempt first (ray_nodes), then where it runs now (ray_node): two writes, so a node
    # lost between them must not leave an attempt out of the history a retry extends
    trial.set_user_attr(rec.RAY_NODES, [*trial.user_attrs.get(rec.RAY_NODES, []), node])
    trial.set_user_attr(rec.RAY_NODE, node)
    try:
        out.update(state="COMPLETE", values=list(Objective(ctx, Path(run_dir) / "weights")(trial)))
    except optuna.TrialPruned:
        out.update(state="PRUNED")
    except Exception:  # noqa: BLE001 - the objective recorded the reason; no retry helps
        out.update(state="FAIL")
    tune.report(out)


class StudySearcher(Searcher):
    """A Tune searcher that asks the Optuna study (in its storage) for trials and tells it."""

    def __init__(self, study: optuna.Study, ctx: SearchContext, run_dir: Path,
                 callbacks: list[Callable[[optuna.Study, FrozenTrial], None]]) -> None:
        super().__init__(metric="finished", mode="max")
        self.study, self.ctx, self.run_dir, self.callbacks = study, ctx, run_dir, callbacks
        self.tally = Tally(study, ctx.cfg.search.trials)
        self.live: dict[str, optuna.Trial] = {}  # claimed here, running or queued in Tune
        self._stop: threading.Event | None = None  # started with the first trial (Tune pickles us first)
        self._beat: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles the searcher into its experiment state; threads and the callbacks (the
        CLI's progress display holds locks) stay out: the study in its storage is the state."""
        return {**self.__dict__, "_stop": None, "_beat": None, "callbacks": []}

    def _heartbeats(self) -> None:
        """The driver owns its trials: it keeps them alive, queued ones too (see liveness)."""
        store = storage.of(self.study)
        while not self._stop.wait(liveness.BEAT_S):  # type: ignore[union-attr]
            for trial in list(self.live.values()):
                try:
                    store.set_trial_user_attr(trial._trial_id, rec.ALIVE_AT, time.time())
                except Exception as e:  # noqa: BLE001 - finished meanwhile
                    _log.debug("heartbeat of trial %d not recorded: %s", trial.number, e)

    def close(self) -> None:
        if self._stop is not None and self._beat is not None:
            self._stop.set()
            self._beat.join()

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._beat is None:
            self._stop = threading.Event()
            self._beat = threading.Thread(target=self._heartbeats, name="trial-heartbeats", daemon=True)
            self._beat.start()
        if self.tally.exhausted:
            return Searcher.FINISHED
        got = claim(self.study, self.ctx.cfg.search.trials, self.run_dir, self.ctx.cfg.execution.storage)
        if got is Claim.DONE:
            return Searcher.FINISHED
        if got is Claim.WAIT:
            time.sleep(WAIT_S / 4)
            return None
        self.ctx.space.sample(got)  # here, so that proposals depend only on the seed and the study
        self.live[trial_id] = got
        return {"trial_id": got._trial_id, "number": got.number}

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the study in its storage is the search's state."""

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore: a resumed search reads the study from its storage."""

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        trial = self.live.pop(trial_id, None)
        if trial is None or self.study.get_trials(deepcopy=False)[trial.number].state.is_finished():
            return
        if error or not result or "state" not in result:
            reason = f"Ray trial failed {RETRIES + 1} times (worker lost or crashed)"
            rec.mark_failed(trial.set_user_attr, rec.Failure.ERROR, reason)
            state, values = TrialState.FAIL, None
        else:
            state, values = TrialState[result["state"]], result.get("values")
        frozen = self.study.tell(trial, values, state=state)
        self.tally.add(frozen)
        for callback in self.callbacks:
            callback(self.study, frozen)


def _connect(address: str | None) -> bool:
    """Join the cluster at ``address``, or start a new local one (never an unrelated cluster
    that happens to run here); True if this call started Ray."""
    if ray.is_initialized():
        return False
    ray.init(address=address or "local", include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=False, configure_logging=False)
    return True


def _slots(cpus: float, gpus: float) -> int:
    """How many trials the cluster can run at once with these resources each."""
    have = ray.cluster_resources()
    n = have.get("CPU", 1) / cpus
    if gpus > 0:
        n = min(n, have.get("GPU", 0) / gpus)
    return max(1, int(n))


def optimize(study: optuna.Study, ctx: SearchContext, run_dir: Path,
             callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = ()) -> None:
    """Run trials on Ray Tune until the study has ``cfg.search.trials`` finished students."""
    ex, run_dir = ctx.cfg.execution, run_dir.resolve()
    started = _connect(ex.address)
    try:
        searcher = StudySearcher(study, ctx, run_dir, list(callbacks))
        # Claim only as many trials as can run: Tune would otherwise queue many, all sampled
        # before any result came back.
        search_alg = ConcurrencyLimiter(searcher, ex.max_concurrent or _slots(ex.cpus_per_trial, ex.gpus_per_trial))
        trainable = tune.with_resources(tune.with_parameters(_trainable, ctx=ctx, run_dir=str(run_dir)),
                                        {"cpu": ex.cpus_per_trial, "gpu": ex.gpus_per_trial})
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=search_alg, num_samples=-1),
            run_config=tune.RunConfig(name="tune", storage_path=str(run_dir / ".ray"), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=RETRIES)))
        try:
            tuner.fit()
        finally:
            searcher.close()
        searcher.tally.check()
    finally:
        if started:
            ray.shutdown()
