"""End-to-end searches on the built-in digits task (the teacher is trained once per session)."""

import json
import subprocess
import sys

import optuna
import pandas as pd
import pytest

from nas_student.config import Constraints, RunConfig, SearchSettings
from nas_student.distill import ProxyRecipe
from nas_student.search import run_search

pytestmark = pytest.mark.slow


def small(tmp_path, **kw):
    search = kw.pop("search", SearchSettings(trials=6, seed=0))
    return RunConfig(task="digits", results_dir=str(tmp_path), budget=ProxyRecipe(steps=40), search=search, **kw)


def test_search_writes_front_and_trials_with_the_promised_columns(tmp_path, digits_task):
    out = run_search(small(tmp_path))
    trials = pd.read_csv(out.run_dir / "trials.csv")
    front = pd.read_csv(out.run_dir / "pareto.csv")
    for col in ["trial", "state", "feasible", "accuracy", "macs", "params", "macs_ratio", "params_ratio", "arch_hash"]:
        assert col in trials.columns and col in front.columns
    assert (trials["state"] == "COMPLETE").sum() == 6
    assert len(front) >= 1 and front["feasible"].all()
    assert (front["macs_ratio"] <= 0.1).all() and (front["params_ratio"] <= 0.1).all()
    teacher = out.study.user_attrs["teacher"]
    assert (front["macs"] / teacher["macs"]).round(12).equals(front["macs_ratio"].round(12))
    assert out.study.metric_names == ["accuracy"]  # optuna-dashboard's labels (the default focus: best)
    for r in front.itertuples():  # each front student's weights were kept
        assert (out.run_dir / "weights" / f"{r.arch_hash}.pt").exists()


def test_oversized_students_are_recorded_infeasible_and_never_trained(tmp_path, digits_task, monkeypatch):
    from nas_student.search import feasibility

    # a space whose students all exceed the bounds is refused at start-up (test_failures.py);
    # with that check off, each oversized trial is still recorded as infeasible, never trained
    monkeypatch.setattr(feasibility, "check", lambda *a, **k: None)
    cfg = small(tmp_path, constraints=Constraints(max_params=50))  # nothing fits in 50 params
    out = run_search(cfg)
    done = out.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 6
    for t in done:
        assert t.user_attrs["feasible"] is False
        assert "train_s" not in t.user_attrs["timing"]
        assert t.constraints["params"] > 0 and t.user_attrs["record"]["params"] > 50
    assert out.front.empty
    assert not (out.run_dir / "weights").exists()


def test_an_architecture_is_never_trained_twice(tmp_path, digits_task):
    space = tmp_path / "two.yaml"
    space.write_text("name: two\nfamily: mlp\nparams:\n  layers: {type: repeat, count: 1, params: "
                     "{width: {type: choice, values: [8, 16]}}}\n")
    out = run_search(small(tmp_path, space=str(space)))
    df = out.trials[out.trials["state"] == "COMPLETE"]
    trained = df[df["duplicate_of"].isna()]
    assert trained["arch_hash"].is_unique and len(trained) == 2
    repeats = df[df["duplicate_of"].notna()]
    assert len(repeats) == 4
    for r in repeats.itertuples():
        src = df[df["trial"] == r.duplicate_of].iloc[0]
        assert src.arch_hash == r.arch_hash and src.accuracy == r.accuracy


def test_resume_with_different_settings_is_refused(tmp_path, digits_task):
    run_search(small(tmp_path, search=SearchSettings(trials=1)))
    from nas_student.errors import NasStudentError
    with pytest.raises(NasStudentError, match=r"different settings \(budget.steps \d+ -> 41\)"):
        run_search(small(tmp_path, search=SearchSettings(trials=2)).model_copy(update={"budget": ProxyRecipe(steps=41)}))


def test_resume_against_another_builtin_teacher_is_refused(tmp_path, digits_task):
    """A built-in teacher retrained with other settings (NAS_STUDENT_TEACHER_STEPS) is another teacher:
    the run's students were distilled from the first one."""
    from nas_student.errors import NasStudentError

    first = run_search(small(tmp_path, space="digits-mlp", search=SearchSettings(trials=1)))
    teacher = first.study.user_attrs["teacher"]
    assert teacher["key"] == digits_task.teacher_info["key"]
    first.study.set_user_attr("teacher", {**teacher, "key": "0123456789abcdef"})
    with pytest.raises(NasStudentError, match=r"was searched against another built-in teacher \(cache entry "
                                              r"0123456789abcdef, now \w+: trained with other settings"):
        run_search(small(tmp_path, space="digits-mlp", search=SearchSettings(trials=2)))


