"""Speed side by side: nas-student's default search (every core: `--workers auto`), the same search
in one process (`--workers 1`), and the plain Optuna script a user would write
(`bench/peer_optuna.py`: TPE, 3 objectives, fvcore, the teacher run at every KD step), on the
same task, seed and number of trials, one after the other in one run on a quiet machine.

Each arm is a fresh process, timed from its start to its exit (imports, data, the teacher's
outputs and every trial: what a user waits for), the teacher cached beforehand for all (and
nas-student's cache of its outputs over the splits, which a user's first search on a teacher
fills: 1.4 s of a 35-45 s mnist1d search on 2 cores, `search_phases.md`). Every
process keeps its defaults (no thread setting is imposed) except the arm `nas-student --workers 1
(1 thread)`, the one-process search held to one torch thread (`OMP_NUM_THREADS=1`): against it the
two-process default shows how far the parallel search scales, apart from how much a second torch
thread already gives one process; the arm `nas-student --focus front`, the default with the
sampler on every objective (as the script's TPE) instead of accuracy within the bounds; and the
arm `nas-student --storage journal`, the default with its study in an Optuna journal file
instead of SQLite; and the arm `nas-student --depth-power 0`, the default with every student
the same proxy steps (the default before steps by depth). The trust report is off (`--no-trust`): the script has none. The
hypervolume is over the feasible trials' proxy
accuracy, MACs and params as ratios to the teacher, reference (1, 0.1, 0.1) (objectives
normalised by the bounds, `nas_student.results.hypervolume`).

    python bench/peer_speed.py --tasks mnist1d digits --seeds 0 1 2 --trials 40
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from nas_student.results.hypervolume import hypervolume  # noqa: E402

ARMS = ("nas-student", "nas-student --workers 1", "optuna script", "nas-student --workers 1 (1 thread)",
        "nas-student --focus front", "nas-student --storage journal", "nas-student --depth-power 0")


def _run(cmd: list[str], log: Path, threads: int | None = None) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("NAS_STUDENT_WORKERS", "OMP_NUM_THREADS")}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    t0 = time.perf_counter()
    with open(log, "w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed; see {log}")
    return time.perf_counter() - t0


def _hv(acc: list[float], macs_ratio: list[float], params_ratio: list[float]) -> float:
    pts = [(1 - a, m / 0.1, p / 0.1) for a, m, p in zip(acc, macs_ratio, params_ratio)]
    return hypervolume(pts)


def run_arm(arm: str, task: str, seed: int, trials: int, work: Path, space: str | None = None,
            sampler: str | None = None) -> dict:
    if arm.startswith("nas-student"):
        workers = ["--workers", "1"] if "--workers 1" in arm else []
        one_thread = arm.endswith("(1 thread)")
        focus = ["--focus", "front"] if arm.endswith("--focus front") else []
        journal = arm.endswith("--storage journal")
        equal = ["--depth-power", "0"] if arm.endswith("--depth-power 0") else []
        name = (f"{task}-s{seed}-{'w1' if workers else 'auto'}{'t1' if one_thread else ''}"
                f"{'-front' if focus else ''}{'-journal' if journal else ''}{'-equal' if equal else ''}")
        storage = ["--storage", f"journal:{work / name}.journal"] if journal else []
        wall = _run([sys.executable, "-m", "nas_student.cli", "search", "--task", task, "--seed", str(seed),
                     "--trials", str(trials), "--no-trust", "--run", name, "--results-dir", str(work),
                     *workers, *focus, *storage, *equal, *(["--space", space] if space else []),
                     *(["--sampler", sampler] if sampler else [])],
                    work / f"{name}.log", threads=1 if one_thread else None)
        d = pd.read_csv(work / name / "trials.csv")
        d = d[(d.state == "COMPLETE") & d.feasible.astype(bool)]
        hv = _hv(d.accuracy.tolist(), d.macs_ratio.tolist(), d.params_ratio.tolist())
        best = float(d.accuracy.max())
        phase = _trial_phase(work / name)
    else:
        out = work / f"peer-{task}-s{seed}.json"
        wall = _run([sys.executable, "bench/peer_optuna.py", "--task", task, "--seed", str(seed),
                     "--trials", str(trials), "--json", str(out)], work / f"peer-{task}-s{seed}.log")
        res = json.loads(out.read_text())
        rows = [r for r in res["trials"] if r["feasible"]]
        hv = _hv([r["accuracy"] for r in rows], [r["macs"] / res["teacher_macs"] for r in rows],
                 [r["n_params"] / res["teacher_params"] for r in rows])
        best = max(r["accuracy"] for r in rows)
        phase = None
    return {"arm": arm, "task": task, "seed": seed, "trials": trials, "space": space or "default",
            "sampler": sampler or "tpe", "wall_s": wall,
            "s_per_trial": wall / trials, "hypervolume": hv, "best_accuracy": best, "trials_s": phase}


def _trial_phase(run_dir: Path) -> float:
    """Seconds from the first trial's start to the last trial's end (the study's own timestamps):
    the part of the command that more processes can share, without start-up and the final tables."""
    from nas_student.storage import load_study

    trials = load_study(run_dir).get_trials(deepcopy=False)
    start = min(t.datetime_start for t in trials if t.datetime_start)
    return (max(t.datetime_complete for t in trials if t.datetime_complete) - start).total_seconds()


def _spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3f} (range {min(xs):.3f}-{max(xs):.3f})"


def report(rows: list[dict], tasks: list[str]) -> str:
    space = rows[0].get("space", "default")
    phase = any(r.get("trials_s") for r in rows)
    lines = ["## Speed side by side: nas-student's default, one process, and the plain Optuna script", "",
             f"nas-student's space: {'the task default' if space == 'default' else '`' + space + '`'}.", "",
             "Reproduce: `python bench/peer_speed.py --tasks " + " ".join(tasks) + " --seeds "
             + " ".join(str(s) for s in sorted({r['seed'] for r in rows})) + f" --trials {rows[0]['trials']}"
             + ("" if space == "default" else f" --nas-space {space}")
             + ("" if rows[0].get("sampler", "tpe") == "tpe" else f" --sampler {rows[0]['sampler']}")
             + ("" if len({r['arm'] for r in rows}) == len(ARMS) else " --arms " + " ".join(
                 repr(a) for a in ARMS if a in {r['arm'] for r in rows})) + "` "
             "(quiet machine, teachers cached). Each arm a fresh process, timed start to exit; "
             "`--no-trust`. Ratios per seed, then the median and range over seeds.", "",
             "| task | seed | arm | wall s | s per trial | hypervolume | best proxy acc |" + " trial phase s |" * phase,
             "|---|---:|---|---:|---:|---:|---:|" + "---:|" * phase]
    for r in rows:
        lines.append(f"| {r['task']} | {r['seed']} | {r['arm']} | {r['wall_s']:.1f} | {r['s_per_trial']:.2f} | "
                     f"{r['hypervolume']:.5f} | {r['best_accuracy']:.4f} |"
                     + (f" {r['trials_s']:.1f} |" if r.get("trials_s") else " - |") * phase)
    lines.append("")
    for task in tasks:
        by = {(r["arm"], r["seed"]): r for r in rows if r["task"] == task}
        seeds = sorted({s for _, s in by})
        if not seeds:
            continue

        def ratios(a: str, b: str, key: str) -> list[float]:
            return [by[a, s][key] / by[b, s][key] for s in seeds if (a, s) in by and (b, s) in by]

        lines += [f"**{task}** ({len(seeds)} seeds):", ""]
        t_ratio, hv_ratio = ratios(ARMS[0], ARMS[2], "s_per_trial"), ratios(ARMS[0], ARMS[2], "hypervolume")
        if t_ratio:
            lines.append(f"- `peer: time per trial ratio = {statistics.median(t_ratio):.2f}, hypervolume ratio = "
                         f"{statistics.median(hv_ratio):.2f}` ({task}; nas-student default over the script, medians; "
                         f"time ratio range {min(t_ratio):.2f}-{max(t_ratio):.2f}, hypervolume ratio range "
                         f"{min(hv_ratio):.2f}-{max(hv_ratio):.2f})")
        tf, hf = ratios(ARMS[4], ARMS[2], "s_per_trial"), ratios(ARMS[4], ARMS[2], "hypervolume")
        if tf:
            lines.append(f"- `--focus front` (the sampler on every objective, as the script's) over the script: "
                         f"time per trial {_spread(tf)}, hypervolume {_spread(hf)}")
        tj, hj = ratios(ARMS[5], ARMS[2], "s_per_trial"), ratios(ARMS[5], ARMS[2], "hypervolume")
        if tj:
            lines.append(f"- `--storage journal` (the study in an Optuna journal file instead of SQLite) over the "
                         f"script: time per trial {_spread(tj)}, hypervolume {_spread(hj)}")
        te, he = ratios(ARMS[6], ARMS[2], "s_per_trial"), ratios(ARMS[6], ARMS[2], "hypervolume")
        if te:
            lines.append(f"- `--depth-power 0` (every student the same proxy steps, the default before steps by depth) "
                         f"over the script: time per trial {_spread(te)}, hypervolume {_spread(he)}")
        t1_ratio = ratios(ARMS[1], ARMS[2], "s_per_trial")
        if t1_ratio:
            lines.append(f"- one process (`--workers 1`) over the script: time per trial {_spread(t1_ratio)}")
        speedup = ratios(ARMS[1], ARMS[0], "wall_s")
        if speedup:
            lines.append(f"- `2 workers vs 1: trials per minute ratio = {statistics.median(speedup):.2f}` "
                         f"(range {min(speedup):.2f}-{max(speedup):.2f}; whole command, {rows[0]['trials']} trials, "
                         f"sampler {rows[0].get('sampler', 'tpe')})")
        phase = [by[ARMS[1], s]["trials_s"] / by[ARMS[0], s]["trials_s"] for s in seeds
                 if by.get((ARMS[0], s), {}).get("trials_s") and by.get((ARMS[1], s), {}).get("trials_s")]
        if phase:
            lines.append(f"- 2 workers vs 1, the trial phase alone (first trial's start to last trial's end, "
                         f"without start-up and the final tables): {_spread(phase)}")
        one = ratios(ARMS[3], ARMS[0], "wall_s")
        if one:
            phase1 = [by[ARMS[3], s]["trials_s"] / by[ARMS[0], s]["trials_s"] for s in seeds
                      if (ARMS[3], s) in by and (ARMS[0], s) in by]
            lines.append(f"- 2 workers vs 1 process held to one torch thread: whole command {_spread(one)}, "
                         f"trial phase {_spread(phase1)}")
        two = ratios(ARMS[3], ARMS[1], "trials_s")
        if two:
            lines.append(f"- what the second torch thread gives one process (trial phase, 1 thread / 2 threads): "
                         f"{_spread(two)}")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["mnist1d", "digits"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--nas-space", help="the space nas-student searches (default: the task's own)")
    ap.add_argument("--sampler", help="nas-student's sampler (random: both worker counts train the same "
                    "students, so their ratio is the parallel speed-up alone)")
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    ap.add_argument("--out", default=str(ROOT / "results" / "records" / "peer_speed"))
    args = ap.parse_args()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for task in args.tasks:
            for i, seed in enumerate(args.seeds):  # the seed's teacher trained (or found cached) outside the
                # timings, and its outputs over the splits cached as nas-student caches them (once per teacher)
                subprocess.run([sys.executable, "-c", "from nas_student.tasks import load_task; "
                                f"t = load_task({task!r}, seed={seed}); t.teacher_logits('train'); "
                                "t.teacher_logits('val')"], check=True, cwd=ROOT)
                arms = [a for a in ARMS if a in args.arms]
                order = arms[i % len(arms):] + arms[:i % len(arms)]  # each arm first once: drift spread over the arms
                for arm in order:
                    rows.append(run_arm(arm, task, seed, args.trials, work, args.nas_space, args.sampler))
                    print(json.dumps(rows[-1]), flush=True)
                    Path(args.out + ".json").write_text(json.dumps(rows, indent=1))
    Path(args.out + ".md").write_text(report(rows, args.tasks) + "\n")
    print(report(rows, args.tasks))


if __name__ == "__main__":
    main()
