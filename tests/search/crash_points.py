"""Kill a search with SIGKILL at chosen moments, then check what the next run makes of it.

Run as a script, it is ``nas-student`` with crash points: ``NAS_STUDENT_CRASH=POINT:N`` kills
the process (SIGKILL, no clean-up) the N-th time this process reaches POINT:

* ``claim``: the trial has just been created (RUNNING, with its sampled parameters and its
  owner, in one write), and the claim lock is still held;
* ``train``: a student's training starts (the trial is RUNNING, nothing of it saved);
* ``weights``: a student's weights are in their temporary file, not yet renamed into place;
* ``tell``: the trial's record is stored, its final state not yet written;
* ``result``: inside the SQLite transaction that writes the trial's values and COMPLETE state
  (the statements are sent, the commit is not);
* ``tables``: ``trials.csv`` written and ``pareto.csv`` half written, at the end of the search.

:func:`campaign` runs one search command again and again, each run killed at a crash point or
after a random delay (``time:SECONDS``), then once to the end, and checks the study after every
kill: what was complete stays complete with the same values, and nothing is left half done.
Used by tests/search/test_crash.py and bench/reliability_record.py.
"""

from __future__ import annotations

import os
import re
import random
import signal
import sqlite3
import subprocess
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = str(Path(__file__).resolve())
POINTS = ("claim", "train", "weights", "tell", "result", "tables")


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install(spec: str) -> None:
    """Arm the crash point ``POINT:N`` in this process (and in the helpers it forks, each
    counting its own), or ``POINT:N:helper`` in the forked helpers only (a parallel search)."""
    point, n, *where = spec.split(":")
    if point not in POINTS or where not in ([], ["helper"]):
        raise ValueError(f"unknown crash point {spec!r}; valid: POINT:N[:helper], POINT one of {', '.join(POINTS)}")
    left, installer = [int(n)], os.getpid()

    def reached() -> bool:
        if where and os.getpid() == installer:  # the search process itself: not armed
            return False
        left[0] -= 1
        return left[0] == 0

    import optuna
    import sqlalchemy.orm

    from nas_student import search
    from nas_student.search import objective, proposal

    if point == "claim":
        real_ask = proposal.ask_sampled

        def ask(*a, **k):  # type: ignore[no-untyped-def]
            trial = real_ask(*a, **k)
            if reached():
                _kill()
            return trial
        proposal.ask_sampled = ask
    elif point == "train":
        real_train = objective.train
        objective.train = lambda *a, **k: _kill() if reached() else real_train(*a, **k)
    elif point == "weights":
        proxy = types.ModuleType("os_proxy")
        proxy.__dict__.update(os.__dict__)
        proxy.replace = lambda src, dst: _kill() if reached() else os.replace(src, dst)
        objective.os = proxy
    elif point in ("tell", "result"):
        storage_cls = optuna.storages.RDBStorage
        real_set = storage_cls.set_trial_state_values
        real_commit = sqlalchemy.orm.Session.commit
        armed = [False]

        def set_state(self, trial_id, state, values=None):  # type: ignore[no-untyped-def]
            if state == optuna.trial.TrialState.COMPLETE and reached():
                if point == "tell":
                    _kill()
                armed[0] = True
            return real_set(self, trial_id, state, values)

        def commit(self):  # type: ignore[no-untyped-def]
            if armed[0]:
                self.flush()  # the UPDATE and INSERTs reach SQLite, inside the open transaction
                _kill()
            return real_commit(self)

        storage_cls.set_trial_state_values = set_state
        sqlalchemy.orm.Session.commit = commit
    else:
        real_tables = search.write_tables

        def tables(run_dir, study, objectives):  # type: ignore[no-untyped-def]
            out = real_tables(run_dir, study, objectives)
            if reached():
                text = (run_dir / "pareto.csv").read_text()
                (run_dir / "pareto.csv").write_text(text[: len(text) // 2])
                _kill()
            return out

        search.write_tables = tables


# -- checking a run folder ------------------------------------------------------------------


def snapshot(run_dir: Path) -> dict[str, list]:
    """Trials of the run's study by state: number -> (values, arch hash) for complete ones."""
    from optuna.trial import TrialState

    from nas_student.search.study import load_study

    out: dict[str, list] = {s.name: [] for s in TrialState}
    if not (run_dir / "study.db").exists():
        return out
    try:
        trials = load_study(run_dir).get_trials()
    except Exception:  # noqa: BLE001 - killed before the study was created
        return out
    for t in trials:
        out[t.state.name].append((t.number, t.values, t.user_attrs.get("arch_hash")))
    return out


def integrity(run_dir: Path) -> str:
    """SQLite's own check of the study file ('ok' when sound)."""
    if not (run_dir / "study.db").exists():
        return "ok"
    with sqlite3.connect(run_dir / "study.db") as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def outcome(run_dir: Path, reference: Path) -> dict[str, object]:
    """The figures of a finished run, and how it compares with ``reference`` (the same
    search, never interrupted)."""
    import pandas as pd

    from nas_student.search.study import load_study

    ts, ref = load_study(run_dir).get_trials(), load_study(reference).get_trials()
    done = [t for t in ts if t.state.name == "COMPLETE"]
    ref_done = [t for t in ref if t.state.name == "COMPLETE"]
    failed = [t for t in ts if t.state.name == "FAIL"]
    trained = [t for t in done if t.user_attrs.get("feasible") and "duplicate_of" not in t.user_attrs]
    hashes = [t.user_attrs["arch_hash"] for t in trained]
    by_number = {t.number: t for t in done}
    repeats_ok = all(by_number[t.user_attrs["duplicate_of"]].user_attrs["arch_hash"] == t.user_attrs["arch_hash"]
                     and by_number[t.user_attrs["duplicate_of"]].values == t.values
                     for t in done if "duplicate_of" in t.user_attrs)
    front, ref_front = pd.read_csv(run_dir / "pareto.csv"), pd.read_csv(reference / "pareto.csv")
    cols = ["accuracy", "macs", "params"]  # failed rows make the interrupted run's numbers floats
    table = pd.read_csv(run_dir / "trials.csv")
    weights = run_dir / "weights"
    return {
        "complete": len(done), "failed": len(failed),
        "unfinished": sum(t.state.name in ("RUNNING", "WAITING") for t in ts),
        # the dead worker's host:pid varies from kill to kill; the reason does not
        "fail_reasons": sorted({re.sub(r"worker \S+ ", "worker ", t.user_attrs.get("fail_reason", ""))
                                for t in failed}),
        "trained_twice": len(hashes) - len(set(hashes)),
        "untimed_training": sum("train_s" not in t.user_attrs["timing"] for t in trained),
        "repeats_point_at_their_source": repeats_ok,
        "weights_are_the_trained": sorted(p.stem for p in weights.glob("*.pt")) == sorted(hashes),
        # parallel runs: a process killed after saving a student's weights, before its trial was
        # told, leaves weights of a student no trial completed (another process proposes other
        # students, so they may never be overwritten): litter, unlike a trained one without weights
        "trained_without_weights": len(set(hashes) - {p.stem for p in weights.glob("*.pt")}),
        "weights_without_a_trial": len({p.stem for p in weights.glob("*.pt")} - set(hashes)),
        "temporary_files": len([p for p in weights.iterdir() if p.suffix == ".tmp"]),
        "table_rows": {s: int((table["state"] == s).sum()) for s in ("COMPLETE", "FAIL")},
        "same_params": [t.params for t in done] == [t.params for t in ref_done],
        "same_values": [t.values for t in done] == [t.values for t in ref_done],
        "same_front": (front["arch_hash"].tolist() == ref_front["arch_hash"].tolist()
                       and front[cols].astype(float).equals(ref_front[cols].astype(float))),
        "front_size": len(front),
        "integrity": integrity(run_dir),
    }


@dataclass
class Campaign:
    kills: int = 0  # runs that ended by SIGKILL
    helper_kills: int = 0  # parallel runs: a helper process killed, the run went on without it
    survived: int = 0  # kills after which the next run went on from a sound study
    lost: list[str] = field(default_factory=list)  # complete trials lost or changed by a kill
    problems: list[str] = field(default_factory=list)
    moments: list[str] = field(default_factory=list)  # where each kill landed
    snapshots: list[dict[str, list]] = field(default_factory=list)  # the study after each run
    runs: int = 0
    wall_s: float = 0.0


def _moment(before: dict[str, list], after: dict[str, list]) -> str:
    if not after["COMPLETE"] and not after["RUNNING"]:
        return "before the first trial"
    if after["RUNNING"]:
        return f"during trial {after['RUNNING'][0][0]}"
    return "between trials" if len(after["COMPLETE"]) > len(before["COMPLETE"]) else "at start-up"


def _helper_died(before: dict[str, list], after: dict[str, list]) -> bool:
    """A trial failed in this run that the previous run did not leave RUNNING: a helper of this
    run died in it."""
    return len(after["FAIL"]) - len(before["FAIL"]) > len(before["RUNNING"])


def campaign(cmd: list[str], run_dir: Path, kills: list[str], *, seed: int = 0,
             env: dict[str, str] | None = None, timeout: float = 900, parallel: bool = False) -> Campaign:
    """Run ``cmd`` once per entry of ``kills`` (``POINT:N`` or ``time:SECONDS``), each run
    killed, then once to the end. ``time:`` counts from the moment the teacher is ready.
    ``parallel``: the search has helper processes (``--workers N``), which inherit the crash
    point; one that kills a helper leaves the run going (its trial failed and taken over)."""
    rng = random.Random(seed)
    res = Campaign()
    t0 = time.perf_counter()
    before, pending = snapshot(run_dir), False
    for spec in [*kills, None]:
        run_env = {**os.environ, **(env or {})}
        run_env.pop("NAS_STUDENT_CRASH", None)
        if spec and not spec.startswith("time:"):
            run_env["NAS_STUDENT_CRASH"] = spec
        proc = subprocess.Popen([sys.executable, SCRIPT, *cmd], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=run_env)
        res.runs += 1
        if spec and spec.startswith("time:"):
            head = ""
            while proc.stdout and "Teacher:" not in head and proc.poll() is None:
                head = proc.stdout.readline()  # the teacher is ready: trials start now
            time.sleep(rng.uniform(0, float(spec[5:])))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        try:
            out, _ = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:  # timed out: leave nothing behind
                proc.kill()
                proc.wait()
        after = snapshot(run_dir)
        res.snapshots.append(after)
        bad = len(res.problems) + len(res.lost)
        killed = proc.returncode == -signal.SIGKILL
        if killed:
            res.kills += 1
            res.moments.append(f"{spec}: {_moment(before, after)}")
        elif proc.returncode != 0:
            res.problems.append(f"run {res.runs} ({spec}) exited {proc.returncode}: {out[-1500:]}")
        elif parallel and spec is not None and _helper_died(before, after):
            res.helper_kills += 1  # a helper reached the crash point; the others finished the run
            res.moments.append(f"{spec}: a helper process, the run went on")
        elif spec is not None and not spec.startswith("time:"):
            res.problems.append(f"run {res.runs} ({spec}) was not killed")
        done = {n: (v, h) for n, v, h in after["COMPLETE"]}
        for n, v, h in before["COMPLETE"]:
            if done.get(n) != (v, h):
                res.lost.append(f"trial {n} after run {res.runs} ({spec}): {(v, h)} -> {done.get(n)}")
        check = integrity(run_dir)
        if check != "ok":
            res.problems.append(f"after run {res.runs} ({spec}): study.db integrity: {check}")
        if pending and len(res.problems) + len(res.lost) == bad:
            res.survived += 1  # the run after a kill went on from what the kill left
        if (parallel and spec is not None and not killed and _helper_died(before, after)
                and len(res.problems) + len(res.lost) == bad):
            res.survived += 1  # ... or the run itself, after one of its helpers was killed
        pending, before = killed, after
        if proc.returncode not in (0, -signal.SIGKILL):
            break
    res.wall_s = time.perf_counter() - t0
    return res


if __name__ == "__main__":
    if os.environ.get("NAS_STUDENT_CRASH"):
        install(os.environ["NAS_STUDENT_CRASH"])
    from nas_student.cli import main

    sys.argv[0] = "nas-student"
    main()
