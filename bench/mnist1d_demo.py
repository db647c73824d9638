"""The mnist1d task end to end, as a user runs it: the default demo (`nas-student search`, no
options) timed with a cold cache (data generated, teacher trained) and again with the teacher
cached; then `nas-student search --task mnist1d --space mnist1d-mixed --trials 30`.

    python bench/mnist1d_demo.py [--skip-cold]

Each search runs as its own process in a fresh results folder, alone on the machine. Writes
results/records/mnist1d.md (both fronts, the teacher, the best proxy accuracy per family within
the bounds, wall times).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

MIXED = ["--task", "mnist1d", "--space", "mnist1d-mixed", "--trials", "30"]


def run(args: list[str], results: Path, cache: Path) -> tuple[float, str]:
    env = {**os.environ, "NAS_STUDENT_CACHE": str(cache), "COLUMNS": "220"}
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "nas_student.cli", "search", *args, "--results-dir", str(results)],
                       capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"search {args} failed:\n{p.stdout}\n{p.stderr}")
    return wall, p.stdout


def front_table(run_dir: Path) -> list[str]:
    from nas_student.families.base import describe

    front = pd.read_csv(run_dir / "pareto.csv").sort_values("macs")
    lines = ["| trial | val acc (proxy) | MACs | params | MACs % | params % | recommended | architecture |",
             "|---:|---:|---:|---:|---:|---:|:---:|---|"]
    for _, r in front.iterrows():
        lines.append(f"| {int(r['trial'])} | {r['accuracy']:.4f} | {int(r['macs']):,} | {int(r['params']):,} | "
                     f"{100 * r['macs_ratio']:.2f} | {100 * r['params_ratio']:.2f} | {'*' if r['recommended'] else ''} | "
                     f"`{describe(json.loads(r['arch']))}` |")
    return lines


def per_family(run_dir: Path) -> list[str]:
    trials = pd.read_csv(run_dir / "trials.csv")
    done = trials[(trials["state"] == "COMPLETE") & trials["feasible"].astype(bool) & trials["accuracy"].notna()]
    done = done.assign(family=[json.loads(a)["family"] for a in done["arch"]])
    lines = ["| family | students trained | best proxy val acc within the bounds | its MACs % | its params % |",
             "|---|---:|---:|---:|---:|"]
    for fam, g in done.groupby("family"):
        best = g.loc[g["accuracy"].idxmax()]
        lines.append(f"| {fam} | {len(g)} | {best['accuracy']:.4f} | {100 * best['macs_ratio']:.2f} | "
                     f"{100 * best['params_ratio']:.2f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-cold", action="store_true", help="reuse $NAS_STUDENT_CACHE (no cold run)")
    ap.add_argument("--out", default="results/records/mnist1d.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_p = Path(tmp)
        cache = Path(os.environ["NAS_STUDENT_CACHE"]) if args.skip_cold else tmp_p / "cache"
        cold = None
        if not args.skip_cold:
            cold, _ = run([], tmp_p / "cold", cache)
        warm, demo_out = run([], tmp_p / "warm", cache)
        mixed_wall, mixed_out = run(MIXED, tmp_p / "mixed", cache)
        demo_dir, mixed_dir = tmp_p / "warm" / "mnist1d-mnist1d-cnn-s0", tmp_p / "mixed" / "mnist1d-mnist1d-mixed-s0"
        teacher_line = next(x for x in demo_out.splitlines() if x.startswith("Teacher:"))
        trust = {n: json.loads((d / "trust.json").read_text()) for n, d in (("demo", demo_dir), ("mixed", mixed_dir))}
        lines = [
            "# mnist1d: the default demo and the mixed-family space",
            "",
            "Command: `python bench/mnist1d_demo.py` (2-core CPU, nothing else running). Each search is "
            "`nas-student search` in a fresh process and results folder; defaults otherwise (TPE, seed 0, "
            "150 KD steps per student, bounds 1/10 of the teacher's MACs and params, trust report on).",
            "",
            f"Teacher: {teacher_line.removeprefix('Teacher: ').split(' (cache')[0]}. Task: MNIST-1D generated "
            "by the `mnist1d` package (20,000 signals: 14,000 train, 2,000 validation, 4,000 test).",
            "",
            "## Wall time of the default demo (`./dev search` = `nas-student search`: mnist1d, mnist1d-cnn, 40 students)",
            "",
            "| cache | wall s (data + teacher + search + trust report) |",
            "|---|---:|",
            *([f"| cold (data generated, teacher trained) | {cold:.1f} |"] if cold is not None else []),
            f"| teacher cached | {warm:.1f} |",
            "",
            f"Trust report: Kendall tau {trust['demo']['tau']:.2f} ({trust['demo']['verdict']}).",
            "",
            "### Its Pareto front (proxy accuracy on the validation split)",
            "",
            *front_table(demo_dir),
            "",
            f"## `nas-student search {' '.join(MIXED)}` ({mixed_wall:.1f} s, teacher cached)",
            "",
            *per_family(mixed_dir),
            "",
            f"Trust report: Kendall tau {trust['mixed']['tau']:.2f} ({trust['mixed']['verdict']}).",
            "",
            "### Its Pareto front",
            "",
            *front_table(mixed_dir),
            "",
        ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
