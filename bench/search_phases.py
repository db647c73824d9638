"""Where a default search's wall time goes, phase by phase, in the search process: imports,
prepare (data, teacher, its outputs), the study and helpers until the first trial, the trials,
the front's files. Two arms alternate, each run a fresh process: the teacher's outputs read
from their cache (``cached``), and computed again (``computed``: the cached outputs deleted
first, as on a user's first search with a teacher).

    python bench/search_phases.py --seeds 0 1 2 --repeats 1

Writes results/records/search_phases.md (and .json). Run alone on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("imports", "prepare", "to first trial", "trials", "front files", "after")

#: one search, marks taken in the search process (run as ``python -c``)
CHILD = r"""
import json, sys, time
T0 = time.perf_counter()
from nas_student.runfile import build_config
from nas_student.cli.progress import run_with_progress  # noqa: F401 - what the CLI imports
import nas_student.search as S
m = {"imports": time.perf_counter() - T0}
prepare, write = S.prepare, S.write_tables
def timed_prepare(cfg):
    r = prepare(cfg); m["prepared"] = time.perf_counter() - T0; return r
def timed_write(*a, **k):
    m["trials_end"] = time.perf_counter() - T0
    r = write(*a, **k); m["tables"] = time.perf_counter() - T0; return r
S.prepare, S.write_tables = timed_prepare, timed_write
cfg = build_config(None, {("search", "seed"): int(sys.argv[1]), ("search", "trust", "enabled"): False,
                          ("results_dir",): sys.argv[2], ("search", "trials"): int(sys.argv[3])})
o = S.run_search(cfg, on_ready=lambda ctx, n: m.__setitem__("ready", time.perf_counter() - T0))
m["end"] = time.perf_counter() - T0
m["trained"] = int(o.trials["status"].astype(str).str.startswith("trained").sum())
print("PHASES " + json.dumps(m))
"""


def drop_cached_outputs(task: str, seed: int) -> int:
    from nas_student.tasks import load_task
    from nas_student.tasks.teacher_cache import outputs_prefix

    prefix = outputs_prefix(load_task(task, seed=seed).teacher_info)
    files = list(prefix.parent.glob(f"{prefix.name}.outputs-*"))
    for f in files:
        f.unlink()
    return len(files)


def one(seed: int, trials: int, work: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NAS_STUDENT_WORKERS", "OMP_NUM_THREADS")}
    t = subprocess.run([sys.executable, "-c", CHILD, str(seed), str(work), str(trials)], env=env, cwd=ROOT,
                       capture_output=True, text=True, check=True)
    m = json.loads(next(line for line in t.stdout.splitlines() if line.startswith("PHASES "))[7:])
    return {"imports": m["imports"], "prepare": m["prepared"] - m["imports"], "to first trial": m["ready"] - m["prepared"],
            "trials": m["trials_end"] - m["ready"], "front files": m["tables"] - m["trials_end"],
            "after": m["end"] - m["tables"], "total": m["end"], "trained": m["trained"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--out", default=str(ROOT / "results" / "records" / "search_phases"))
    args = ap.parse_args()
    rows = []
    for seed in args.seeds:
        subprocess.run([sys.executable, "-c", f"from nas_student.tasks import load_task; t = load_task('mnist1d', "
                        f"seed={seed}); t.teacher_logits('train'); t.teacher_logits('val')"],
                       check=True, cwd=ROOT)  # the teacher trained (or found) and its outputs cached, outside the timings
        for r in range(args.repeats):
            for arm in (("cached", "computed") if (seed + r) % 2 == 0 else ("computed", "cached")):
                if arm == "computed":
                    drop_cached_outputs("mnist1d", seed)
                with tempfile.TemporaryDirectory() as tmp:
                    rows.append({"arm": arm, "seed": seed, "repeat": r, **one(seed, args.trials, Path(tmp))})
                print(json.dumps(rows[-1]), flush=True)
    Path(args.out + ".json").write_text(json.dumps(rows, indent=1))
    Path(args.out + ".md").write_text(report(rows, args))
    print(report(rows, args))


def report(rows: list[dict], args) -> str:
    lines = ["# Where a default search's time goes", "",
             f"Command: `python bench/search_phases.py --seeds {' '.join(map(str, args.seeds))} --repeats "
             f"{args.repeats} --trials {args.trials}`", "",
             f"mnist1d, the default search (`mnist1d-cnn`, TPE, focus best, two processes) with `--no-trust`, "
             f"{args.trials} trials, one fresh process per run, seconds in the search process (medians over "
             f"{len(rows) // 2} runs per arm; min-max in brackets). `cached`: the teacher's outputs read from the "
             "teacher cache; `computed`: deleted first, so the search computes them (a first search with a "
             "teacher). Arms alternate.", "",
             "| phase | cached | computed |", "|---|---:|---:|"]
    for phase in (*PHASES, "total"):
        cells = []
        for arm in ("cached", "computed"):
            v = [r[phase] for r in rows if r["arm"] == arm]
            cells.append(f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})")
        lines.append(f"| {phase} | {' | '.join(cells)} |")
    trained = {arm: [r["trained"] for r in rows if r["arm"] == arm] for arm in ("cached", "computed")}
    lines += ["", f"Students trained per run: cached {trained['cached']}, computed {trained['computed']} "
              "(two processes: TPE's path, and so the trials, differ from run to run)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
