"""A 1,000-trial search: does the time that is not training grow with the trials?

    python bench/long_search.py [--trials 1000] [--steps 150] [--out results/records/long_search.md]

Runs `nas-student search --task digits --space digits-mlp --trials N --steps S --no-trust`
(the default sampler, TPE; one process, one torch thread; the digits teacher from the cache),
then reads the study. Per trial, in completion order: the wall time since the previous trial
completed (everything the search spent on it), its training time, and the rest split into
inside the trial (sampling, pricing, evaluation, saving weights) and between trials (claiming
the next one, the study's writes, progress). Windows of 100 trials give the share of wall time
that is not training; duplicates (an architecture already evaluated: its record is copied, not
trained) are counted apart, as they have no training at all. Also the study file's size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--work", default="/tmp/nas_student_bench/long_search")
    ap.add_argument("--out", default="results/records/long_search.md")
    args = ap.parse_args()
    work = Path(args.work)
    run_dir = work / "long"
    t0 = time.perf_counter()
    if not (run_dir / "trials.csv").exists() or args.trials > _finished(run_dir):
        cmd = [sys.executable, "-m", "nas_student.cli", "search", "--task", "digits", "--space", "digits-mlp",
               "--trials", str(args.trials), "--steps", str(args.steps), "--no-trust", "--seed", "0",
               "--run", "long", "--results-dir", str(work), "--device", "cpu"]
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    rows = _rows(run_dir)
    text = _report(rows, args, wall, (run_dir / "study.db").stat().st_size)
    Path(args.out).write_text(text)
    Path(args.out).with_suffix(".json").write_text(json.dumps(rows))
    print(text)


def _finished(run_dir: Path) -> int:
    import pandas as pd

    df = pd.read_csv(run_dir / "trials.csv")
    return int((df["state"] == "COMPLETE").sum())


def _rows(run_dir: Path) -> list[dict]:
    from nas_student.storage import load_study
    from nas_student.trial_record import TrialRecord

    trials = [t for t in load_study(run_dir).get_trials(deepcopy=False) if t.datetime_complete is not None]
    trials.sort(key=lambda t: t.datetime_complete)
    rows, prev = [], None
    for t in trials:
        r = TrialRecord.from_trial(t)
        timing = r.timing or {}
        gap = (t.datetime_complete - prev).total_seconds() if prev is not None else None
        prev = t.datetime_complete
        rows.append({"number": t.number, "state": t.state.name, "gap_s": gap,
                     "duration_s": t.duration.total_seconds() if t.duration else None,
                     "train_s": timing.get("train_s", 0.0), "sample_s": timing.get("sample_s"),
                     "cost_s": timing.get("cost_s"), "duplicate": r.duplicate_of is not None})
    return rows


def _report(rows: list[dict], args: argparse.Namespace, wall: float, db_bytes: int) -> str:
    lines = [f"## A {args.trials}-trial search: time that is not training, by trial", "",
             f"Reproduce: `python bench/long_search.py --trials {args.trials} --steps {args.steps}`: "
             f"`nas-student search --task digits --space digits-mlp --trials {args.trials} --steps {args.steps} "
             "--no-trust --seed 0` (TPE, focus best; one process, one torch thread). Windows of 100 trials in "
             "completion order. *wall*: time between one trial's completion and the next's (all the search "
             "spent on it); *not training*: wall minus the student's training. Trained trials only in the "
             "medians; duplicates (copied, not trained) and pruned samples counted apart.", "",
             "| trials | trained | duplicates | pruned | median wall s | median train s | median in-trial overhead s "
             "| median between trials s | not training, share of wall |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for start in range(0, len(rows), 100):
        win = [r for r in rows[start:start + 100] if r["gap_s"] is not None]
        trained = [r for r in win if r["state"] == "COMPLETE" and not r["duplicate"] and r["train_s"] > 0]
        if not win:
            continue
        share = 1 - sum(r["train_s"] for r in win) / sum(r["gap_s"] for r in win)
        med = (lambda k: statistics.median(r[k] for r in trained) if trained else float("nan"))
        inside = statistics.median(r["duration_s"] - r["train_s"] for r in trained) if trained else float("nan")
        between = statistics.median(r["gap_s"] - r["duration_s"] for r in trained) if trained else float("nan")
        lines.append(f"| {start + 1}-{start + len(rows[start:start + 100])} | {len(trained)} | "
                     f"{sum(r['duplicate'] for r in win)} | {sum(r['state'] == 'PRUNED' for r in win)} | "
                     f"{med('gap_s'):.3f} | {med('train_s'):.3f} | {inside:.3f} | {between:.3f} | {share:.1%} |")
    lines += ["", f"Whole run: {wall:.0f} s wall; study file {db_bytes / 1e6:.1f} MB."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
