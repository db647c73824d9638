"""Who runs a trial, and whether it is still alive: no trial is left RUNNING by a dead worker.

Each trial records its owner (``host:pid`` of the process that asked for it) and, while it
runs, a heartbeat (``alive_at``, seconds since the epoch) every :data:`BEAT_S` seconds. Before
asking for a trial, a worker fails the RUNNING trials whose owner is a dead process on its own
host (at once) or whose heartbeat is older than :data:`GRACE_S` (any host, e.g. a machine that
went away). This works on every storage, unlike Optuna's heartbeat (RDB storages only).

A trial is created and its owner recorded under the claim lock (``storage.claim_lock``); Optuna
samples the trial's parameters in between, which takes a while. So a RUNNING trial without an
owner, seen by a worker that holds the claim lock, was left by a worker that died inside its
claim: it is failed at once, not after the grace period.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from nas_student import trial_record as rec

BEAT_S = 10.0
GRACE_S = 120.0  # > BEAT_S, with room for clock skew between machines
_log = logging.getLogger(__name__)


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_here(who: str) -> bool:
    host, _, pid = who.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _zombie(int(pid))


def _zombie(pid: int) -> bool:
    """True for a process that has exited but is not yet reaped by its parent (Linux): it
    answers signals, yet it will never beat again."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def orphan_reason(t: optuna.trial.FrozenTrial, now: float, claim_held: bool = False) -> str | None:
    """Why the RUNNING trial ``t`` has no live worker, or None if it may still have one.
    ``claim_held``: the caller holds the claim lock, so an owner being recorded is not pending."""
    who = t.user_attrs.get(rec.WORKER)
    if claim_held and who is None and t.state == TrialState.RUNNING:
        return "the claiming process died before it recorded itself as the owner (process killed)"
    if who and _dead_here(who):
        return f"worker {who} died (process killed)"
    alive = t.user_attrs.get(rec.ALIVE_AT)
    if alive is None and t.datetime_start is not None:
        alive = t.datetime_start.timestamp()
    if alive is not None and now - alive > GRACE_S:
        return f"worker {who or '?'} silent for {now - alive:.0f} s (machine or process lost)"
    return None


def fail_orphans(study: optuna.Study, storage: BaseStorage, claim_held: bool = False) -> list[int]:
    """Mark FAIL every RUNNING trial of ``study`` whose worker is gone; return their numbers.
    ``claim_held``: the caller holds the claim lock (see the module's docstring)."""
    now, failed = time.time(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        reason = orphan_reason(t, now, claim_held)
        if reason is None:
            continue
        try:
            rec.mark_failed(lambda k, v, i=t._trial_id: storage.set_trial_user_attr(i, k, v),
                            rec.Failure.INTERRUPTED, f"interrupted: {reason}")
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            failed.append(t.number)
        except RuntimeError:  # finished meanwhile (its worker was alive after all)
            continue
        if "fixed_params" in t.system_attrs:  # a queued pick (the first stage): queue it again
            study.enqueue_trial(t.system_attrs["fixed_params"],
                                user_attrs={k: v for k, v in t.user_attrs.items() if k == rec.PRESCREEN_SCORE})
    return failed


def adopt(storage: BaseStorage, trial_id: int) -> None:
    """Record this process as the trial's owner, alive now."""
    storage.set_trial_user_attr(trial_id, rec.WORKER, owner())
    storage.set_trial_user_attr(trial_id, rec.ALIVE_AT, time.time())


@contextmanager
def heartbeat(storage: BaseStorage, trial_id: int, every_s: float = BEAT_S) -> Iterator[None]:
    """Refresh the trial's ``alive_at`` every ``every_s`` seconds while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            try:
                storage.set_trial_user_attr(trial_id, rec.ALIVE_AT, time.time())
            except Exception as e:  # noqa: BLE001 - finished, or storage briefly unreachable
                _log.debug("heartbeat of trial %d not recorded: %s", trial_id, e)

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
