"""The trust report: which students are re-trained, the verdict, the files, the cache."""

import dataclasses
import json
import math

import pandas as pd
import pytest
import torch

from nas_student.config import RunConfig, SearchSettings, TrustSettings
from nas_student.distill import ProxyRecipe, evaluate, train
from nas_student.families import build
from nas_student.search import run_search, trust
from nas_student.seeds import student_seed


def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "trial": range(n), "feasible": [True] * (n - 2) + [False, True],
        "duplicate_of": pd.array([pd.NA] * (n - 1) + [0], dtype="Int64"),
        "accuracy": [0.1 * (i % 10) for i in range(n - 2)] + [math.nan, 0.5],
        "macs": range(n), "params": range(n), "arch_hash": [f"h{i}" for i in range(n)], "arch": ["{}"] * n,
    })


def test_pick_spreads_over_the_front_and_skips_untrained_and_duplicates() -> None:
    trials = frame(14)
    front = trials.iloc[[0, 2, 4, 6, 8, 10]]
    picked = trust.pick(trials, front, max_front=3, off_front=2)
    on, off = picked[picked["on_front"]], picked[~picked["on_front"]]
    assert list(on["trial"]) == [0, 4, 10]  # positions round(linspace(0, 5, 3)) = 0, 2, 5 of the front
    # off-front: trials 1,3,5,7,9,11 (12 untrained, 13 a duplicate) by accuracy: 1 and 11 (0.1), 3, ..., 9 (0.9)
    assert list(off["trial"]) == [1, 9]  # the lowest and the highest
    assert set(picked["trial"]).isdisjoint({12, 13})


def test_pick_takes_everything_when_there_is_little() -> None:
    trials = frame(6)
    picked = trust.pick(trials, trials.iloc[[0]], max_front=8, off_front=4)
    assert sorted(picked["trial"]) == [0, 1, 2, 3]


def test_a_budget_shrinks_the_front_first_then_the_off_front_students_never_below_four_and_one() -> None:
    assert trust.pick_sizes(6, 2) == [(6, 2), (5, 2), (4, 2), (4, 1)]
    assert trust.pick_sizes(3, 0) == [(3, 0)] and trust.pick_sizes(5, 3) == [(5, 3), (4, 3), (4, 2), (4, 1)]


def timed(n: int) -> pd.DataFrame:
    """``n`` trained one-family students, trial i trained in i + 1 seconds; the first 8 are the front."""
    return pd.DataFrame({"trial": range(n), "feasible": True, "duplicate_of": pd.array([pd.NA] * n, dtype="Int64"),
                         "accuracy": [0.5 + 0.01 * i for i in range(n)], "macs": range(n), "params": range(n),
                         "arch_hash": [f"h{i}" for i in range(n)], "arch": ['{"family": "cnn1d"}'] * n,
                         "train_s": [float(i + 1) for i in range(n)],
                         "stopped_early": pd.array([pd.NA] * n, dtype="Int64")})


def test_the_longer_runs_are_estimated_from_each_students_own_proxy_run() -> None:
    picked = timed(3).assign(stopped_early=pd.array([None, 50, None], dtype="Int64"))
    # 1 s, 2 s, 3 s for 150, 50, 150 steps; to 300 steps: 150, 250, 150 more steps, or 300 each from the start
    assert trust.long_runs_s(picked, "proxy", 150, 300) == pytest.approx(1 + 2 / 50 * 250 + 3)
    assert trust.long_runs_s(picked, "init", 150, 300) == pytest.approx(2 + 2 / 50 * 300 + 6)
    assert trust.search_training_s(picked) == 6.0
    assert trust.search_training_s(picked.drop(columns="train_s")) is None


