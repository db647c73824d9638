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

import contextlib
import faulthandler
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


def crash_log_path(folder: Path, who: str) -> Path:
    host, _, pid = who.rpartition(":")
    return folder / f".crash-{host}-{pid}.log"


@contextmanager
def crash_log(folder: Path) -> Iterator[None]:
    """While this worker runs trials, a native crash (a segfault or abort in torch, the
    interpreter killed from inside) writes Python's fault report to a file in the run folder
    named after the worker (``faulthandler``); whoever finds its trial orphaned reads it there.
    A worker that ends normally leaves no file."""
    path = crash_log_path(folder, owner())
    was_enabled = faulthandler.is_enabled()
    with open(path, "w") as f:
        faulthandler.enable(file=f)
        try:
            yield
        finally:
            faulthandler.disable()
            if was_enabled:
                with contextlib.suppress(Exception):  # sys.stderr may have no file descriptor
                    faulthandler.enable()
    path.unlink(missing_ok=True)


def native_crash(folder: Path, who: str) -> str | None:
    """The fault line of a worker that crashed natively ("Fatal Python error: Segmentation
    fault"), or None (it was killed from outside, or is alive)."""
    try:
        text = crash_log_path(folder, who).read_text(errors="replace")
    except OSError:
        return None
    return next((line.strip() for line in text.splitlines() if line.startswith("Fatal Python error")), None)


def fail_orphans(study: optuna.Study, storage: BaseStorage, claim_held: bool = False,
                 crash_dir: Path | None = None) -> list[int]:
    """Mark FAIL every RUNNING trial of ``study`` whose worker is gone; return their numbers.
    ``claim_held``: the caller holds the claim lock (see the module's docstring). A worker that
    crashed natively (its crash log in ``crash_dir``) failed by its student's doing: the trial
    is an error, so a resume does not propose the student again; any other death is an
    interruption, retried."""
    now, failed = time.time(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        reason = orphan_reason(t, now, claim_held)
        if reason is None:
            continue
        who = t.user_attrs.get(rec.WORKER)
        crash = native_crash(crash_dir, who) if crash_dir is not None and who else None
        kind, why = ((rec.Failure.ERROR, f"crashed: {crash} (in its worker {who}; not retried)") if crash
                     else (rec.Failure.INTERRUPTED, f"interrupted: {reason}"))
        try:
            rec.mark_failed(lambda k, v, i=t._trial_id: storage.set_trial_user_attr(i, k, v), kind, why)
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            failed.append(t.number)
            if crash:
                crash_log_path(crash_dir, who).unlink(missing_ok=True)  # read: the next worker of that pid starts clean
        except RuntimeError:  # finished meanwhile (its worker was alive after all)
            continue
        if "fixed_params" in t.system_attrs:  # a queued pick (the first stage): queue it again
            study.enqueue_trial(t.system_attrs["fixed_params"],
                                user_attrs={k: v for k, v in t.user_attrs.items() if k == rec.PRESCREEN_SCORE})
    return failed


def owner_attrs() -> dict[str, object]:
    """The user attributes that make this process a trial's owner, alive now."""
    return {rec.WORKER: owner(), rec.ALIVE_AT: time.time()}


def adopt(storage: BaseStorage, trial_id: int) -> None:
    """Record this process as the trial's owner, alive now."""
    for key, value in owner_attrs().items():
        storage.set_trial_user_attr(trial_id, key, value)


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
