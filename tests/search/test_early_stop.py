"""Pareto-aware early stopping: the dominance rule, and a search that stops dominated students."""

import pytest

from nas_student.config import RunConfig, SearchSettings
from nas_student.distill import Budget
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
    cfg = RunConfig(task="digits", budget=Budget(steps=40), search=SearchSettings(early_stop=True, rungs=(0.25, 0.5)))
    assert rung_steps(cfg) == [10, 20]
    assert rung_steps(RunConfig(task="digits", budget=Budget(steps=2), search=SearchSettings(rungs=(0.25, 0.5, 0.9)))) == [1]


@pytest.mark.slow
def test_search_stops_dominated_students_and_records_their_rung(tmp_path, digits_task):
    cfg = RunConfig(task="digits", results_dir=str(tmp_path), budget=Budget(steps=40), device="cpu", space="digits-mlp",
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
