import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from nas_student.results import pareto_front
from nas_student.results.runs import open_run
from nas_student.results.hypervolume import front_hypervolume, hypervolume, normalise, scales
from nas_student.results.plots import draw_html, draw_png, plot_data
from nas_student.results.recommend import best_quality, knee_point, parse_rule, recommend

OBJS = ["accuracy", "macs", "params"]


def brute_front(trials: pd.DataFrame, objs) -> set[int]:
    ok = trials[trials["feasible"] & trials["duplicate_of"].isna()].dropna(subset=objs)
    sign = {"accuracy": -1, "agreement": -1, "macs": 1, "params": 1}
    pts = {int(r.trial): [sign[o] * getattr(r, o) for o in objs] for r in ok.itertuples()}
    return {t for t, p in pts.items()
            if not any(all(a <= b for a, b in zip(q, p)) and any(a < b for a, b in zip(q, p))
                       for u, q in pts.items() if u != t)}


@pytest.mark.parametrize("objs", [OBJS, ["accuracy", "macs"], ["agreement", "params"]])
def test_front_equals_brute_force(small_run, objs):
    view = open_run(small_run)
    front = pareto_front(view.trials, objs)
    assert set(front["trial"]) == brute_front(view.trials, objs)
    assert len(front) >= 1


def test_plot_data_holds_exactly_the_priced_trials(small_run, tmp_path):
    view = open_run(small_run)
    front = pareto_front(view.trials, OBJS)
    knee = knee_point(front, OBJS)
    data = plot_data(view.trials, front, OBJS, view.attrs, knee)
    priced = view.trials[view.trials["macs"].notna() & (view.trials["state"] == "COMPLETE")]
    assert sorted(data["trial"]) == sorted(priced["trial"])
    assert set(data.loc[data["kind"] == "front", "trial"]) == set(front["trial"])
    assert data["recommended"].sum() == 1 and int(data.loc[data["recommended"], "trial"].iloc[0]) == knee
    infeasible = data[data["kind"] == "infeasible"]
    assert (infeasible["y"] == 0).all()
    f = data[data["kind"] == "front"].sort_values("x")
    assert (np.diff(f["step_y"].to_numpy()) >= 0).all()
    assert data.attrs["bound_x"] == view.attrs["bounds"]["macs"]
    assert data.attrs["teacher_x"] == view.attrs["teacher"]["macs"]

    png = draw_png(data, tmp_path / "p.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = draw_html(data, tmp_path / "p.html").read_text()

    class Points(HTMLParser):
        def __init__(self):
            super().__init__()
            self.trials, self.scripts = [], []

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "circle" and a.get("class") == "pt":
                self.trials.append(int(a["data-trial"]))
            if tag == "script" and a.get("src"):
                self.scripts.append(a["src"])

    p = Points()
    p.feed(html)
    assert sorted(p.trials) == sorted(data["trial"])
    assert p.scripts == []  # self-contained: no external script
    assert not re.search(r"(src|href)=\"https?://", html)
    payload = json.loads(re.search(r'<script type="application/json" id="points">(.*?)</script>',
                                   html, re.S).group(1))
    assert sorted(x["trial"] for x in payload) == sorted(data["trial"])
    assert all(x["arch"] for x in payload)


def test_knee_is_closest_to_ideal():
    front = pd.DataFrame({"trial": [0, 1, 2], "accuracy": [0.5, 0.8, 0.81],
                          "macs": [10.0, 100.0, 10000.0]})
    # log10 macs: 1, 2, 4 -> scaled 0, 1/3, 1; accuracy scaled (best=0): 1, 0.032, 0
    assert knee_point(front, ["accuracy", "macs"]) == 1
    assert knee_point(front.iloc[:1], ["accuracy", "macs"]) == 0
    assert knee_point(front.iloc[:0], ["accuracy", "macs"]) is None


def test_best_quality_is_the_most_accurate_then_the_cheapest():
    front = pd.DataFrame({"trial": [4, 5, 6, 7], "accuracy": [0.5, 0.81, 0.81, 0.8],
                          "macs": [10.0, 900.0, 300.0, 100.0]})
    assert best_quality(front, ["accuracy", "macs"]) == 6  # the tie at 0.81 goes to fewer MACs
    assert best_quality(front, ["macs", "accuracy"]) == 6  # objective order does not matter
    assert best_quality(front.iloc[:0], ["accuracy", "macs"]) is None


def test_within_rule_takes_the_cheapest_student_close_enough_to_the_best():
    front = pd.DataFrame({"trial": [0, 1, 2, 3], "accuracy": [0.70, 0.935, 0.946, 0.95],
                          "macs": [10.0, 100.0, 400.0, 1000.0], "params": [5.0, 50.0, 40.0, 90.0]})
    objs = ["accuracy", "macs", "params"]
    assert recommend(front, objs, "within:1") == 2  # 0.946 >= 0.95 - 0.01; 0.935 is not
    assert recommend(front, objs, "within:2") == 1
    assert recommend(front, objs, "within:0") == 3 == recommend(front, objs, "best")
    assert recommend(front, objs, "within:30") == 0
    assert recommend(front, objs, "knee") == knee_point(front, objs)
    assert recommend(front.iloc[:0], objs, "within:1") is None
    assert str(parse_rule("within:1.5")) == "within:1.5" and parse_rule("knee").kind == "knee"
    for bad in ("within", "within:-1", "near:1", "within:x", ""):
        with pytest.raises(ValueError, match="within:X"):
            parse_rule(bad)


def test_hypervolume_hand_values():
    assert hypervolume([[0.0, 0.0]]) == pytest.approx(1.0)
    assert hypervolume([[0.5, 0.5]]) == pytest.approx(0.25)
    # two boxes 0.5x0.8 and 0.8x0.5 overlapping in 0.5x0.5: 0.4 + 0.4 - 0.25
    assert hypervolume([[0.5, 0.2], [0.2, 0.5]]) == pytest.approx(0.55)
    assert hypervolume([[0.5, 0.5, 0.5]]) == pytest.approx(0.125)
    assert hypervolume([[0.5, 0.5, 0.5], [0.6, 0.6, 0.6]]) == pytest.approx(0.125)  # dominated
    assert hypervolume([[1.0, 0.0]]) == 0.0  # on the reference: nothing
    assert hypervolume(np.empty((0, 2))) == 0.0


@pytest.mark.parametrize("d", [2, 3, 4])
def test_hypervolume_matches_monte_carlo_and_optuna(d):
    rng = np.random.default_rng(d)
    pts = rng.uniform(0.05, 1.0, size=(12, d))
    exact = hypervolume(pts)
    samples = rng.uniform(0, 1, size=(200_000, d))
    dominated = np.zeros(len(samples), dtype=bool)
    for p in pts:
        dominated |= np.all(samples >= p, axis=1)
    assert exact == pytest.approx(dominated.mean(), abs=0.01)
    from optuna._hypervolume import compute_hypervolume

    assert exact == pytest.approx(compute_hypervolume(pts, np.ones(d)), rel=1e-9)


def test_normalised_points_of_feasible_students_lie_in_the_unit_cube(small_run):
    view = open_run(small_run)
    front = pareto_front(view.trials, OBJS)
    pts = normalise(front, OBJS, scales(OBJS, view.attrs))
    assert ((pts >= 0) & (pts <= 1)).all()
    assert 0 < front_hypervolume(front, OBJS, scales(OBJS, view.attrs)) < 1
