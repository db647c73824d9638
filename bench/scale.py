"""Scaling out, measured here: trials per minute with 1 vs 2 workers on both backends, and
what Pareto-aware early stopping saves and loses.

    python bench/scale.py [--trials 12] [--steps 100] [--es-trials 20] [--es-steps 300]

* optuna backend: `nas-student search` alone, then with one `nas-student worker` beside it
  (SQLite in the run folder), each process on one torch thread;
* ray backend: Ray Tune on a local Ray, one CPU per trial, 1 then 2 concurrent trials;
* early stopping: the same search (same seed) without and with ``--early-stop``: proxy steps
  and training time spent, and the hypervolume of each front on the same scales.

Trials per minute are counted two ways: over the whole command (start-up included) and over
the trials themselves (first trial's start to last trial's end, from the study). Writes
results/records/scale.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch

from nas_student.config import ExecutionSettings, RunConfig, SearchSettings
from nas_student.distill import Recipe
from nas_student.results.hypervolume import front_hypervolume, scales
from nas_student.search import run_search
from nas_student.search.context import prepare
from nas_student.storage import load_study

CLI = [sys.executable, "-m", "nas_student.cli"]


def _rates(study: optuna.Study, wall: float) -> dict[str, float]:
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
    return {"complete": len(done), "wall_s": wall, "per_min_wall": 60 * len(done) / wall,
            "per_min_trials": 60 * len(done) / span,
            "workers": len({t.user_attrs.get("ray_node", t.user_attrs.get("worker")) for t in done})}


def optuna_workers(n: int, trials: int, steps: int, root: Path) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["--run", "b", "--results-dir", str(root), "--trials", str(trials), "--steps", str(steps),
            "--device", "cpu"]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(CLI + ["search", "--task", "digits", *args], stdout=subprocess.DEVNULL, env=env)]
    while n > 1 and not (root / "b" / "teacher_outputs.pt").exists():
        time.sleep(0.1)
    procs += [subprocess.Popen(CLI + ["worker", "b", "--results-dir", str(root)], stdout=subprocess.DEVNULL,
                               env=env) for _ in range(n - 1)]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("a search process failed")
    return _rates(load_study(root / "b"), time.perf_counter() - t0)


def ray_workers(n: int, trials: int, steps: int, root: Path) -> dict[str, float]:
    cfg = RunConfig(task="digits", run="b", results_dir=str(root), budget=Recipe(steps=steps), device="cpu",
                    search=SearchSettings(trials=trials),
                    execution=ExecutionSettings(backend="ray", max_concurrent=n, cpus_per_trial=1))
    t0 = time.perf_counter()
    out = run_search(cfg)
    return _rates(out.study, time.perf_counter() - t0)


def early_stopping(trials: int, steps: int, root: Path) -> dict[str, dict[str, float]]:
    res = {}
    for es in (False, True):
        cfg = RunConfig(task="digits", run=f"es{int(es)}", results_dir=str(root), budget=Recipe(steps=steps), device="cpu",
                        search=SearchSettings(trials=trials, early_stop=es))
        t0 = time.perf_counter()
        out = run_search(cfg)
        wall = time.perf_counter() - t0
        trained = [t for t in out.study.trials
                   if t.state.name == "COMPLETE" and t.user_attrs.get("feasible") and "duplicate_of" not in t.user_attrs]
        objs = list(cfg.search.objectives)
        res[f"es{int(es)}"] = {
            "wall_s": wall, "trained": len(trained),
            "stopped": sum("stopped_early" in t.user_attrs for t in trained),
            "steps": sum(t.user_attrs.get("stopped_early", steps) for t in trained),
            "train_s": sum(t.user_attrs["timing"]["train_s"] for t in trained),
            "front": len(out.front), "best": float(out.front["accuracy"].max()),
            "hv": front_hypervolume(out.front, objs, scales(objs, out.study.user_attrs)),
        }
        print(f"early_stop={es}", res[f"es{int(es)}"], flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--es-trials", type=int, default=20)
    ap.add_argument("--es-steps", type=int, default=300)
    ap.add_argument("--out", default="results/records/scale.md")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    prepare(RunConfig(task="digits", device="cpu"))  # warm the teacher cache
    load = os.getloadavg()
    rows = []
    for backend, fn in (("optuna", optuna_workers), ("ray", ray_workers)):
        for n in (1, 2):
            with tempfile.TemporaryDirectory() as d:
                r = fn(n, args.trials, args.steps, Path(d))
            print(backend, n, r, flush=True)
            rows.append((backend, n, r))
    with tempfile.TemporaryDirectory() as d:
        es = early_stopping(args.es_trials, args.es_steps, Path(d))
    load_after = os.getloadavg()
    a, b = es["es0"], es["es1"]
    lines = [
        "# Scaling out: workers and early stopping",
        "",
        f"Command: `python bench/scale.py --trials {args.trials} --steps {args.steps} "
        f"--es-trials {args.es_trials} --es-steps {args.es_steps}` on this 2-core machine "
        f"(load average {load[0]:.1f} before, {load_after[0]:.1f} after: the cores are shared with "
        "other jobs, so absolute rates are low and noisy; compare within a table). Default task "
        "(digits) and space (digits-cnn), CPU, one torch thread per trial.",
        "",
        "## Trials per minute, 1 vs 2 workers",
        "",
        "optuna: `search` alone, then `search` + one `worker` (SQLite in the run folder). ray: Ray "
        "Tune on a local Ray, 1 CPU per trial, `max_concurrent` 1 then 2. *whole command* counts "
        "start-up (Python, torch, the teacher, Ray); *trials only* runs from the first trial's "
        "start to the last one's end.",
        "",
        "| backend | workers | complete trials | wall s | trials/min (whole command) | trials/min (trials only) | processes or nodes seen |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, n, r in rows:
        lines.append(f"| {backend} | {n} | {r['complete']} | {r['wall_s']:.0f} | {r['per_min_wall']:.1f} | "
                     f"{r['per_min_trials']:.1f} | {r['workers']} |")
    saved_steps = 1 - b["steps"] / max(1, a["steps"])
    saved_s = 1 - b["train_s"] / max(1e-9, a["train_s"])
    lines += [
        "",
        "## Early stopping (Pareto-aware rungs at 1/4 and 1/2 of the proxy steps)",
        "",
        f"Same search (seed 0, {args.es_trials} trials, {args.es_steps} proxy steps) without and with "
        "`--early-stop`. The sampler sees the stopped students' rung accuracies, so the two runs "
        "propose different students after the first stop.",
        "",
        "| | trained students | stopped early | proxy steps | training s | wall s | front size | best acc | hypervolume |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in (("full proxy", a), ("early stop", b)):
        lines.append(f"| {name} | {r['trained']} | {r['stopped']} | {r['steps']} | {r['train_s']:.1f} | "
                     f"{r['wall_s']:.0f} | {r['front']} | {r['best']:.4f} | {r['hv']:.4f} |")
    lines += [
        "",
        f"Proxy steps saved: {100 * saved_steps:.0f}%; training time saved: {100 * saved_s:.0f}%; "
        f"hypervolume change: {b['hv'] - a['hv']:+.4f} ({100 * (b['hv'] - a['hv']) / a['hv']:+.1f}%).",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
