"""The Ray Tune backend on a local Ray cluster (``ray.cluster_utils.Cluster``): a worker node
killed mid-trial does not cost the search any of its asked trials and the search completes
across the nodes into the same artefacts (`pareto` reads them); a driver killed mid-search
resumes with no trial lost."""

import re
import signal
import subprocess
import sys
import threading

import optuna
import pytest
from typer.testing import CliRunner

from nas_student.cli import app
from nas_student.config import ExecutionSettings, RunConfig, SearchSettings
from nas_student.distill import ProxyRecipe
from nas_student.search import run_search
from nas_student.storage import load_study
from waiting import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    # a node removed is noticed in about a second, not Ray's default tens of seconds
    fast = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 300, "health_check_timeout_ms": 300,
            "health_check_failure_threshold": 3}
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, "_system_config": fast})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    yield c
    if ray.is_initialized():
        ray.shutdown()
    c.shutdown()


def _cfg(tmp_path, address, trials, run):
    return RunConfig(task="digits", run=run, results_dir=str(tmp_path), budget=ProxyRecipe(steps=20), device="cpu", space="digits-mlp",
                     search=SearchSettings(trials=trials, seed=0),
                     execution=ExecutionSettings(backend="ray", address=address))


def test_a_worker_node_killed_mid_trial_costs_no_trial(tmp_path, digits_task, cluster):
    node = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    run_dir, killed = tmp_path / "rk", {}

    def kill_when_busy() -> None:  # remove the node while one of its trials runs
        def busy() -> list:
            running = load_study(run_dir).get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            return [t for t in running if t.user_attrs.get("ray_node") == node.node_id]

        mine = wait_until(busy, 300)
        if mine:
            killed["trial"] = mine[0].number
            cluster.remove_node(node, allow_graceful=False)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    cfg = _cfg(tmp_path, cluster.address, 3, "rk").model_copy(
        update={"budget": ProxyRecipe(steps=1500)})  # long enough to be caught mid-trial
    out = run_search(cfg)
    killer.join()
    assert "trial" in killed, "the node was never caught running a trial"
    trials = out.study.trials
    assert sum(t.state.name == "COMPLETE" for t in trials) == 3
    assert not [t for t in trials if t.state.name == "RUNNING"]
    retried = trials[killed["trial"]]  # Tune ran it again elsewhere, on the same Optuna trial
    assert retried.state.name == "COMPLETE", retried.user_attrs
    assert retried.user_attrs["ray_nodes"][0] == node.node_id
    assert retried.user_attrs["ray_node"] != node.node_id, retried.user_attrs["ray_nodes"]
    # the search ran across the nodes and left the same artefacts as a local one: `pareto` reads them
    nodes = {n for t in trials for n in t.user_attrs.get("ray_nodes", [])}
    assert len(nodes) >= 2, nodes
    assert (tmp_path / "rk" / "trials.csv").exists() and (tmp_path / "rk" / "pareto.csv").exists()
    res = CliRunner().invoke(app, ["pareto", "rk", "--results-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert len(out.front) >= 1 and str(int(out.front["trial"].iloc[0])) in res.output


@pytest.mark.campaign  # 100-320 s: the same resume path as a killed local search (test_crash.py)
def test_the_driver_killed_mid_search_resumes_with_no_trial_lost(tmp_path, digits_task, cluster):
    """SIGKILL the Ray driver (the process that owns the study's trials) while trials run on the
    cluster; the same command resumes: the trials it was running fail as interrupted, the complete
    ones keep their values, and the study reaches its target."""
    cmd = [sys.executable, "-m", "nas_student.cli", "search", "--task", "digits", "--backend", "ray", "--address", cluster.address,
           "--no-trust", "--trials", "4", "--steps", "200", "--space", "digits-mlp", "--seed", "0",
           "--run", "rd", "--results-dir", str(tmp_path)]
    run_dir = tmp_path / "rd"
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        def mid_search() -> dict | None:
            trials = load_study(run_dir).get_trials(deepcopy=False)
            done = {t.number: t.values for t in trials if t.state.name == "COMPLETE"}
            return done if done and any(t.state.name == "RUNNING" for t in trials) else None

        before = wait_until(mid_search, 300, while_running=proc) or {}
        if before:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert before, f"never caught mid-search (exit {proc.poll()}): {(tmp_path / 'first.log').read_text()[-2000:]}"
    interrupted = [t.number for t in load_study(run_dir).trials if t.state.name == "RUNNING"]
    assert interrupted
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    trials = load_study(run_dir).trials
    assert sum(t.state.name == "COMPLETE" for t in trials) == 4
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    for n in interrupted:
        assert trials[n].state.name == "FAIL"
        reason = trials[n].user_attrs["fail_reason"]  # failed at once: killed in a trial, or in its claim
        assert re.fullmatch(r"interrupted: (worker \S+ died|the claiming process died before it recorded "
                            r"itself as the owner) \(process killed\)", reason), reason
    assert {n: trials[n].values for n in before} == before
    assert (run_dir / "pareto.csv").exists()
