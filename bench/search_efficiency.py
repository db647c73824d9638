"""Search efficiency: hypervolume of the front vs trials, per sampler, several seeds.

Runs the real search (``run_search``: digits, digits-cnn, objectives accuracy/MACs/params,
the default bounds) with each sampler (TPE, the default; NSGA-II, population 10; random;
optionally TPE after the training-free first stage) for the same number of trials and proxy
steps, seeds 0..N-1, with the trust report off. Each run is a resumable study under
``--runs``, so a crash loses at most one trial. Then, from each study, the normalised
hypervolume (``nas_student.results.hypervolume``) of the front of the first t complete trials,
for every t. Writes results/records/search_efficiency.md.

    python bench/search_efficiency.py --seeds 3 --trials 40 --steps 100
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from nas_student.config import RunConfig
from nas_student.results import pareto_front, trials_frame
from nas_student.results.hypervolume import front_hypervolume, scales
from nas_student.search import run_search
from nas_student.search.study import load_study

# arm -> (sampler, training-free first stage, Pareto-aware early stopping at the rungs)
ARMS = {"tpe": ("tpe", False, False), "nsga2": ("nsga2", False, False), "random": ("random", False, False),
        "tpe+prescreen": ("tpe", True, False), "tpe+early": ("tpe", False, True)}
OBJ = ("accuracy", "macs", "params")


def run_name(arm: str, seed: int) -> str:
    return f"{arm.replace('+', '_')}-s{seed}"


def config(arm: str, seed: int, args) -> RunConfig:
    sampler, pre, early = ARMS[arm]
    return RunConfig(task=args.task, space=args.space, run=run_name(arm, seed), results_dir=args.runs, device="cpu",
                     budget={"steps": args.steps, "lr": args.lr, "temperature": args.temperature},
                     search={"trials": args.trials, "seed": seed, "sampler": sampler, "objectives": OBJ,
                             "trust": {"enabled": False}, "prescreen": {"enabled": pre}, "early_stop": early},
                     execution={"workers": 1})  # one process: each run reproducible, arms comparable


def curve(run_dir: Path, steps: int) -> tuple[list[float], float, dict[str, float]]:
    """Hypervolume after each complete trial (in trial order), the trials' time (sum of
    durations), and what the run trained: proxy steps, students stopped early, training
    seconds, the best proxy accuracy."""
    study = load_study(run_dir)
    frame = trials_frame(study)
    done = frame[frame["state"] == "COMPLETE"].sort_values("trial")
    sc = scales(OBJ, study.user_attrs)
    hv = [front_hypervolume(pareto_front(done.iloc[: t + 1], OBJ), OBJ, sc) for t in range(len(done))]
    trained = done[done["feasible"].astype(bool) & done["duplicate_of"].isna()]
    stopped = trained["stopped_early"].dropna() if "stopped_early" in trained else trained.iloc[:0]["trial"]
    spent = {"steps": float((len(trained) - len(stopped)) * steps + stopped.sum()), "stopped": float(len(stopped)),
             "train_s": float(trained["train_s"].sum()), "best": float(trained["accuracy"].max())}
    return hv, float(frame["duration_s"].sum()), spent


def first_reaching(hv: list[float], level: float) -> int | None:
    return next((t + 1 for t, v in enumerate(hv) if v >= level), None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--steps", type=int, default=100)
    # the proxy recipe of the recorded runs (made before the proxy's defaults became lr 0.01, T 1)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--arms", default="tpe,nsga2,random,tpe+prescreen", help=f"of {', '.join(ARMS)}")
    ap.add_argument("--task", default="digits")
    ap.add_argument("--space", default="digits-cnn")
    ap.add_argument("--runs", default="/tmp/nas_student_bench/search_efficiency")
    ap.add_argument("--out", default="results/records/search_efficiency.md")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    arms = args.arms.split(",")
    t0 = time.perf_counter()
    if not args.report_only:
        for seed in range(args.seeds):
            for arm in arms:
                t = time.perf_counter()
                out = run_search(config(arm, seed, args))
                print(f"{arm} seed {seed}: {len(out.front)} on the front ({time.perf_counter() - t:.0f} s)", flush=True)
    curves = {(a, s): curve(Path(args.runs) / run_name(a, s), args.steps) for a in arms for s in range(args.seeds)
              if (Path(args.runs) / run_name(a, s) / "study.db").exists()}
    curves = {k: v for k, v in curves.items() if v[0]}  # runs with at least one complete trial
    seeds = {a: [s for s in range(args.seeds) if (a, s) in curves] for a in arms}
    best = max(max(hv) for hv, *_ in curves.values())
    checkpoints = [t for t in (10, 20, 30, 40, 60, 80) if t <= args.trials]
    lines = [
        "# Search efficiency: hypervolume vs trials",
        "",
        (f"Command: `python bench/search_efficiency.py {' '.join(sys.argv[1:])}` "
        f"({(time.perf_counter() - t0) / 60:.0f} min for this invocation; finished runs are reused)."),
        "",
        (f"{args.task} / {args.space}, objectives {', '.join(OBJ)}, default bounds (<= 1/10 of the teacher's MACs "
        f"and params), {args.trials} complete trials per run, {args.steps} KD steps per student "
        f"(lr {args.lr:g}, T = {args.temperature:g}), "
        f"seeds 0..{args.seeds - 1} (the seed also fixes the data split), trust report off. Hypervolume: "
        "normalised ([0, 1]^3, reference = a student that is always wrong, at the bounds; 1.0 = a free, "
        f"perfect student). Best hypervolume found by any run: {best:.4f}."),
        "",
        "| sampler | seeds | complete trials per seed | " + " | ".join(f"HV @ {t} (median of seeds)" for t in checkpoints)
        + " | final HV per seed | trials to 95% of best (per seed) | median search s | proxy steps per seed "
        "(stopped early) | training s per seed | best proxy accuracy per seed |",
        "|---|---|---|" + "---:|" * (len(checkpoints) + 6),
    ]
    for a in arms:
        hvs = [curves[(a, s)][0] for s in seeds[a]]
        if not hvs:
            continue
        at = [statistics.median(h[min(t, len(h)) - 1] for h in hvs) for t in checkpoints]
        reach = [first_reaching(h, 0.95 * best) for h in hvs]
        lines.append(f"| {a} | {', '.join(map(str, seeds[a]))} | {', '.join(str(len(h)) for h in hvs)} | "
                     + " | ".join(f"{v:.4f}" for v in at) + " | "
                     + ", ".join(f"{h[-1]:.4f}" for h in hvs) + " | "
                     + ", ".join(str(r) if r else f">{args.trials}" for r in reach) + " | "
                     + f"{statistics.median(curves[(a, s)][1] for s in seeds[a]):.0f} | "
                     + ", ".join(f"{curves[(a, s)][2]['steps']:.0f} ({curves[(a, s)][2]['stopped']:.0f})" for s in seeds[a]) + " | "
                     + ", ".join(f"{curves[(a, s)][2]['train_s']:.0f}" for s in seeds[a]) + " | "
                     + ", ".join(f"{curves[(a, s)][2]['best']:.4f}" for s in seeds[a]) + " |")
    if "tpe" in arms and "random" in arms:
        both = [s for s in seeds["tpe"] if s in seeds["random"]]
        n = {s: min(len(curves[("tpe", s)][0]), len(curves[("random", s)][0])) for s in both}  # equal budgets
        diff = [curves[("tpe", s)][0][n[s] - 1] - curves[("random", s)][0][n[s] - 1] for s in both]
        auc = [np.mean(curves[("tpe", s)][0][: n[s]]) - np.mean(curves[("random", s)][0][: n[s]]) for s in both]
        lines += ["", (f"TPE minus random at equal trials ({', '.join(str(n[s]) for s in both)} per seed), "
                  f"final hypervolume per seed: {', '.join(f'{d:+.4f}' for d in diff)} "
                  f"(mean {statistics.mean(diff):+.4f}); mean hypervolume over the whole run (area under the "
                  f"curve / trials): {', '.join(f'{d:+.4f}' for d in auc)} (mean {statistics.mean(auc):+.4f}).")]
    lines += ["", "Hypervolume after t complete trials, median over seeds:", "",
              "| t | " + " | ".join(arms) + " |", "|---:|" + "---:|" * len(arms)]
    for t in range(1, args.trials + 1):
        if t in (1, 2, 5) or t % 5 == 0:
            lines.append(f"| {t} | " + " | ".join(
                f"{statistics.median(curves[(a, s)][0][min(t, len(curves[(a, s)][0])) - 1] for s in seeds[a]):.4f}"
                if seeds[a] else "-" for a in arms) + " |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
