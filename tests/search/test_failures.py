"""Trials that fail, diverge or would not fit in memory are recorded, and the search goes on."""

import optuna
import pytest

from nas_student.config import RunConfig, SearchSettings
from nas_student.distill import Budget
from nas_student.search import memory, run_search

pytestmark = pytest.mark.slow


def cfg(tmp_path, **kw):
    return RunConfig(results_dir=str(tmp_path), budget=kw.pop("budget", Budget(steps=20)),
                     search=SearchSettings(trials=4, seed=1), **kw)


def test_diverging_students_fail_with_a_reason_and_the_search_goes_on(tmp_path, digits_task, monkeypatch):
    import nas_student.search.objective as objective

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

    import nas_student.search.objective as objective
    built = []
    real_build = objective.build
    monkeypatch.setattr(objective, "build",
                        lambda *a, **k: built.append(torch.empty(0).device.type) or real_build(*a, **k))
    with pytest.raises(Exception, match="samples gave only 0 of 4"):
        run_search(cfg(tmp_path).model_copy(update={"search": SearchSettings(trials=4, seed=1)}))
    study = optuna.load_study(study_name="digits-digits-cnn-s1", storage=f"sqlite:///{tmp_path}/digits-digits-cnn-s1/study.db")
    pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    too_big = [t for t in pruned if t.user_attrs.get("status", "").startswith("too large for memory")]
    assert too_big and all(t.constraints["memory"] > 0 for t in too_big)
    # built only on the meta device, never for real
    assert built and set(built) == {"meta"}


def test_training_bytes_estimate():
    assert memory.training_bytes(1000) == 16_000
    assert memory.training_bytes(1000, 100, 64) == 16_000 + 12 * 100 * 64
    assert memory.meta_params(lambda: __import__("torch").nn.Linear(1000, 1000)) == 1_001_000