def test_the_pick_is_the_largest_that_fits_the_budget() -> None:
    trials = timed(30)  # 465 s of training; continued to 2x the steps, a student's longer run costs its proxy run's time
    front = trials.iloc[:8]
    # front spread: 6 -> trials 0,1,3,4,6,7 (27 s), 5 -> 0,2,4,5,7 (23 s), 4 -> 0,2,5,7 (18 s); off-front spread over
    # trials 8..29: 2 -> 8 and 29 (39 s), 1 -> 8 (9 s). Shares of 465 s: 14.2 %, 13.3 %, 12.3 %, then (4, 1) 5.8 %
    want = {None: (6, 2), 0.2: (6, 2), 0.135: (5, 2), 0.13: (4, 2), 0.06: (4, 1), 0.001: (4, 1)}  # 0.001: the floor
    for budget, size in want.items():
        picked = trust.pick_within(trials, front, TrustSettings(budget=budget), 150, 300)
        on = int(picked["on_front"].sum())
        assert (on, len(picked) - on) == size, budget
    assert trust.long_runs_s(trust.pick(trials, front, 5, 2), "proxy", 150, 300) == pytest.approx(62.0)
    no_timing = trust.pick_within(trials.drop(columns="train_s"), front, TrustSettings(budget=0.001), 150, 300)
    assert len(no_timing) == 8


def test_students_of_a_family_with_a_step_factor_are_judged_at_their_own_steps(tmp_path) -> None:
    from nas_student.distill import ProxyRecipe

    proxy = ProxyRecipe(depth_power=0, family_step_factor={"rnn": 2})  # partial archs: no depth
    trials = timed(4).assign(arch=['{"family": "cnn1d"}', '{"family": "rnn"}', '{"family": "rnn"}', '{"family": "mlp"}'])
    steps = trust.with_steps(trials, proxy, 300, ["cnn1d", "rnn", "mlp"])
    assert steps["proxy_steps"].tolist() == [150, 300, 300, 150] and steps["long_steps"].tolist() == [300, 600, 600, 300]
    one = trust.with_steps(trials, proxy, 300, ["rnn"])  # one family: no factor
    assert one["proxy_steps"].tolist() == [150] * 4 and one["long_steps"].tolist() == [300] * 4
    # continued: each adds its own steps (1 s / 150, 2 s / 300, 3 s / 300, 4 s / 150 per step)
    assert trust.long_runs_s(steps, "proxy", 150, 300) == pytest.approx(1 + 2 + 3 + 4)
    assert trust.long_runs_s(steps, "init", 150, 300) == pytest.approx(2 * (1 + 2 + 3 + 4))
    for h in ("h0", "h1"):
        (tmp_path / f"{h}.pt").write_bytes(b"")
    jobs = trust.jobs(steps.assign(stopped_early=pd.array([None] * 4, dtype="Int64")), tmp_path, 150, 300)
    assert [(j.start, j.done) for j in jobs[:3]] == [(tmp_path / "h0.pt", 150), (tmp_path / "h1.pt", 300), (None, 300)]


def test_trials_without_an_architecture_get_the_runs_steps_and_the_estimate_follows_the_jobs(tmp_path) -> None:
    from nas_student.distill import ProxyRecipe

    proxy = ProxyRecipe(depth_power=0, family_step_factor={"rnn": 2})  # partial archs: no depth
    trials = timed(3).assign(arch=['{"family": "rnn"}', "", math.nan])  # failed while sampling; queued
    steps = trust.with_steps(trials, proxy, 300, ["cnn1d", "rnn"])
    assert steps["proxy_steps"].tolist() == [300, 150, 150] and steps["long_steps"].tolist() == [600, 300, 300]
    empty = pd.DataFrame()
    assert trust.with_steps(empty, proxy, 300, ["rnn"]) is empty  # an empty front: nothing to add
    one = timed(2).assign(arch=['{"family": "cnn1d"}'] * 2)  # 1 s and 2 s for 150 steps
    (tmp_path / "h0.pt").write_bytes(b"")  # h1 kept no weights: it re-trains from its initialisation
    assert trust.long_runs_s(one, "proxy", 150, 300, tmp_path) == pytest.approx(1 + 2 * 2)
    assert trust.long_runs_s(one, "proxy", 150, 300) == pytest.approx(1 + 2)  # no folder given: weights assumed
    assert trust.long_runs_s(one, "proxy", 150, 100) == pytest.approx((1 + 2) * 100 / 150)  # no more steps to add


@pytest.mark.parametrize("tau,n,word", [(0.9, 10, "high"), (0.5, 10, "moderate"), (0.1, 10, "low"),
                                        (0.9, 3, "too few"), (math.nan, 10, "too few")])
