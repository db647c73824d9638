"""The same seeded search in fresh processes gives the same trials and the same Pareto front.

Two `nas-student search` processes run at once (each its own results folder, the teacher
from the session's cache, the seed-0 teacher of the ``digits_task`` fixture), then their
trials and fronts are compared: params, objective values, constraints, arch hashes, records.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

# no cost bounds: every sampled student is trained, so every trial's accuracy is compared
ARGS = ["search", "--task", "digits", "--trials", "6", "--steps", "30", "--seed", "0", "--run", "d",
        "--macs-ratio", "0", "--params-ratio", "0", "--no-trust", "--workers", "1"]  # one process: exact
FRONT_COLUMNS = ["trial", "accuracy", "macs", "params", "arch_hash"]
N_PROCESSES = 2  # bench/reliability_record.py compares three


def run_searches(folder: Path, n: int = N_PROCESSES, env: dict[str, str] | None = None) -> list[Path]:
    """Start ``n`` searches at once; return their run folders."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}  # 3 processes on few cores
    procs, dirs = [], []
    for i in range(n):
        results = folder / f"r{i}"
        dirs.append(results / "d")
        procs.append(subprocess.Popen(
            [sys.executable, "-c", "from nas_student.cli import main; main()", *ARGS,
             "--results-dir", str(results)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env))
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out[-2000:]
    return dirs


def trial_records(run_dir: Path) -> list[dict]:
    """Every trial: state, params, values, arch hash, and the recorded metrics (not timings)."""
    study = optuna.load_study(study_name="d", storage=f"sqlite:///{run_dir / 'study.db'}")
    out = []
    for t in study.get_trials():
        record = t.user_attrs.get("record", {})
        out.append({
            "number": t.number, "state": t.state.name, "params": t.params, "values": t.values,
            "arch_hash": t.user_attrs.get("arch_hash"), "constraints": t.system_attrs.get("constraints"),
            "record": {k: v for k, v in record.items() if not k.endswith("_s") and k != "latency_ms"
                       and k != "latency_ratio"},
        })
    return out


def differences(a: list[dict], b: list[dict]) -> list[str]:
    out = []
    if len(a) != len(b):
        out.append(f"{len(a)} vs {len(b)} trials")
    for x, y in zip(a, b):
        for key in x:
            if x[key] != y[key]:
                out.append(f"trial {x['number']}: {key} differs: {json.dumps(x[key], default=str)[:300]} "
                           f"vs {json.dumps(y[key], default=str)[:300]}")
    return out


def compare(dirs: list[Path]) -> list[str]:
    """Human-readable differences between the first run and each other one (empty: identical)."""
    problems = []
    ref_trials = trial_records(dirs[0])
    ref_front = pd.read_csv(dirs[0] / "pareto.csv")[FRONT_COLUMNS]
    for d in dirs[1:]:
        problems += [f"{d.parent.name}: {p}" for p in differences(ref_trials, trial_records(d))]
        front = pd.read_csv(d / "pareto.csv")[FRONT_COLUMNS]
        if not front.equals(ref_front):
            problems.append(f"{d.parent.name}: pareto.csv differs:\n{ref_front}\nvs\n{front}")
    return problems


def test_same_seed_same_trials_and_front_in_fresh_processes(tmp_path, digits_task):
    # digits_task: the seed-0 teacher is in the session's cache before the processes start
    dirs = run_searches(tmp_path)
    problems = compare(dirs)
    assert not problems, "\n".join(problems[:20])
    trials = trial_records(dirs[0])
    assert sum(t["state"] == "COMPLETE" for t in trials) == 6
    assert len(pd.read_csv(dirs[0] / "pareto.csv")) >= 1
