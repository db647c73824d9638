"""The training-free first stage: ranking, and what it puts into the study."""

import optuna
import pytest

from nas_student.config import PrescreenSettings, RunConfig, SearchSettings
from nas_student.distill import ProxyRecipe
from nas_student.search.candidates import Candidate, RecordingSuggester, draw
from nas_student.search.context import prepare
from nas_student.search.prescreen import prescreen, rank
from nas_student.spaces import arch_hash, load_space


def cand(name: str, score: float, macs: float) -> Candidate:
    return Candidate({"n": name}, {}, name, {"macs": macs, "params": macs}, {"s": score})


def test_rank_sorts_by_fronts_then_by_score() -> None:
    # a(9, 5) and c(5, 1) are non-dominated; b(8, 6) is dominated by a; d(1, 9) by everything
    cands = [cand("b", 8, 6), cand("d", 1, 9), cand("c", 5, 1), cand("a", 9, 5)]
    assert [c.hash for c in rank(cands, "s", ["macs"])] == ["a", "c", "b", "d"]
    # with no cost objective it is the plain score order
    assert [c.hash for c in rank(cands, "s", [])] == ["a", "b", "c", "d"]


def test_recorded_params_replay_to_the_same_architecture() -> None:
    space = load_space("digits-cnn")
    s = RecordingSuggester(7)
    arch = space.sample(s)
    assert space.sample(optuna.trial.FixedTrial(s.params)) == arch
    assert "stages.count" in s.params and "stages.0.width" in s.params


def test_draw_keeps_rules_and_bounds(digits_task) -> None:
    space = load_space("digits-cnn")
    bounds = {"macs": 200_000.0, "params": 20_000.0}
    cands = draw(space, digits_task.io, bounds, 12, seed=1)
    assert len(cands) == 12 and len({c.hash for c in cands}) == 12
    for c in cands:
        assert not space.violations(c.arch) and c.hash == arch_hash(c.arch)
        assert c.costs["macs"] <= 200_000 and c.costs["params"] <= 20_000


def test_prescreen_enqueues_its_picks_into_a_new_study_only(tmp_path, digits_task) -> None:
    cfg = RunConfig(task="digits", results_dir=str(tmp_path), device="cpu", budget=ProxyRecipe(steps=5),
                    search=SearchSettings(trials=3, prescreen=PrescreenSettings(enabled=True, candidates=12, keep=3)))
    ctx = prepare(cfg)
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    picks = prescreen(ctx, study)
    assert len(picks) == 3 and all("synflow" in p.scores for p in picks)
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.system_attrs["fixed_params"] for t in waiting] == [p.params for p in picks]
    assert [t.user_attrs["prescreen_score"] for t in waiting] == [p.scores["synflow"] for p in picks]
    assert prescreen(ctx, study) == []  # the study has trials: nothing more is enqueued
    off = cfg.model_copy(update={"search": SearchSettings(trials=3)})
    assert prescreen(prepare(off), optuna.create_study(directions=["maximize"] * 3)) == []
    few = cfg.model_copy(update={"search": SearchSettings(
        trials=2, prescreen=PrescreenSettings(enabled=True, candidates=12, keep=3))})
    assert len(prescreen(prepare(few), optuna.create_study(directions=["maximize"] * 3))) == 2  # <= trials


@pytest.mark.slow
def test_search_starts_with_the_prescreened_students(tmp_path, digits_task) -> None:
    from nas_student.search import run_search

    settings = PrescreenSettings(enabled=True, candidates=10, keep=2)
    cfg = RunConfig(task="digits", results_dir=str(tmp_path), device="cpu", budget=ProxyRecipe(steps=5),
                    search=SearchSettings(trials=3, prescreen=settings, trust={"enabled": False}))
    out = run_search(cfg)
    first = sorted(out.study.get_trials(), key=lambda t: t.number)[:2]
    assert all("prescreen_score" in t.user_attrs for t in first)
    assert all(t.user_attrs["feasible"] for t in first)  # picks are drawn within the bounds
