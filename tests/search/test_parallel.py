"""The parallel default: `search --workers N` forks helpers that claim trials from the same
study. Killing the search (and so its helpers) mid-run loses nothing and the rerun finishes
the run; trials never exceed --trials; no architecture is trained twice."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from nas_student import trial_record as rec
from nas_student.config import RunConfig
from nas_student.errors import NasStudentError
from nas_student.search import liveness, pool, run_search
from nas_student.search.objective import find_evaluated
from nas_student.storage import load_study
from waiting import wait_until

CLI = [sys.executable, "-m", "nas_student.cli"]
CPU = torch.device("cpu")


def test_auto_takes_every_core_on_the_cpu_one_on_a_gpu_and_the_environment_overrides(monkeypatch):
    monkeypatch.delenv(pool.ENV, raising=False)
    monkeypatch.setattr(pool, "cores", lambda: 2)
    assert pool.resolve("auto", CPU) == 2
    monkeypatch.setattr(pool, "cores", lambda: 64)
    assert pool.resolve("auto", CPU) == pool.MAX_AUTO
    assert pool.resolve("auto", torch.device("cuda")) == 1
    assert pool.resolve(3, torch.device("cuda")) == 3  # asked for: helpers are spawned, not forked
    assert pool.resolve("auto", CPU, backend="ray") == 1  # Ray runs its own processes
    assert pool.resolve(5, CPU) == 5
    monkeypatch.setenv(pool.ENV, "3")
    assert pool.resolve("auto", CPU) == 3
    monkeypatch.setenv(pool.ENV, "many")
    with pytest.raises(NasStudentError, match="NAS_STUDENT_WORKERS='many'"):
        pool.resolve("auto", CPU)
    monkeypatch.setattr(pool, "cores", lambda: 8)
    assert pool.threads_per_worker(2) == 4 and pool.threads_per_worker(16) == 1
    assert pool.start_method(CPU) in ("fork", "spawn") and pool.start_method(torch.device("cuda")) == "spawn"


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_workers_option_is_one_line(tmp_path, value):
    r = subprocess.run(CLI + ["search", "--workers", value, "--results-dir", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"--workers {value!r}: expected auto or a whole number >= 1" in r.stderr


def _running(study: optuna.Study, trial_number: int, h: str, who: str) -> int:
    t = study.ask()
    t.set_user_attr(rec.ARCH_HASH, h)
    t.set_user_attr(rec.WORKER, who)
    assert t.number == trial_number
    return t._trial_id


def test_a_student_another_process_is_training_is_waited_for_and_copied_not_trained_twice():
    study = optuna.create_study(directions=["maximize"])
    first_id = _running(study, 0, "h1", liveness.owner())  # alive: this process
    second = study.ask()

    def finish() -> None:
        time.sleep(0.6)
        study.tell(0, [0.5])

    threading.Thread(target=finish).start()
    t0 = time.time()
    earlier = find_evaluated(second, "h1", poll_s=0.1)
    assert earlier is not None and earlier.number == 0 and time.time() - t0 >= 0.5
    assert study._storage.get_trial(first_id).state == TrialState.COMPLETE
    # an earlier trial of the same student whose process died is not waited for: this one trains it
    _running(study, 2, "h2", f"{liveness.owner().rpartition(':')[0]}:999999999")
    assert find_evaluated(study.ask(), "h2", poll_s=0.1) is None
    # nor is a later one (the later trial waits for this one, never the reverse)
    late = study.ask()
    _running(study, 5, "h3", liveness.owner())
    assert find_evaluated(late, "h3", poll_s=0.1) is None


def _search(tmp_path: Path, trials: int, workers: int, log: str) -> subprocess.Popen:
    return subprocess.Popen(
        CLI + ["search", "--task", "digits", "--run", "par", "--results-dir", str(tmp_path), "--trials", str(trials),
               "--steps", "300", "--device", "cpu", "--no-trust", "--workers", str(workers)],  # trials of 1-3 s: both mid-trial at the kill
        stdout=open(tmp_path / log, "w"), stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _owners_running(run_dir: Path) -> set[str]:
    study = load_study(run_dir)
    return {t.user_attrs.get(rec.WORKER, "") for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}


def _helper_pids(parent: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(parent)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _check(study: optuna.Study, trials: int) -> Counter:
    states = Counter(t.state.name for t in study.trials)
    assert states["COMPLETE"] == trials and states["RUNNING"] == 0 and states["WAITING"] == 0, states
    trained = [rec.TrialRecord.from_trial(t) for t in study.trials if t.state == TrialState.COMPLETE]
    hashes = Counter(r.arch_hash for r in trained if r.duplicate_of is None)
    assert all(n == 1 for n in hashes.values()), hashes  # no architecture evaluated twice
    return Counter(t.user_attrs[rec.WORKER] for t in study.trials if t.state == TrialState.COMPLETE)


@pytest.mark.slow
def test_killing_a_parallel_search_kills_its_helpers_and_the_rerun_loses_nothing(tmp_path, digits_task):
    run_dir = tmp_path / "par"
    proc = _search(tmp_path, trials=10, workers=2, log="first.log")
    # both processes are training (each owns a RUNNING trial): kill the search mid-trial
    assert wait_until(lambda: len(_owners_running(run_dir)) >= 2, 240, poll=0.1, while_running=proc), \
        (tmp_path / "first.log").read_text()[-2000:]
    helpers = _helper_pids(proc.pid)
    assert helpers, "the search started no helper process"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert wait_until(lambda: not any(Path(f"/proc/{p}").exists() for p in helpers), 30), \
        "a helper outlived the search"
    before = Counter(t.state.name for t in load_study(run_dir).trials)
    assert before["COMPLETE"] < 10 and before["RUNNING"] >= 2, before

    rerun = _search(tmp_path, trials=10, workers=2, log="rerun.log")
    assert rerun.wait(timeout=300) == 0, (tmp_path / "rerun.log").read_text()[-3000:]
    study = load_study(run_dir)
    owners = _check(study, 10)
    assert len(owners) >= 2, owners  # the rerun's helper worked too
    failed = [t.user_attrs.get(rec.FAIL_REASON, "") for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) >= 2 and all("died" in r for r in failed), failed  # the killed trials, failed at once
    assert "Traceback" not in (tmp_path / "rerun.log").read_text()


def _two_workers(tmp_path: Path, space: str, steps: int, trials: int) -> RunConfig:
    return RunConfig.model_validate({"task": "digits", "space": space, "results_dir": str(tmp_path), "device": "cpu",
                                     "budget": {"steps": steps}, "search": {"trials": trials, "trust": {"enabled": False}},
                                     "execution": {"workers": 2}})


@pytest.mark.slow
def test_a_parallel_search_in_process_shares_the_study_and_stops_at_trials(tmp_path, digits_task):
    """run_search with two workers (forked helpers): exactly --trials students, both processes
    trained some, the torch threads of this process restored afterwards."""
    threads = torch.get_num_threads()
    outcome = run_search(_two_workers(tmp_path, "digits-mlp", steps=60, trials=8))
    owners = _check(outcome.study, 8)
    assert len(owners) == 2, owners
    assert torch.get_num_threads() == threads
    assert len(outcome.trials[outcome.trials.state == "COMPLETE"]) == 8


@pytest.mark.slow
def test_helpers_spawned_where_fork_is_not_used_join_from_the_run_folder(tmp_path, digits_task, monkeypatch):
    """The GPU / non-Linux path: a fresh interpreter reads the run folder, as `worker` does."""
    monkeypatch.setattr(pool, "start_method", lambda device: "spawn")
    # CNN students (1-2 s each, more on a loaded machine): a fresh interpreter takes several
    # seconds to start, and the search must not finish every trial before it joins
    outcome = run_search(_two_workers(tmp_path, "digits-cnn", steps=150, trials=20))
    owners = _check(outcome.study, 20)
    assert len(owners) == 2, owners  # the spawned helper started in time to train some
