"""The default search, timed: total wall time, median time per trial, and the share of a
search's time that is not training (sampling, building, costing, storage, evaluation).

    python bench/default_search.py [--repeats 1]

Each repeat runs `nas-student search` defaults in a fresh results folder (the teacher comes
from the cache; its one-off training time is reported separately when the cache is cold).
Writes results/records/default_search.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import optuna

from nas_student.config import RunConfig
from nas_student.search import run_search
from nas_student.search.context import prepare


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default="results/records/default_search.md")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t = time.perf_counter()
    prepare(RunConfig(task="digits"))  # warm the teacher cache (trains it when cold)
    warm = time.perf_counter() - t
    runs = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            out = run_search(RunConfig(task="digits", results_dir=d))
            wall = time.perf_counter() - t0
            df = out.trials
            trained = df[df["feasible"] & df["duplicate_of"].isna()]
            train_s = float(trained["train_s"].sum())
            runs.append({
                "wall": wall, "trials": len(df), "complete": int((df["state"] == "COMPLETE").sum()),
                "front": len(out.front), "per_trial": statistics.median(df["duration_s"].dropna()),
                "per_trained": statistics.median(trained["duration_s"]),
                "train_s": train_s,
                "trained_overhead_share": float((trained["duration_s"] - trained["train_s"]).sum()
                                                / trained["duration_s"].sum()),
                "best": float(out.front["accuracy"].max()),
                "front_macs_max": float(out.front["macs_ratio"].max()),
                "front_params_max": float(out.front["params_ratio"].max()),
                "trust_s": out.trust.wall_s if out.trust else float("nan"),
                "trust_tau": out.trust.tau if out.trust else float("nan"),
            })
            print(runs[-1])
    cfg = RunConfig(task="digits")
    lines = [
        "# Default search: time and overhead",
        "",
        f"Command: `python bench/default_search.py --repeats {args.repeats}` (the same search as "
        "`nas-student search` with no options: digits, digits-cnn, TPE, 40 students, "
        f"{cfg.budget.describe()}, lr {cfg.budget.lr:g}; then the trust report: {cfg.search.trust.max_front} front + "
        f"{cfg.search.trust.off_front} off-front students re-trained for {cfg.search.trust.steps_factor:g}x the steps). 2-core CPU.",
        "",
        f"Teacher ready (from cache, or trained when cold) in {warm:.1f} s before the first run.",
        "",
        "| run | wall s (search + trust) | trust report s | trust share of wall | trust tau | trials (all) | complete | front | median s/trial | median s/trained trial | training s | not-training share of search | not-training share of trained trials | best val acc | max MACs ratio on front | max params ratio on front |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(f"| {i} | {x['wall']:.1f} | {x['trust_s']:.1f} | {x['trust_s'] / x['wall']:.0%} | {x['trust_tau']:.2f} | "
          f"{x['trials']} | {x['complete']} | {x['front']} | {x['per_trial']:.2f} | "
          f"{x['per_trained']:.2f} | {x['train_s']:.1f} | {1 - x['train_s'] / (x['wall'] - x['trust_s']):.1%} | "
          f"{100 * x['trained_overhead_share']:.1f}% | {x['best']:.4f} | {x['front_macs_max']:.4f} | "
          f"{x['front_params_max']:.4f} |" for i, x in enumerate(runs)),
        "",
        "\"Not-training share of wall\" counts everything in the search loop that is not the KD "
        "training steps: Optuna's sampling and SQLite writes, building, profiling (fvcore trace), "
        "evaluation on the validation split, saving weights, and the cheap trials (rejected by the "
        "space's rules or over the cost bounds) that are never trained.",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