def test_verdict(tau: float, n: int, word: str) -> None:
    assert trust.verdict(tau, n).startswith(word)


def test_a_tau_on_a_threshold_counts_as_reaching_it() -> None:
    """Over 5 students tau moves in steps of 0.2; scipy computes 0.4 as 0.39999999999999997 (the
    default demo's report said "low" for a projected tau printed as 0.40)."""
    from scipy import stats

    proxy, long = [0.7845, 0.9285, 0.944, 0.9615, 0.738], [0.836, 0.963, 0.9675, 0.97, 0.8245]  # that demo's students
    ptau = stats.kendalltau(proxy, trust.projected(proxy, long))[0]
    assert ptau < 0.4 and ptau == pytest.approx(0.4)
    assert trust.verdict(stats.kendalltau(proxy, long)[0], 5, ptau).startswith("moderate")
    assert trust.verdict(0.39999999999999997, 5).startswith("moderate") and trust.verdict(0.3999, 5).startswith("low")
    assert trust.verdict(0.6999999999999999, 5).startswith("high")


def test_a_projected_swap_within_the_validation_noise_does_not_count() -> None:
    """The default demo's students: the measured order held (tau 1.00) but three front students at
    0.963-0.975 projected within 0.0006 of each other; scipy's tau over the projection was 0.20."""
    from scipy import stats

    proxy, long = [0.575, 0.9285, 0.945, 0.968, 0.8755], [0.6405, 0.963, 0.9705, 0.975, 0.9515]
    assert stats.kendalltau(proxy, trust.projected(proxy, long))[0] == pytest.approx(0.2)
    assert trust.projected_tau(proxy, long, n_val=2000) == pytest.approx(1.0)  # every reversal < 1 standard error
    assert trust.projected_tau(proxy, long, n_val=10**9) == pytest.approx(0.2)  # noise-free: every reversal counts
    assert trust.verdict(1.0, 5, trust.projected_tau(proxy, long, 2000)).startswith("high")
    # slow starters (GRUs among CNNs and MLPs): every projected reversal counts without noise
    proxy, long = [0.83, 0.49, 0.48, 0.43, 0.40, 0.37], [0.92, 0.52, 0.51, 0.50, 0.48, 0.46]
    assert trust.projected_tau(proxy, long, 10**9) == pytest.approx(stats.kendalltau(proxy, trust.projected(proxy, long))[0])
    # on 2,000: only the GRU at 0.43 -> 0.561 passing the MLP at 0.48 -> 0.538 (2.3 points, se 1.6) counts
    assert trust.projected_tau(proxy, long, 2000) == pytest.approx(13 / 15)
    assert math.isnan(trust.projected_tau([0.5, 0.5], [0.6, 0.7], 2000))  # no ordered pair


def test_students_of_several_families_are_at_most_moderate() -> None:
    assert trust.verdict(0.9, 8, 0.9, families=1).startswith("high")
    said = trust.verdict(0.9, 8, 0.9, families=3)
    assert said.startswith("moderate") and "students of 3 families" in said
    assert trust.verdict(0.5, 8, 0.5, families=3) == trust.verdict(0.5, 8, 0.5)  # below high: as before
    assert trust.verdict(0.9, 8, 0.2, families=2).startswith("low")
    assert trust.n_families(picked_frame(["cnn1d", "rnn", "cnn1d"], [None] * 3)) == 2


