"""Pareto-aware early stopping: the dominance rule, and a search that stops dominated students."""

import pytest

from nas_student.config import RunConfig, SearchSettings
from nas_student.distill import ProxyRecipe
from nas_student.search import run_search
from nas_student.search.early_stop import dominated_at, dominates, rung_steps

OBJS = ("accuracy", "macs", "params")


def test_dominance_needs_equal_or_better_everywhere_and_strictly_better_once():
    a = {"accuracy": 0.8, "macs": 100, "params": 10}
    assert dominates(a, {"accuracy": 0.7, "macs": 100, "params": 10}, OBJS)
    assert dominates(a, {"accuracy": 0.8, "macs": 120, "params": 10}, OBJS)
    assert not dominates(a, dict(a), OBJS)  # equal: nobody is stopped
    assert not dominates(a, {"accuracy": 0.7, "macs": 90, "params": 10}, OBJS)  # cheaper: kept
    assert dominates({"agreement": 0.9, "latency_ms": 1.0}, {"agreement": 0.8, "latency_ms": 2.0},
                     ("agreement", "latency_ms"))


class _T:
    def __init__(self, number, rungs):
        self.number, self.user_attrs = number, {"rungs": rungs}


def test_only_peers_at_the_same_rung_count():
    me = {"accuracy": 0.5, "macs": 100, "params": 10}
    better_later = _T(1, {"20": {"accuracy": 0.9, "macs": 50, "params": 5}})
    assert dominated_at(me, 10, [better_later], OBJS) is None
    better_here = _T(2, {"10": {"accuracy": 0.6, "macs": 100, "params": 10}})
    assert dominated_at(me, 10, [better_later, better_here], OBJS) == 2


def test_rungs_are_fractions_of_the_budget_below_it():
    cfg = RunConfig(task="digits", budget=ProxyRecipe(steps=40), search=SearchSettings(early_stop=True, rungs=(0.25, 0.5)))
    assert rung_steps(cfg) == [10, 20]
    assert rung_steps(RunConfig(task="digits", budget=ProxyRecipe(steps=2), search=SearchSettings(rungs=(0.25, 0.5, 0.9)))) == [1]


@pytest.mark.slow
def test_search_stops_dominated_students_and_records_their_rung(tmp_path, digits_task):
    cfg = RunConfig(task="digits", results_dir=str(tmp_path), budget=ProxyRecipe(steps=40), device="cpu", space="digits-mlp",
                    search=SearchSettings(trials=10, seed=0, early_stop=True))
    out = run_search(cfg)
    trials = {t.number: t for t in out.study.trials}
    stopped = [t for t in trials.values() if "stopped_early" in t.user_attrs]
    trained = [t for t in trials.values() if t.user_attrs.get("feasible")]
    assert stopped, [t.user_attrs.get("status") for t in trials.values()]
    for t in trained:  # every trained student was evaluated at the rungs it reached
        reached = [s for s in (10, 20) if s <= t.user_attrs.get("stopped_early", 40)]
        assert sorted(int(s) for s in t.user_attrs["rungs"]) == reached
    for t in stopped:
        step = t.user_attrs["stopped_early"]
        assert step in (10, 20) and t.state.name == "COMPLETE"
        rung = t.user_attrs["rungs"][str(step)]
        assert t.user_attrs["record"]["accuracy"] == pytest.approx(rung["accuracy"])
        assert t.values[0] == pytest.approx(rung["accuracy"])
        by = int(t.user_attrs["status"].split("trial ")[-1].rstrip(")"))
        assert dominates(trials[by].user_attrs["rungs"][str(step)], rung, cfg.search.objectives)
    assert (out.trials["state"] == "COMPLETE").sum() == 10
    assert len(out.front) >= 1


def test_a_worker_places_its_rungs_where_the_search_does_with_a_budget_in_epochs(tmp_path, digits_task):
    """The budget is resolved once (search.context.resolve_budget): a worker rebuilding the
    context from run.json counts the same steps as the search that wrote it, not the default."""
    from nas_student.search import worker
    from nas_student.storage import load_study

    cfg = RunConfig(task="digits", results_dir=str(tmp_path), run="ep", budget=ProxyRecipe(epochs=0.5), device="cpu",
                    space="digits-mlp", search=SearchSettings(trials=1, seed=0, early_stop=True,
                                                              trust={"enabled": False}))
    out = run_search(cfg)
    steps = out.ctx.cfg.budget.steps
    assert steps != ProxyRecipe().steps  # half an epoch of digits' training split, not the default
    rebuilt = worker.context(worker.run_config(out.run_dir), out.run_dir, load_study(out.run_dir))
    assert rebuilt.cfg.budget.steps == steps
    assert rung_steps(rebuilt.cfg) == rung_steps(out.ctx.cfg) == [round(steps / 4), round(steps / 2)]


def test_rungs_score_at_the_final_temperature_of_a_schedule(monkeypatch):
    """With a temperature curriculum the rungs report the KD loss at the temperature the
    objective uses (the schedule's last), not the schedule object."""
    from types import SimpleNamespace

    import torch

    from nas_student.search import early_stop

    seen = {}

    def fake_evaluate(model, x, y, teacher_logits, *, temperature):
        seen["temperature"] = temperature
        return {"accuracy": 0.5, "agreement": 0.5}

    monkeypatch.setattr(early_stop, "evaluate", fake_evaluate)
    cfg = RunConfig(task="digits", budget=ProxyRecipe(steps=40, temperature={"kind": "cosine", "start": 8, "end": 2}),
                    search=SearchSettings(early_stop=True))
    study = SimpleNamespace(get_trials=lambda **kw: [])
    trial = SimpleNamespace(number=0, study=study, set_user_attr=lambda k, v: None)
    ctx = SimpleNamespace(cfg=cfg, task=SimpleNamespace(val=SimpleNamespace(x=None, y=None)), teacher_val_logits=None)
    stopper = early_stop.RungStopper(ctx, trial, torch.nn.Linear(1, 1), {"macs": 1, "params": 1})
    assert stopper(10) is False
    assert seen["temperature"] == pytest.approx(cfg.budget.final_temperature) == pytest.approx(2.0, abs=0.05)
