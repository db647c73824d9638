"""Claiming and liveness on a real (tiny) study: no overshoot, orphans failed, journal storage."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from nas_student import storage
from nas_student.cli import app
from nas_student.config import ExecutionSettings, RunConfig, SearchSettings
from nas_student.distill import ProxyRecipe
from nas_student.search import liveness, run_search
from nas_student.search.study import Claim, claim
from waiting import wait_until


def _study(tmp_path, spec=None):
    return optuna.create_study(study_name="s", storage=storage.open_storage(tmp_path, spec),
                               directions=["maximize"])


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.parametrize("spec", [None, "journal"])
def test_claims_stop_at_the_target_and_wait_while_the_last_ones_run(tmp_path, spec):
    spec = f"journal:{tmp_path / 'j.log'}" if spec else None
    study = _study(tmp_path, spec)
    a, b = claim(study, 2, tmp_path, spec), claim(study, 2, tmp_path, spec)
    assert isinstance(a, optuna.Trial) and isinstance(b, optuna.Trial)
    assert claim(study, 2, tmp_path, spec) is Claim.WAIT  # two running: a third would overshoot
    study.tell(a, 1.0)
    study.tell(b, state=optuna.trial.TrialState.FAIL)
    c = claim(study, 2, tmp_path, spec)  # the failed one is replaced
    assert isinstance(c, optuna.Trial) and study.trials[-1].user_attrs["worker"] == liveness.owner()
    study.tell(c, 2.0)
    assert claim(study, 2, tmp_path, spec) is Claim.DONE
    assert len(study.trials) == 3


def test_trials_of_dead_or_silent_workers_are_failed_live_ones_kept(tmp_path):
    study = _study(tmp_path)
    store = storage.of(study)
    dead, silent, live = study.ask(), study.ask(), study.ask()
    store.set_trial_user_attr(dead._trial_id, "worker", f"{socket.gethostname()}:{_dead_pid()}")
    store.set_trial_user_attr(silent._trial_id, "worker", "elsewhere:1")
    store.set_trial_user_attr(silent._trial_id, "alive_at", time.time() - liveness.GRACE_S - 1)
    liveness.adopt(store, live._trial_id)
    assert liveness.fail_orphans(study, store) == [dead.number, silent.number]
    trials = study.trials
    assert [t.state.name for t in trials] == ["FAIL", "FAIL", "RUNNING"]
    assert "died" in trials[0].user_attrs["fail_reason"]
    assert "silent" in trials[1].user_attrs["fail_reason"]


def test_an_unowned_trial_is_an_orphan_only_under_the_claim_lock(tmp_path):
    """A worker killed between Optuna's ask and recording its owner leaves a RUNNING trial with
    no owner. Under the claim lock nobody can be in the middle of a claim: it is failed at once.
    Without the lock it may be a claim in progress: it is kept until the grace period ends."""
    study = _study(tmp_path)
    store = storage.of(study)
    unowned = study.ask()
    assert liveness.fail_orphans(study, store) == []
    assert study.trials[0].state.name == "RUNNING"
    with storage.claim_lock(study, tmp_path, None) as exclusive:
        assert exclusive
        assert liveness.fail_orphans(study, store, claim_held=exclusive) == [unowned.number]
    assert "claiming process died" in study.trials[0].user_attrs["fail_reason"]
    assert isinstance(claim(study, 2, tmp_path, None), optuna.Trial)  # the claim fails it, then asks
    assert [t.state.name for t in study.trials] == ["FAIL", "RUNNING"]


def test_heartbeat_refreshes_alive_at(tmp_path):
    study = _study(tmp_path)
    trial = study.ask()
    seen = []
    with liveness.heartbeat(storage.of(study), trial._trial_id, every_s=0.05):
        for _ in range(4):  # the beat is read while it goes: each read newer than the last
            time.sleep(0.15)
            seen.append(study.trials[0].user_attrs["alive_at"])
    assert all(b > a for a, b in zip(seen, seen[1:])), seen
    assert time.time() - seen[-1] < 5


@pytest.mark.slow
def test_search_in_a_journal_file_and_pareto_reads_it(tmp_path, digits_task):
    journal = tmp_path / "shared" / "study.journal"
    cfg = RunConfig(task="digits", run="j", results_dir=str(tmp_path), budget=ProxyRecipe(steps=5), device="cpu", space="digits-mlp",
                    search=SearchSettings(trials=3), execution=ExecutionSettings(storage=f"journal:{journal}"))
    out = run_search(cfg)
    assert journal.exists() and not (tmp_path / "j" / "study.db").exists()
    assert sum(t.state.name == "COMPLETE" for t in storage.load_study(tmp_path / "j").trials) == 3
    res = CliRunner().invoke(app, ["pareto", "j", "--results-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert str(int(out.front["trial"].iloc[0])) in res.output
    os.remove(tmp_path / "j" / "run.json")  # without run.json the run cannot be found
    assert CliRunner().invoke(app, ["pareto", "j", "--results-dir", str(tmp_path)]).exit_code == 2


def test_a_relative_storage_file_is_kept_absolute(tmp_path, monkeypatch):
    from nas_student.runfile import build_config

    monkeypatch.chdir(tmp_path)
    cfg = build_config(None, {("execution", "storage"): "journal:shared/run.journal"})
    assert cfg.execution.storage == f"journal:{tmp_path / 'shared' / 'run.journal'}"
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "run.yaml").write_text("execution: {storage: 'sqlite:///db/s.db'}\n")
    cfg = build_config(tmp_path / "conf" / "run.yaml", {})
    assert cfg.execution.storage == f"sqlite:///{tmp_path / 'conf' / 'db' / 's.db'}"  # the run file's folder
    cfg = build_config(None, {("execution", "storage"): "journal:~/x.journal"})
    assert cfg.execution.storage == f"journal:{Path.home() / 'x.journal'}"
    cfg = build_config(None, {("execution", "storage"): "postgresql://u@h/db"})
    assert cfg.execution.storage == "postgresql://u@h/db"


def test_a_storage_that_cannot_be_opened_leaves_no_run_folder(tmp_path, digits_task):
    from nas_student.errors import NasStudentError

    cfg = RunConfig(task="digits", run="m", results_dir=str(tmp_path), budget=ProxyRecipe(steps=5), device="cpu", space="digits-mlp",
                    search=SearchSettings(trials=1), execution=ExecutionSettings(storage="mysql://u@localhost/db"))
    with pytest.raises(NasStudentError, match="no database driver"):
        run_search(cfg)
    assert not (tmp_path / "m").exists()


def test_an_interrupted_queued_pick_is_queued_again(tmp_path):
    study = _study(tmp_path)
    study.enqueue_trial({"x": 3}, user_attrs={"prescreen_score": 0.5})
    picked = study.ask()  # pops the queued pick; its worker then dies before recording itself
    picked.suggest_int("x", 0, 10)
    with storage.claim_lock(study, tmp_path, None) as exclusive:
        assert liveness.fail_orphans(study, storage.of(study), claim_held=exclusive) == [picked.number]
    again = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [(t.system_attrs["fixed_params"], t.user_attrs["prescreen_score"]) for t in again] == [({"x": 3}, 0.5)]


def test_a_claim_whose_trial_was_failed_meanwhile_asks_again(tmp_path, monkeypatch):
    study = _study(tmp_path)

    def failed_by_another(store, trial_id):  # a worker that does not share this lock failed it
        raise optuna.exceptions.UpdateFinishedTrialError("finished")

    monkeypatch.setattr(liveness, "adopt", failed_by_another)
    assert claim(study, 2, tmp_path, None) is Claim.WAIT


def test_a_killed_worker_not_yet_reaped_counts_as_dead(tmp_path):
    """A zombie (killed, its parent has not waited for it yet) still answers signal 0."""
    study = _study(tmp_path)
    store = storage.of(study)
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    trial = study.ask()
    store.set_trial_user_attr(trial._trial_id, "worker", f"{socket.gethostname()}:{p.pid}")
    assert liveness.fail_orphans(study, store) == []  # alive
    p.kill()
    wait_until(lambda: liveness.fail_orphans(study, store) or None, 10, poll=0.05)
    try:
        assert study.trials[0].state.name == "FAIL"
        assert "died (process killed)" in study.trials[0].user_attrs["fail_reason"]
    finally:
        p.wait()


def test_a_worker_that_crashed_natively_fails_its_trial_as_an_error_not_an_interruption(tmp_path):
    """A segfault in torch takes the worker down with its trial. Its crash log (faulthandler, in
    the run folder) tells whoever finds the orphan that the student did it: the trial fails as
    an error (the sampler moves on) instead of an interruption a resume would retry forever.
    A worker killed from outside leaves no log: its trial is an interruption, as before."""
    from nas_student.trial_record import Failure, TrialRecord

    code = ("import faulthandler, sys; from pathlib import Path; from nas_student.search import liveness\n"
            "print(liveness.owner(), flush=True)\n"
            "with liveness.crash_log(Path(sys.argv[1])):\n    faulthandler._sigsegv()\n")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert p.returncode != 0
    crashed = p.stdout.strip()
    assert liveness.native_crash(tmp_path, crashed) == "Fatal Python error: Segmentation fault"
    killed = f"{socket.gethostname()}:{_dead_pid()}"
    study = _study(tmp_path)
    store = storage.of(study)
    for who in (crashed, killed):
        t = study.ask()
        store.set_trial_user_attr(t._trial_id, "worker", who)
    assert sorted(liveness.fail_orphans(study, store, crash_dir=tmp_path)) == [0, 1]
    by_crash, by_kill = (TrialRecord.from_trial(t) for t in study.trials)
    assert by_crash.failure == Failure.ERROR and by_crash.counts_for_sampler
    assert by_crash.fail_reason.startswith("crashed: Fatal Python error: Segmentation fault")
    assert by_kill.failure == Failure.INTERRUPTED and not by_kill.counts_for_sampler
    assert not list(tmp_path.glob(".crash-*"))  # read once, then removed
    with liveness.crash_log(tmp_path):  # a worker that ends normally leaves nothing
        assert list(tmp_path.glob(".crash-*"))
    assert not list(tmp_path.glob(".crash-*"))