def test_students_improving_at_different_rates_cannot_be_judged_high() -> None:
    """Slow starters (e.g. GRUs among CNNs) keep their order between 150 and 300 steps yet swap
    it after full training: the projected ranking catches them (trust_calibration.md)."""
    proxy = [0.83, 0.49, 0.48, 0.43, 0.40, 0.37]  # a CNN, two MLPs, then three GRUs
    long = [0.92, 0.52, 0.51, 0.50, 0.48, 0.46]   # the same order, but the GRUs gain 3-4x more
    proj = trust.projected(proxy, long)  # each closes again the fraction of its error it just closed
    want = [b + (b - a) * (1 - b) / (1 - a) for a, b in zip(proxy, long)]
    assert proj == pytest.approx(want) and proj == pytest.approx([0.9624, 0.5482, 0.5383, 0.5614, 0.5493, 0.5371], abs=1e-4)
    assert trust.projected([1.0, 0.5], [1.0, 0.6]) == pytest.approx([1.0, 0.68])  # a perfect proxy stays put
    from scipy import stats

    tau, ptau = stats.kendalltau(proxy, long)[0], stats.kendalltau(proxy, proj)[0]
    assert tau == pytest.approx(1.0) and ptau == pytest.approx(0.467, abs=1e-3)
    said = trust.verdict(tau, 6, ptau)
    assert said.startswith("moderate") and "improve at different rates: the projected ranking has tau 0.47" in said
    assert trust.verdict(0.9, 6, 0.28).startswith("low")
    assert trust.verdict(0.9, 6, 0.55).startswith("moderate: the front's order may change")
    assert trust.verdict(0.9, 6, 0.8) == trust.verdict(0.9, 6) and trust.verdict(0.9, 6).startswith("high")
    assert trust.verdict(0.5, 6, 0.6).startswith("moderate") and "different rates" not in trust.verdict(0.5, 6, 0.6)


def picked_frame(families: list[str | None], stopped: list[int | None]) -> pd.DataFrame:
    return pd.DataFrame({"arch": [json.dumps({} if f is None else {"family": f}) for f in families],
                         "arch_hash": [f"h{i}" for i in range(len(families))],
                         "stopped_early": pd.array(stopped, dtype="Int64")})


def test_the_longer_runs_continue_the_proxy_runs_within_one_family_only() -> None:
    one, two = picked_frame(["cnn1d"] * 3, [None] * 3), picked_frame(["cnn1d", "rnn", "cnn1d"], [None] * 3)
    assert trust.continues(one, "auto") and not trust.continues(two, "auto")
    assert trust.continues(picked_frame([None, None], [None, None]), "auto")  # a space without families
    assert trust.continues(two, "proxy") and not trust.continues(one, "init")


def test_jobs_start_from_kept_weights_at_the_step_each_student_reached(tmp_path) -> None:
    picked = picked_frame(["cnn1d"] * 3, [None, 50, None])
    for h in ("h0", "h1"):
        (tmp_path / f"{h}.pt").write_bytes(b"")
    jobs = trust.jobs(picked, tmp_path, proxy_steps=150, steps=300)
    assert [(j.arch_hash, j.start, j.done) for j in jobs] == [
        ("h0", tmp_path / "h0.pt", 150), ("h1", tmp_path / "h1.pt", 50), ("h2", None, 150)]  # h2: no weights
    assert all(j.start is None for j in trust.jobs(picked, None, 150, 300))  # start: init
    assert [j.start for j in trust.jobs(picked, tmp_path, 150, 150)] == [None, tmp_path / "h1.pt", None]  # h0: done


