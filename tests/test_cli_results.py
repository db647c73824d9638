import json
import re
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from nas_student.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [*map(str, args)], env={"COLUMNS": "160"})


@pytest.fixture()
def run_copy(small_run, tmp_path):
    dst = tmp_path / small_run.name
    shutil.copytree(small_run, dst)
    return dst


def test_on_an_80_column_terminal_the_front_keeps_every_architecture_whole(run_copy, monkeypatch):
    from nas_student.cli import out
    from nas_student.families.base import describe

    monkeypatch.setattr(out, "width", 80)
    r = invoke("pareto", run_copy)
    assert r.exit_code == 0, r.output
    table = r.output[:r.output.index("Recommended")]  # the sentences below wrap softly (paths stay whole)
    assert max(map(len, table.splitlines())) <= 80
    flat = "".join(table.split())  # folded cells read on, line after line
    for arch in pd.read_csv(run_copy / "pareto.csv")["arch"]:
        assert "".join(describe(json.loads(arch)).split()) in flat


def test_a_front_over_other_objectives_keeps_the_searchs_files(run_copy):
    assert invoke("pareto", run_copy).exit_code == 0
    own = (run_copy / "pareto.csv").read_text()
    r = invoke("pareto", run_copy, "--objectives", "accuracy,latency_ms")  # never measured in this run
    assert r.exit_code == 2 and "has no latency_ms values" in r.output, r.output
    r = invoke("compare", run_copy, run_copy, "--objectives", "accuracy,latency_ms")
    assert r.exit_code == 2 and "has no latency_ms values" in r.output, r.output
    r = invoke("pareto", run_copy, "--objectives", "accuracy,params")
    assert r.exit_code == 0, r.output
    assert (run_copy / "pareto.csv").read_text() == own
    view = pd.read_csv(run_copy / "pareto-accuracy-params.csv")
    unwrapped = r.output.replace("\n", "")  # a long temporary path may wrap even at 160 columns
    assert (run_copy / "pareto-accuracy-params.png").exists() and f"{run_copy / 'pareto-accuracy-params.csv'}" in unwrapped
    trained = pd.read_csv(run_copy / "trials.csv").query("feasible")
    # the 2-objective front: no trained student has both more accuracy and fewer params than one on it
    for _, f in view.iterrows():
        assert not ((trained["accuracy"] >= f["accuracy"]) & (trained["params"] <= f["params"])
                    & ((trained["accuracy"] > f["accuracy"]) | (trained["params"] < f["params"]))).any()


def test_pareto_prints_knee_and_writes_files(run_copy):
    r = invoke("pareto", run_copy)
    assert r.exit_code == 0, r.output
    assert "Pareto front" in r.output and "Recommended (*): trial" in r.output
    front = pd.read_csv(run_copy / "pareto.csv")
    best = int(front.sort_values(["accuracy", "macs"], ascending=[False, True])["trial"].iloc[0])
    knee = int(re.search(r"Recommended \(\*\): trial (\d+)", r.output)[1])
    assert (f"Best accuracy within the bounds: trial {best} " in r.output) == (best != knee)
    assert "Hypervolume" in r.output
    for name in ("pareto.csv", "pareto.parquet", "pareto.png", "pareto.html", "trials.csv"):
        assert (run_copy / name).stat().st_size > 0
    front = pd.read_parquet(run_copy / "pareto.parquet")
    assert front["recommended"].sum() == 1
    assert pd.read_csv(run_copy / "pareto.csv")["trial"].tolist() == front["trial"].tolist()


def test_pareto_recommends_by_the_stated_rule(run_copy):
    r = invoke("pareto", run_copy, "--recommend", "within:1")  # the cheapest within 1 point of the best
    assert r.exit_code == 0 and "within 1 point of the front's best accuracy" in r.output
    front = pd.read_csv(run_copy / "pareto.csv")
    chosen = front[front["recommended"]].iloc[0]
    close = front[front["accuracy"] >= front["accuracy"].max() - 0.01]
    assert chosen["trial"] == close.sort_values("macs")["trial"].iloc[0]
    assert "keep the run's own rule, best" in r.output
    r = invoke("pareto", run_copy)  # the default rule: the best accuracy on the front
    assert r.exit_code == 0 and "the best accuracy on the front" in r.output
    best = pd.read_csv(run_copy / "pareto.csv")
    assert best.loc[best["recommended"], "accuracy"].iloc[0] == front["accuracy"].max()
    r = invoke("pareto", run_copy, "--recommend", "closest")
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "within:X" in r.output


