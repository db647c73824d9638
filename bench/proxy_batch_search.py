"""A better proxy or more trials, in the same time? Real searches, the recommended student
fully trained.

Section 10 of results/BENCHMARKS.md measured that a proxy at batch 256 ranks students closer
to full training than the default (batch 64) at 2.45x its training time, and that over uniform
draws the default judging 2.5x as many students still finds the better front. A TPE search
concentrates its trials, so this asks it for real: per seed, the default search with
``--trials`` (e.g. 100) against ``--batch-size 256`` with ``--trials-b256`` (e.g. 40, about the
same wall time), both default otherwise (two processes, focus best, trust report off). Each
arm's recommended student (``--recommend best``) is then distilled fully with full training's
recipe (``Recipe`` defaults: 3000 steps, batch 64, whatever the proxy's batch), ``--full-seeds``
init seeds, scored on the task's test split. Searches are timed alone, one after another; the
full training runs in two lanes of one thread each. Resumable: a finished search or training
is reused.

``--other layers60`` puts 60 steps per layer of each student (``--steps 120 --depth-power 1``:
steps in proportion to its depth) in place of batch 256, ``--other sqrtdepth`` 150 x sqrt(depth
/ 2) (106 x the square root of its depth), ``--other equal`` every student 150 steps (the
default, ``--depth-power 0``), ``--other s50`` / ``s100`` a shorter proxy (``--steps 50`` /
``100``), with ``--trials-other`` trials.

    python bench/proxy_batch_search.py --seeds 0 1 2 --trials 100 --trials-b256 40
    python bench/proxy_batch_search.py --seeds 0 1 2 --trials 100 --other layers60 --trials-other 100 \\
        --work /tmp/nas_student_bench/proxy_layers_search --out results/records/proxy_layers_search.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
#: the arm set against the default: its search options and its name in the report
OTHERS = {"b256": (["--batch-size", "256"], "batch 256"),
          "layers60": (["--steps", "120", "--depth-power", "1"], "60 steps per layer"),
          "sqrtdepth": (["--depth-power", "0.5"], "106 x sqrt(depth) steps"),
          "equal": (["--depth-power", "0"], "150 steps for every student"),
          "s50": (["--steps", "50"], "50 steps (x sqrt(depth / 2))"),
          "s100": (["--steps", "100"], "100 steps (x sqrt(depth / 2))")}


def cli(*args: str, log: Path, threads: int | None = None) -> float:
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    t = time.perf_counter()
    with log.open("w") as f:
        subprocess.run([sys.executable, "-m", "nas_student.cli", *args], stdout=f, stderr=subprocess.STDOUT,
                       env=env, check=True, cwd=ROOT)
    return time.perf_counter() - t


def search(arm: str, seed: int, trials: int, work: Path) -> dict:
    run = f"{arm}-s{seed}"
    timing = work / f"{run}.time.json"
    if not timing.exists():
        extra = OTHERS[arm][0] if arm in OTHERS else []
        wall = cli("search", "--task", "mnist1d", "--seed", str(seed), "--trials", str(trials), "--no-trust",
                   "--run", run, "--results-dir", str(work), *extra, log=work / f"{run}.log")
        timing.write_text(json.dumps({"wall_s": wall}))
    d = pd.read_csv(work / run / "trials.csv")
    return {"arm": arm, "seed": seed, "run": run, "trials": trials,
            "wall_s": json.loads(timing.read_text())["wall_s"],
            "scored": int(d["accuracy"].notna().sum()) if "accuracy" in d else None}


def full(run: str, work: Path, seeds: int, recipe: Path) -> dict:
    out = work / f"full-{run}"
    if not (out / "report.json").exists():
        cli("train", run, "--results-dir", str(work), "--recipe", str(recipe), "--seeds", str(seeds),
            "--no-baseline", "--out", str(out), log=work / f"full-{run}.log", threads=1)
    return json.loads((out / "report.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--trials", type=int, default=100, help="the default search's trials")
    ap.add_argument("--other", choices=sorted(OTHERS), default="b256", help="the arm set against the default")
    ap.add_argument("--trials-other", "--trials-b256", dest="trials_other", type=int, default=40,
                    help="the other arm's trials")
    ap.add_argument("--full-seeds", type=int, default=3)
    ap.add_argument("--work", default="/tmp/nas_student_bench/proxy_batch_search")
    ap.add_argument("--out", default=str(ROOT / "results" / "records" / "proxy_batch_search.md"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    recipe = work / "full_recipe.yaml"
    recipe.write_text("steps: 3000\nbatch_size: 64\n")  # Recipe's defaults otherwise: lr 3e-3, T = 4
    rows = [search(arm, s, n, work) for s in args.seeds
            for arm, n in (("default", args.trials), (args.other, args.trials_other))]
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda r: full(r["run"], work, args.full_seeds, recipe), rows))
    for r, rep in zip(rows, reports):
        r["report"] = rep
    write(rows, args)


def write(rows: list[dict], args) -> None:
    other, name = args.other, OTHERS[args.other][1]
    opts = "--trials-b256" if other == "b256" else f"--other {other} --trials-other"
    lines = ["# A better proxy or more trials, in the same time", "",
             f"Command: `python bench/proxy_batch_search.py --seeds {' '.join(map(str, args.seeds))} --trials "
             f"{args.trials} {opts} {args.trials_other} --full-seeds {args.full_seeds}"
             + (f" --work {args.work} --out {args.out}" if other != "b256" else "") + "`", "",
             f"Per seed: the default search and `{' '.join(OTHERS[other][0])}`, mnist1d, two processes, trust report "
             "off, searches timed alone; each run's recommended student distilled fully (3000 steps, batch 64, "
             f"T = 4), {args.full_seeds} init seeds, on the task's test split (mean, sd over the init seeds).", "",
             "| arm | seed | trials | with an accuracy (trained or repeats) | search wall s | recommended student: "
             "MACs % / params % of teacher | full KD accuracy |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rep, acc = r["report"], r["report"]["kd"]["accuracy"]
        lines.append(f"| {r['arm']} | {r['seed']} | {r['trials']} | {r['scored']} | {r['wall_s']:.1f} | "
                     f"{100 * rep['macs_ratio']:.2f} / {100 * rep['params_ratio']:.2f} | "
                     f"{acc['mean']:.4f} ± {acc['sd']:.4f} |")
    by = {a: [r for r in rows if r["arm"] == a] for a in ("default", other)}
    med = lambda a, f: statistics.median(f(r) for r in by[a])  # noqa: E731
    diff = [b["report"]["kd"]["accuracy"]["mean"] - d["report"]["kd"]["accuracy"]["mean"]
            for d, b in zip(by["default"], by[other])]
    wall = {a: med(a, lambda r: r["wall_s"]) for a in by}
    acc = {a: med(a, lambda r: r["report"]["kd"]["accuracy"]["mean"]) for a in by}
    lines += ["", f"- Search wall time, median: default {wall['default']:.1f} s, {name} {wall[other]:.1f} s.",
              f"- Recommended student fully trained, median: default {acc['default']:.4f}, {name} "
              f"{acc[other]:.4f}; {name} minus default per seed: {', '.join(f'{d:+.4f}' for d in diff)}."]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