@pytest.mark.slow
def test_search_writes_the_trust_report_and_reuses_it(tmp_path, digits_task, monkeypatch) -> None:
    cfg = RunConfig(task="digits", results_dir=str(tmp_path), device="cpu", budget=ProxyRecipe(steps=20),
                    search=SearchSettings(trials=6, seed=0, trust=TrustSettings(steps_factor=2.0, off_front=2,
                                                                                budget=None)))
    out = run_search(cfg)
    rep = out.trust
    assert rep is not None and rep.steps == 40 and rep.proxy_steps == 20
    saved = json.loads((out.run_dir / "trust.json").read_text())
    assert saved["steps"] == 40 and len(saved["students"]) == len(rep.students)
    n_front = len(out.front)
    assert sum(s["on_front"] for s in rep.students) == min(n_front, 6)
    trained = out.trials[out.trials["feasible"] & out.trials["duplicate_of"].isna()]
    assert len(rep.students) == min(n_front, 6) + min(2, len(trained) - n_front)
    for s in rep.students:  # proxy numbers are the search's own
        row = out.trials[out.trials["trial"] == s["trial"]].iloc[0]
        assert s["proxy_accuracy"] == pytest.approx(row["accuracy"])
        assert 0.0 <= s["long_accuracy"] <= 1.0
    assert "Kendall tau" in (out.run_dir / "trust.md").read_text() and "Projected ranking" in (out.run_dir / "trust.md").read_text()
    assert saved["projected_tau"] == pytest.approx(rep.projected_tau, nan_ok=True)
    assert rep.search_training_s == pytest.approx(float(trained["train_s"].sum())) and rep.training_s > 0
    assert f"{rep.training_s / rep.search_training_s:.0%} of the search's" in (out.run_dir / "trust.md").read_text()

    # one family: every student continued its proxy run to twice its own steps (by depth); by hand:
    assert all(s["continued"] for s in rep.students) and "continued from its proxy weights for 20" in (
        out.run_dir / "trust.md").read_text()
    first = out.trials[out.trials["trial"] == rep.students[0]["trial"]].iloc[0]
    arch = json.loads(first["arch"])
    own, long = (ProxyRecipe(steps=n).for_student(arch, ["cnn"]) for n in (20, 40))
    assert (rep.students[0]["proxy_steps"], rep.students[0]["long_steps"]) == (own.steps, long.steps)
    model = build(arch, out.ctx.task.io)
    model.load_state_dict(torch.load(out.run_dir / "weights" / f"{first['arch_hash']}.pt", weights_only=True))
    seed = student_seed(first["arch_hash"], 0)
    train(model, *out.ctx.task.distillation_set(), own.model_copy(update={"steps": long.steps - own.steps}),
          teacher=out.ctx.task.teacher, teacher_logits=out.ctx.teacher_train_logits, seed=trust.continuation_seed(seed))
    assert rep.students[0]["long_accuracy"] == pytest.approx(
        evaluate(model, out.ctx.task.val.x, out.ctx.task.val.y)["accuracy"])

    def no_training(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(trust, "train", no_training)  # a second run re-uses trust.json
    again = trust.run_trust(out.ctx, out.trials, out.front, out.run_dir)
    assert [s["long_accuracy"] for s in again.students] == [s["long_accuracy"] for s in rep.students]
    assert again.reused == len(rep.students) and again.training_s == pytest.approx(rep.training_s)  # their cost kept
    assert f"({len(rep.students)} of them reused from an earlier report)" in (out.run_dir / "trust.md").read_text()
    init = dataclasses.replace(out.ctx, cfg=cfg.model_copy(update={"search": cfg.search.model_copy(
        update={"trust": TrustSettings(steps_factor=2.0, off_front=2, start="init", budget=None)})}))
    with pytest.raises(AssertionError, match="trained again"):  # trained another way: not re-used
        trust.run_trust(init, out.trials, out.front, out.run_dir)

    # on two processes (forked helpers, one thread each as here): the same numbers
    monkeypatch.undo()
    (out.run_dir / "trust.json").unlink()
    two = out.ctx.cfg.model_copy(update={"execution": out.ctx.cfg.execution.model_copy(update={"workers": 2})})
    parallel = trust.run_trust(dataclasses.replace(out.ctx, cfg=two), out.trials, out.front, out.run_dir)
    assert [s["long_accuracy"] for s in parallel.students] == [s["long_accuracy"] for s in rep.students]


@pytest.mark.slow
def test_no_trust_writes_no_report(tmp_path, digits_task) -> None:
    cfg = RunConfig(task="digits", results_dir=str(tmp_path), device="cpu", budget=ProxyRecipe(steps=10),
                    search=SearchSettings(trials=2, trust=TrustSettings(enabled=False)))
    out = run_search(cfg)
    assert out.trust is None and not (out.run_dir / "trust.json").exists()


def test_the_summary_says_when_students_trained_their_own_proxy_steps():
    from nas_student.search.trust import TrustReport, summary

    def report(students):
        return TrustReport(steps=300, proxy_steps=150, students=students, tau=0.8, p_value=0.01, projected_tau=0.8,
                           best_kept=True, verdict="high", wall_s=1.0)

    same = [{"proxy_steps": 150, "long_steps": 300}] * 3
    assert "between the proxy (150 steps) and 300 steps over 3 students; high" in summary(report(same))
    own = [{"proxy_steps": 106, "long_steps": 212}, {"proxy_steps": 184, "long_steps": 368}]
    assert "between the proxy (each student's own steps) and 2x those over 2 students" in summary(report(own))
