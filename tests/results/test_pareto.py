from pathlib import Path

import numpy as np
import pandas as pd

from nas_student.results import non_dominated, pareto_front


def brute_force(points):
    keep = []
    for i, p in enumerate(points):
        dominated = any(all(q[k] <= p[k] for k in range(len(p))) and any(q[k] < p[k] for k in range(len(p)))
                        for j, q in enumerate(points) if j != i)
        keep.append(not dominated)
    return np.array(keep)


def test_non_dominated_equals_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        pts = rng.integers(0, 6, size=(40, 3)).astype(float)
        assert (non_dominated(pts) == brute_force(pts.tolist())).all()


def test_front_keeps_only_feasible_unique_trained_students():
    df = pd.DataFrame({
        "trial": [0, 1, 2, 3, 4],
        "feasible": [True, True, False, True, True],
        "accuracy": [0.9, 0.8, 0.99, 0.95, 0.9],
        "macs": [100, 50, 10, 200, 100],
        "params": [10, 5, 1, 20, 10],
        "duplicate_of": pd.array([pd.NA, pd.NA, pd.NA, pd.NA, 0], dtype="Int64"),
    })
    front = pareto_front(df, ["accuracy", "macs", "params"])
    assert front["trial"].tolist() == [1, 0, 3]  # trial 2 infeasible, trial 4 a repeat


def test_a_run_without_a_stored_interface_falls_back_to_its_builtin_task():
    """Runs made before the study stored ``io`` read their models' interface from the task
    (this once recursed forever)."""
    from nas_student.results.runs import RunView, run_io
    from nas_student.tasks import task_io

    view = RunView(run_dir=Path("."), study=None, attrs={"config": {"task": "mnist1d"}}, trials=None)
    assert run_io(view) == task_io("mnist1d")
    stored = {"input_shape": [3, 5], "num_outputs": 4}
    assert run_io(RunView(Path("."), None, {"io": stored, "config": {"task": "digits"}}, None)).input_shape == (3, 5)
