"""Many workers on one study: `nas-student search` plus `nas-student worker RUN` processes, on
the default storage (SQLite in the run folder) and on a real PostgreSQL server.

The PostgreSQL test reads the server's URL from NAS_STUDENT_TEST_PG (`.ci/run` starts one with
`.ci/postgres.sh`). Without a server it is skipped locally but FAILS when ``CI`` is set."""

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest

from nas_student.storage import load_study
from waiting import wait_until

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "nas_student.cli"]


def _pg_url() -> str:
    url = os.environ.get("NAS_STUDENT_TEST_PG")
    reason = None
    if not url:
        reason = "NAS_STUDENT_TEST_PG is not set (start a server with `bash .ci/postgres.sh`)"
    else:
        try:
            import sqlalchemy

            with sqlalchemy.create_engine(url).connect():
                pass
        except Exception as e:  # noqa: BLE001 - any reason the server cannot be had
            reason = f"no PostgreSQL server at {url}: {type(e).__name__}"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}; .ci/run starts one", pytrace=False)
        pytest.skip(reason)
    return url


def _start(args, log: Path) -> subprocess.Popen:
    return subprocess.Popen(CLI + args, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})  # 2 cores, many processes


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    assert wait_until(path.exists, timeout, while_running=proc), f"no {path} after {timeout} s (or the search ended)"


def _search_with_workers(tmp_path: Path, n_workers: int, trials: int, extra: list[str],
                         kill_one: bool = False) -> optuna.Study:
    # CNN students at 150 steps (~1-2 s a trial): the search must not finish every trial alone
    # before the workers have started (a few seconds each on a quiet machine)
    run = f"w{uuid.uuid4().hex[:8]}"  # a PostgreSQL database outlives test runs: a fresh study each time
    run_dir = tmp_path / run
    search = _start(["search", "--task", "digits", "--run", run, "--results-dir", str(tmp_path), "--trials", str(trials),
                     "--steps", "150", "--device", "cpu", "--no-trust", *extra], tmp_path / "search.log")
    _wait_for(run_dir / "teacher_outputs.pt", search)
    workers = [_start(["worker", run, "--results-dir", str(tmp_path)], tmp_path / f"worker{i}.log")
               for i in range(n_workers)]
    if kill_one:  # a worker killed mid-trial: another one marks its trial failed and takes over
        victim = workers[0]
        assert wait_until(lambda: _running_trial_of(run_dir, victim.pid), 120, poll=0.1), "the worker never ran a trial"
        victim.send_signal(signal.SIGKILL)
    procs, names = [search, *workers], ["search"] + [f"worker{i}" for i in range(n_workers)]
    for p in procs:
        p.wait(timeout=300)
    logs = {n: (tmp_path / f"{n}.log").read_text() for n in names}
    for name, p in zip(names, procs):
        expected = -signal.SIGKILL if kill_one and p is workers[0] else 0
        assert p.returncode == expected, f"{name}: {logs[name][-3000:]}"
    assert not any("database is locked" in text for text in logs.values())
    return load_study(run_dir)


def _running_trial_of(run_dir: Path, pid: int) -> bool:
    try:
        study = load_study(run_dir)
    except Exception:  # noqa: BLE001 - not created yet
        return False
    return any(t.user_attrs.get("worker", "").endswith(f":{pid}")
               for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))


def _check(study: optuna.Study, trials: int) -> Counter:
    all_trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name for t in all_trials)
    assert states["COMPLETE"] == trials, states
    assert states["RUNNING"] == 0 and states["WAITING"] == 0, states
    numbers = [t.number for t in all_trials]
    assert len(numbers) == len(set(numbers))  # no trial recorded twice
    return Counter(t.user_attrs["worker"] for t in all_trials if t.state.name == "COMPLETE")


def test_workers_on_the_default_sqlite_storage_lose_nothing(tmp_path, digits_task):
    study = _search_with_workers(tmp_path, n_workers=2, trials=10, extra=[], kill_one=True)
    owners = _check(study, 10)
    assert len(owners) >= 2, owners  # the workers did share the study
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    reasons = [t.user_attrs["fail_reason"] for t in failed]  # failed at once (in a trial or in its claim)
    assert failed and all(r.startswith("interrupted: ") and "died" in r for r in reasons), reasons


def test_four_workers_on_postgresql_share_one_study(tmp_path, digits_task):
    """Four processes on one study: the search (it runs trials too) and three `worker`s."""
    url = _pg_url()
    study = _search_with_workers(tmp_path, n_workers=3, trials=14, extra=["--storage", url])
    owners = _check(study, 14)
    assert len(owners) >= 3, owners
    assert study.trials and not (tmp_path / "study.db").exists()