def test_a_resume_may_change_the_recommendation_rule_and_the_run_keeps_it(tmp_path, digits_task):
    from nas_student.results.runs import open_run, recommended_trial

    first = run_search(small(tmp_path, space="digits-mlp", search=SearchSettings(trials=3)))
    assert open_run(first.run_dir).recommend == "best"  # the default
    again = run_search(small(tmp_path, space="digits-mlp", search=SearchSettings(trials=3, recommend="within:2")))
    view = open_run(again.run_dir)
    assert view.recommend == "within:2" and str(recommended_trial(view)[1]) == "within:2"
    assert len(again.trials) == len(first.trials)


def test_focus_best_samples_by_accuracy_alone_and_still_reports_the_front(tmp_path, digits_task):
    out = run_search(small(tmp_path, space="digits-mlp", search=SearchSettings(trials=5, focus="best")))
    assert len(out.study.directions) == 1 and out.study.metric_names == ["accuracy"]
    assert out.study.user_attrs["objectives"] == ["accuracy", "macs", "params"]  # what the front is over
    done = [t for t in out.study.trials if t.state.name == "COMPLETE"]
    assert all(t.values == [t.user_attrs["record"]["accuracy"]] for t in done if t.user_attrs.get("feasible"))
    assert len(out.front) >= 1 and {"macs", "params"} <= set(out.front.columns)


def _states(db, name="k"):
    from nas_student.search.study import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(db.parent)).get_trials()


def test_storage_opened_by_many_processes_at_once_never_crashes(tmp_path):
    """A search starting while `pareto` reads the run: both create the schema of a new file."""
    code = ("import sys; from pathlib import Path; from nas_student.search.study import open_storage;"
            "open_storage(Path(sys.argv[1]))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stderr=subprocess.PIPE)
             for _ in range(4)]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(errors)


def test_a_run_made_before_new_settings_existed_still_resumes():
    from nas_student.search.study import _config_key, _with_defaults

    key = _config_key(RunConfig(task="digits", budget=ProxyRecipe(steps=40)))
    old = json.loads(json.dumps(key))
    for section, name in (("budget", "features"), ("budget", "labelled_fraction"), ("search", "early_stop"),
                          ("search", "focus")):
        old[section].pop(name)
    old.pop("data_free")
    front = _config_key(RunConfig(task="digits", budget=ProxyRecipe(steps=40), search=SearchSettings(focus="front")))
    # a run made before `focus` existed optimised every objective: it resumes as "front"
    assert _with_defaults(old) == front and _with_defaults(old) != key
    old["budget"]["steps"] = 41  # a setting that did change is still caught
    assert _with_defaults(old) != front


def test_a_run_made_before_steps_by_depth_resumes_with_the_steps_it_trained():
    from nas_student.search.study import _config_key, _with_defaults

    def stored(**budget):  # a run's key as an older version wrote it
        key = _config_key(RunConfig(task="digits", budget=ProxyRecipe(steps=40)))
        for name in ("depth_power", "reference_depth"):
            key["budget"].pop(name)
        key["budget"].update(budget)
        return key

    equal = _config_key(RunConfig(task="digits", budget=ProxyRecipe(steps=40)))
    # before steps by depth every student trained `steps`: the default, so it resumes as it is
    assert _with_defaults(stored()) == equal
    assert _with_defaults(stored()) != _config_key(RunConfig(task="digits", budget=ProxyRecipe(steps=40, depth_power=0.5)))
    assert _with_defaults(stored(steps_per_layer=None, depth_power=1.0)) == equal
    # `steps_per_layer` 20 x sqrt(depth) is 28 x sqrt(depth / 2)
    assert _with_defaults(stored(steps_per_layer=20, depth_power=0.5)) == _config_key(
        RunConfig(task="digits", budget=ProxyRecipe(steps=28, depth_power=0.5)))


def test_a_budget_in_epochs_searches_and_its_stored_settings_reload(tmp_path, digits_task):
    from nas_student.distill.recipe import ProxyRecipe

    cfg = RunConfig(task="digits", results_dir=str(tmp_path), space="digits-mlp", budget=ProxyRecipe(epochs=1),
                    search=SearchSettings(trials=2, trust={"enabled": False}))
    out = run_search(cfg)
    assert [t.state.name for t in out.study.trials] == ["COMPLETE", "COMPLETE"]
    assert all(t.user_attrs["feasible"] and "stopped_early" not in t.user_attrs for t in out.study.trials)
    stored = RunConfig.model_validate(out.study.user_attrs["config"])  # what workers and `train` read
    assert stored.budget.epochs == 1
