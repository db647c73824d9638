"""Trials that fail, diverge or would not fit in memory are recorded, and the search goes on."""

import errno
import os
import re

import optuna
import pytest

from nas_student.config import Constraints, RunConfig, SearchSettings
from nas_student.distill import ProxyRecipe
from nas_student.errors import NasStudentError
from nas_student.search import memory, run_search
from nas_student.storage import load_study

pytestmark = pytest.mark.slow


def cfg(tmp_path, **kw):
    return RunConfig(task="digits", results_dir=str(tmp_path), budget=kw.pop("budget", ProxyRecipe(steps=20)),
                     search=SearchSettings(trials=4, seed=0), **kw)  # seed 0: the digits teacher every test shares


def test_diverging_students_fail_with_a_reason_and_the_search_goes_on(tmp_path, digits_task, monkeypatch):
    from nas_student.search import objective

    real_train = objective.train
    calls = {"n": 0}

    def sometimes_nan(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] % 2 == 1:
            from nas_student.distill.trainer import DivergedError
            raise DivergedError("training diverged: final loss nan")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(objective, "train", sometimes_nan)
    out = run_search(cfg(tmp_path))
    failed = out.study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    assert failed and all("diverged" in t.user_attrs["fail_reason"] for t in failed)
    assert len(out.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 4
    assert out.trials[out.trials["state"] == "FAIL"]["status"].str.contains("diverged").all()


def test_a_student_too_large_for_memory_is_refused_before_allocation(tmp_path, digits_task, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: 1)  # 1 byte "free"
    import torch

    from nas_student.search import objective
    built = []
    real_build = objective.build
    monkeypatch.setattr(objective, "build",
                        lambda *a, **k: built.append(torch.empty(0).device.type) or real_build(*a, **k))
    with pytest.raises(Exception, match=r"^20 samples gave only 0 of 1 students \(refused: .*\): loosen what refuses them$") as e:
        run_search(cfg(tmp_path).model_copy(update={"search": SearchSettings(trials=1, seed=0)}))
    # the space's rules refuse some samples too: both are named, with their counts
    assert re.search(r"too large for memory \(\d+\)", str(e.value)) and re.search(r"invalid \(\d+\)", str(e.value))
    study = optuna.load_study(study_name="digits-digits-cnn-s0", storage=f"sqlite:///{tmp_path}/digits-digits-cnn-s0/study.db")
    pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    too_big = [t for t in pruned if t.user_attrs.get("status", "").startswith("too large for memory")]
    assert too_big and all(t.constraints["memory"] > 0 for t in too_big)
    # built only on the meta device, never for real
    assert built and set(built) == {"meta"}


def test_training_bytes_estimate():
    assert memory.training_bytes(1000) == 16_000
    assert memory.training_bytes(1000, 100, 64) == 16_000 + 12 * 100 * 64
    assert memory.meta_params(lambda: __import__("torch").nn.Linear(1000, 1000)) == 1_001_000


def _fail_every_other(monkeypatch, name, make_failure):
    """Patch ``objective.<name>`` so that every other call goes wrong (the first call of
    ``evaluate`` is the teacher's, which stays right)."""
    from nas_student.search import objective

    real = getattr(objective, name)
    calls = {"n": 0}

    def sometimes(*args, **kwargs):
        calls["n"] += 1
        call = lambda: real(*args, **kwargs)
        return make_failure(call) if calls["n"] % 2 == 0 else call()

    monkeypatch.setattr(objective, name, sometimes)


def _raise(exc):
    def failure(_call):
        raise exc
    return failure


@pytest.mark.parametrize("name,failure,reason", [
    ("train", _raise(RuntimeError("mat1 and mat2 shapes cannot be multiplied")),
     "RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
    ("train", _raise(__import__("torch").OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")),
     "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"),
    ("evaluate", lambda call: {**call(), "accuracy": float("nan")}, "ValueError: objective value not finite: accuracy=nan"),
    ("evaluate", lambda call: {**call(), "accuracy": float("inf")}, "ValueError: objective value not finite: accuracy=inf"),
], ids=["raises", "out-of-memory", "nan-accuracy", "inf-accuracy"])
def test_a_failing_trial_is_recorded_with_its_reason_and_the_search_goes_on(
        tmp_path, digits_task, monkeypatch, name, failure, reason):
    _fail_every_other(monkeypatch, name, failure)
    out = run_search(cfg(tmp_path, space="digits-mlp"))
    failed = out.study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    assert len(failed) >= 2  # every other student trained fails; 4 others complete
    for t in failed:
        assert t.user_attrs["fail_reason"] == reason
        assert t.user_attrs["status"] == f"failed: {reason}"
    assert len(out.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 4
    assert (out.trials[out.trials["state"] == "FAIL"]["status"] == f"failed: {reason}").all()


def test_a_nan_cost_makes_the_student_infeasible_and_never_stops_the_study(tmp_path, digits_task, monkeypatch):
    from nas_student.search import objective

    real_price = objective.price
    calls = {"n": 0}

    def nan_macs(*args, **kwargs):  # the first call prices the teacher
        calls["n"] += 1
        cost, costs = real_price(*args, **kwargs)
        return cost, ({**costs, "macs": float("nan")} if calls["n"] % 2 == 0 else costs)

    monkeypatch.setattr(objective, "price", nan_macs)
    search = SearchSettings(trials=4, seed=0, objectives=("accuracy", "params"))
    out = run_search(cfg(tmp_path, space="digits-mlp").model_copy(update={"search": search}))
    done = out.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 4 and not out.study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    nan = [t for t in done if t.user_attrs["record"]["macs"] != t.user_attrs["record"]["macs"]]
    assert len(nan) == 2
    for t in nan:  # a NaN cost reads as a violated bound (1.0), never as NaN
        assert t.constraints["macs"] == 1.0 and t.user_attrs["feasible"] is False
        assert t.user_attrs["status"] == "infeasible (over the cost bounds)"
    assert all(t.user_attrs["feasible"] for t in done if t not in nan)


def test_a_space_with_no_feasible_student_is_refused_before_any_training(tmp_path, digits_task, monkeypatch):
    from nas_student.errors import NasStudentError
    from nas_student.search import objective

    monkeypatch.setattr(objective, "train", lambda *a, **k: pytest.fail("a student was trained"))
    bounded = cfg(tmp_path, constraints=Constraints(max_params=50))  # the smallest MLP has 650
    bounded = bounded.model_copy(update={"space": "digits-mlp"})
    with pytest.raises(NasStudentError) as info:
        run_search(bounded)
    msg = str(info.value)
    assert msg.endswith("search_spaces/digits-mlp.yaml: no student of space 'digits-mlp' can meet the cost "
                        "bounds: the cheapest of 20 priced has params 650 > 50 (max_params); loosen the "
                        "bounds or allow smaller students in the space"), msg
    assert not (tmp_path / bounded.run_name()).exists()  # nothing written


def test_feasibility_finds_the_cheapest_student_and_stops_at_the_first_within_the_bounds():
    from nas_student.families import ModelIO
    from nas_student.search.feasibility import cheapest
    from nas_student.spaces import load_space

    io = ModelIO((1, 8, 8), 10)
    best, n = cheapest(load_space("digits-mlp"), io, {"params": 1e6})
    assert n == 1 and best.arch["layers"] == [] and best.costs["params"] == 64 * 10 + 10
    # none fits: the fewest params found: narrowest stem, most groups, no norm, one 1x1 stage
    best, n = cheapest(load_space("digits-cnn"), io, {"params": 50.0})
    assert n == 48 and best.costs["params"] == 142 and best.score == 142 / 50
    assert (best.arch["stem_width"], best.arch["groups"], best.arch["norm"]) == (8, 4, "none")
    assert best.arch["stages"] == [{"depth": 1, "width": 4, "kernel": 1, "downsample": "none"}]


@pytest.mark.parametrize("space", ["digits-mlp", "digits-cnn"])
def test_a_space_whose_family_cannot_take_the_tasks_inputs_is_refused_at_start(space):
    from nas_student.errors import NasStudentError
    from nas_student.search import feasibility
    from nas_student.spaces import load_space
    from nas_student.tasks import text

    with pytest.raises(NasStudentError, match=f"space '{space}' cannot serve this task: family .* takes "
                                              "real-valued inputs, but this task's inputs are token ids"):
        feasibility.check_buildable(load_space(space), text.IO)
    feasibility.check_buildable(load_space("text-rnn"), text.IO)  # a sequence family: fine


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS], ids=["disk full", "read-only folder"])
def test_a_full_or_read_only_disk_stops_the_search_in_one_line_and_the_rerun_resumes(tmp_path, digits_task,
                                                                                      monkeypatch, err):
    """A disk error is the machine's condition, not the student's: the search stops at once with
    one line (not five failed trials), the trial it hit is failed as interrupted, the complete
    ones keep their values, and the same command resumes to the target."""
    from nas_student.search.objective import Objective

    real, calls = Objective._save_weights, []

    def save(self, model, h):
        calls.append(h)
        if len(calls) == 3:
            raise OSError(err, os.strerror(err), str(tmp_path / "r" / "weights" / f"{h}.pt"))
        return real(self, model, h)

    cfg = RunConfig(task="digits", run="r", results_dir=str(tmp_path), device="cpu", space="digits-mlp",
                    budget=ProxyRecipe(steps=10), search=SearchSettings(trials=5, seed=0, trust={"enabled": False}),
                    constraints={"macs_ratio": None, "params_ratio": None})
    monkeypatch.setattr(Objective, "_save_weights", save)
    with pytest.raises(NasStudentError) as e:
        run_search(cfg)
    line = str(e.value)
    assert "\n" not in line and os.strerror(err).lower() in line and "run the same command again" in line
    study = load_study(tmp_path / "r")
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 2 and states.count("FAIL") == 1 and "RUNNING" not in states
    failed = next(t for t in study.trials if t.state.name == "FAIL")
    assert failed.user_attrs["fail_kind"] == "interrupted"
    before = {t.number: t.values for t in study.trials if t.state.name == "COMPLETE"}
    monkeypatch.setattr(Objective, "_save_weights", real)
    out = run_search(cfg)
    after = out.study.trials
    assert sum(t.state.name == "COMPLETE" for t in after) == 5
    assert {n: after[n].values for n in before} == before


def test_a_worker_that_only_gets_refused_samples_says_why():
    from optuna.trial import TrialState, create_trial

    from nas_student.search.study import MAX_ATTEMPTS_PER_TRIAL, Tally

    def refused(status: str):
        return create_trial(state=TrialState.PRUNED, user_attrs={"status": status})

    for statuses, want in [
        ([None], r"\(refused: no reason recorded \(20\)\): loosen what refuses them"),  # no status recorded: no blame on the rules
        (["invalid: rule 'a < b' broken"], r"\(refused: invalid \(20\)\): the space's rules reject almost every sample"),
        (["invalid: rule 'a < b' broken", "too large for memory: training needs ~9 GB"],
         r"\(refused: invalid \(10\), too large for memory \(10\)\): loosen what refuses them"),
    ]:
        tally = Tally(optuna.create_study(), target=1)
        for i in range(MAX_ATTEMPTS_PER_TRIAL):
            tally.add(refused(statuses[i % len(statuses)]))
        assert tally.exhausted
        with pytest.raises(NasStudentError, match=f"^20 samples gave only 0 of 1 students {want}"):
            tally.check()