def test_pareto_by_run_name_and_objectives(run_copy):
    r = invoke("pareto", run_copy.name, "--results-dir", run_copy.parent, "--objectives", "accuracy,macs")
    assert r.exit_code == 0, r.output
    assert "(accuracy, macs)" in r.output
    r = invoke("pareto", run_copy, "--objectives", "accuracy,speed")
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1


def test_pareto_on_a_running_study(run_copy):
    from nas_student.search.study import load_study

    load_study(run_copy).ask()  # a trial left RUNNING, as while a search is going on
    r = invoke("pareto", run_copy)
    assert r.exit_code == 0, r.output
    assert "1 running" in r.output


def test_show_prints_layers_costs_metrics(small_run):
    trials = pd.read_csv(small_run / "trials.csv")
    n = int(trials[trials["feasible"]]["trial"].iloc[0])
    r = invoke("show", small_run, "--trial", n)
    assert r.exit_code == 0, r.output
    for text in (f"Trial {n}", "Layers", "Conv2d", "Linear", "total", "Costs:", "Metrics (val)", "Pareto"):
        assert text in r.output


def test_without_a_trial_show_and_export_take_the_knee_and_say_so(run_copy, tmp_path):
    small_run = run_copy
    assert invoke("pareto", small_run).exit_code == 0  # writes pareto.csv with its knee column
    front = pd.read_csv(small_run / "pareto.csv")
    knee = int(front.loc[front["recommended"], "trial"].iloc[0])
    r = invoke("show", small_run)
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"Trial {knee}: the front's recommended student") and f"Trial {knee} of" in r.output
    r = invoke("cost", small_run)
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"Trial {knee}: the front's recommended student") and f"trial {knee}" in r.output
    r = invoke("export", small_run, "--out", tmp_path / "b")
    assert r.exit_code == 0, r.output
    assert f"Exported trial {knee} to" in r.output
    assert json.loads((tmp_path / "b" / "arch.json").read_text())["arch"] == json.loads(
        front.loc[front["recommended"], "arch"].iloc[0])


@pytest.mark.parametrize("cmd", ["show", "export"])
def test_bad_trial_number_is_one_line_exit_2(small_run, tmp_path, cmd):
    args = [cmd, small_run, "--trial", 999] + (["--out", tmp_path / "b"] if cmd == "export" else [])
    r = invoke(*args)
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [r.output.strip()] and "no trial 999" in r.output


def test_export_command(small_run, tmp_path):
    front = pd.read_csv(small_run / "pareto.csv")
    n = int(front["trial"].iloc[0])
    r = invoke("export", small_run, "--trial", n, "--out", tmp_path / "b")
    assert r.exit_code == 0, r.output
    assert "Exported trial" in r.output and "ONNX" in r.output
    assert json.loads((tmp_path / "b" / "arch.json").read_text())["io"]["num_outputs"] == 10


def test_export_of_untrained_trial_is_one_line_exit_2(small_run, tmp_path):
    trials = pd.read_csv(small_run / "trials.csv")
    bad = trials[~trials["feasible"]]
    assert not bad.empty, "the seeded small run always has an untrained trial"
    r = invoke("export", small_run, "--trial", int(bad["trial"].iloc[0]), "--out", tmp_path / "b")
    assert r.exit_code == 2 and "not trained" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_compare(small_run, small_run_b):
    r = invoke("compare", small_run, small_run_b)
    assert r.exit_code == 0, r.output
    assert "hypervolume" in r.output and "Hypervolume:" in r.output
    assert small_run.name in r.output and small_run_b.name in r.output
    r = invoke("compare", small_run, small_run)
    assert "equal hypervolumes" in r.output
