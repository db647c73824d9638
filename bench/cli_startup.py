"""How fast the CLI answers: `--help`, `spaces`, `init`, and one-line errors about a file or an
option, each a fresh process timed from start to exit (median of N runs, quiet machine).

    python bench/cli_startup.py --repeats 5

Writes results/records/cli_startup.md. Goal: under 1 s each (issue on speed).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 1.0


def commands(tmp: Path) -> dict[str, list[str]]:
    (tmp / "bad.yaml").write_text("budget: {stpes: 10}\n")
    return {
        "--help": ["--help"],
        "search --help": ["search", "--help"],
        "spaces": ["spaces"],
        "init": ["init", str(tmp / "run.yaml"), "--force"],
        "bad run file (unknown key)": ["search", "--config", str(tmp / "bad.yaml")],
        "missing run file": ["search", "--config", str(tmp / "missing.yaml")],
        "missing space file": ["search", "--space", str(tmp / "nope.yaml")],
        "bad option value": ["search", "--workers", "two"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    exe = shutil.which("nas-student") or ""
    base = [exe] if exe else [sys.executable, "-m", "nas_student.cli"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in commands(Path(tmp)).items():
            times, codes = [], set()
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                r = subprocess.run(base + argv, capture_output=True, text=True, cwd=tmp)
                times.append(time.perf_counter() - t0)
                codes.add(r.returncode)
            rows.append((name, statistics.median(times), min(times), max(times), sorted(codes)))
    lines = ["## CLI start-up: how fast each command answers", "",
             f"Reproduce: `python bench/cli_startup.py --repeats {args.repeats}` (a fresh process per run, "
             f"`{' '.join(Path(b).name for b in base)}`, timed start to exit; quiet machine). Goal: < {GOAL_S:.0f} s.", "",
             "| command | median s | min s | max s | exit code | under the goal |", "|---|---:|---:|---:|---|---|"]
    for name, med, lo, hi, codes in rows:
        lines.append(f"| `{name}` | {med:.2f} | {lo:.2f} | {hi:.2f} | {','.join(map(str, codes))} | "
                     f"{'yes' if med < GOAL_S else '**no**'} |")
    worst = max(r[1] for r in rows)
    lines += ["", f"Slowest median: {worst:.2f} s ({'every command under' if worst < GOAL_S else 'over'} the goal). "
              "Heavy libraries (torch, Optuna, pandas, Ray) are imported only by the commands that use them, "
              "after the arguments and files are checked.", ""]
    out = ROOT / "results" / "records" / "cli_startup.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
