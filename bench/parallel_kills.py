"""The crash campaign under the parallel default: a seeded 40-trial search with two processes
(`--workers 2`, what `auto` gives on this 2-core machine), SIGKILLed at every crash point of
tests/search/crash_points.py and at random moments, one run per kill, each resuming the last,
then run to the end. A crash point kills whichever process reaches it first: the search (its
helper dies with it) or a helper (the search fails its trial at once and goes on).

Checks after every run and at the end (tests/search/test_crash.py asserts the same on 20
trials): complete trials never lost or changed, none left RUNNING, no architecture trained
twice, exactly --trials complete, the study file sound. The proposals depend on timing with two
processes, so the run is not compared trial for trial with an uninterrupted one.

    python bench/parallel_kills.py --random-kills 10 --seed 0

Writes the section "Crash and resume under the parallel default" of results/records/reliability.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "search"), str(ROOT / "tests")]

import crash_points as cp  # noqa: E402
import test_crash as tc  # noqa: E402

TRIALS = 40
HEAD = "## Crash and resume under the parallel default"
RECORD = ROOT / "results" / "records" / "reliability.md"


def run(random_kills: int, seed: int, workers: int) -> tuple[list[str], cp.Campaign, dict, str]:
    from nas_student.tasks import load_task

    load_task("digits", seed=0)  # the teacher is cached before the processes start
    folder = Path(tempfile.mkdtemp())
    env = {"OMP_NUM_THREADS": "1"}
    ref = cp.campaign(tc.command(folder, "u", TRIALS), folder / "u", [], env=env)  # outcome() reads a front
    assert not ref.problems, ref.problems
    # a helper's kill leaves the search finishing the run, so it comes last; the other crash
    # points are tried in the helper each in a campaign of its own (helper_campaigns)
    plan = tc.HOOK_KILLS[:-1] + ["time:1.5"] * random_kills + ["tell:3:helper"] + tc.HOOK_KILLS[-1:]
    cmd = tc.command(folder, "k", TRIALS, workers=workers)
    res = cp.campaign(cmd, folder / "k", plan, seed=seed, env=env, parallel=True)
    got = cp.outcome(folder / "k", folder / "u") if not res.problems else {}
    return plan, res, got, " ".join(tc.command(Path("DIR"), "k", TRIALS, workers=workers))


def helper_campaigns(workers: int) -> list[dict]:
    """Each other crash point in the helper: one run, killed there, that the search finishes."""
    folder = Path(tempfile.mkdtemp())
    env = {"OMP_NUM_THREADS": "1"}
    ref = folder / "u"
    cp.campaign(tc.command(folder, "u", TRIALS), ref, [], env=env)
    rows = []
    for i, point in enumerate(["claim:3", "train:4", "weights:3", "result:3"]):
        run = folder / f"h{i}"
        res = cp.campaign(tc.command(folder, f"h{i}", TRIALS, workers=workers), run, [f"{point}:helper"],
                          env=env, parallel=True)
        got = cp.outcome(run, ref) if not res.problems else {}
        rows.append({"point": f"{point}:helper", "helper_killed": res.helper_kills, "problems": res.problems,
                     "lost": len(res.lost), **{k: got.get(k) for k in (
                         "complete", "failed", "unfinished", "trained_twice", "trained_without_weights", "integrity")}})
    return rows


def helper_table(rows: list[dict]) -> list[str]:
    L = ["Each other crash point in the helper alone (a fresh 40-trial run each, killed there once, "
         "finished by the search in the same run):", "",
         "| crash point | helper killed | complete | failed | left running | trained twice | "
         "trained without weights | trials lost | study.db | problems |", "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        L.append(f"| `{r['point']}` | {r['helper_killed']} | {r['complete']} | {r['failed']} | {r['unfinished']} | "
                 f"{r['trained_twice']} | {r['trained_without_weights']} | {r['lost']} | {r['integrity']} | "
                 f"{'; '.join(r['problems'])[:200] or 'none'} |")
    return L + [""]


def section(plan: list[str], res: cp.Campaign, got: dict, cmd: str, seed: int) -> str:
    ok = (not res.problems and not res.lost and got.get("complete") == TRIALS and got.get("unfinished") == 0
          and got.get("trained_twice") == 0 and got.get("trained_without_weights") == 0 and got.get("integrity") == "ok")
    L = [HEAD, "",
         f"Reproduce: `python bench/parallel_kills.py --random-kills {plan.count('time:1.5')} --seed {seed}` "
         "(tests/search/test_crash.py asserts the same on 20 trials, 5 kills). "
         f"`nas-student {cmd}` is SIGKILLed at the crash points above (`POINT:N:helper`: in the helper process "
         "only) and at random moments "
         "(0-1.5 s after the teacher is ready, seeded), one run per kill, then run to the end. A crash point "
         "fires in whichever process reaches it first: the search (its helper dies with it: PR_SET_PDEATHSIG) "
         "or the helper (the search fails its trial at once and finishes the run).", "",
         "| figure | value |", "|---|---|",
         f"| kills planned | {len(plan)} |",
         f"| the search killed (its helper with it) | {res.kills} |",
         f"| a helper killed, the run went on | {res.helper_kills} |",
         f"| kills survived (the study sound, the run going on) | {res.survived} |",
         f"| **trials lost** (complete before a kill, missing or changed after) | **{len(res.lost)}** |",
         f"| runs / wall | {res.runs} / {res.wall_s:.0f} s |"]
    for key, label in (("complete", "complete trials at the end"), ("failed", "failed trials (the interrupted ones)"),
                       ("unfinished", "trials left RUNNING or WAITING"), ("fail_reasons", "their reason"),
                       ("trained_twice", "architectures trained twice"),
                       ("trained_without_weights", "trained students without their weights file"),
                       ("weights_without_a_trial", "weights files of students no trial completed (a process killed "
                        "after saving them, before telling the study; harmless litter)"),
                       ("table_rows", "trials.csv rows (COMPLETE, FAIL)"),
                       ("integrity", "SQLite integrity_check of study.db")):
        if key in got:
            L.append(f"| {label} | {got[key]} |")
    L += ["", "Verdict: " + ("**nothing lost, none left running, none trained twice**" if ok
                             else f"**problems**: {res.problems[:5]} {res.lost[:5]} {got}"), "",
          "Where each kill landed:", ""] + [f"- {m}" for m in res.moments] + [""]
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--random-kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    text = section(*run(args.random_kills, args.seed, args.workers), args.seed)
    text += "\n".join(helper_table(helper_campaigns(args.workers)))
    old = RECORD.read_text()
    if HEAD in old:  # replace the section, up to the next one
        before, rest = old.split(HEAD, 1)
        after = rest[rest.find("\n## "):] if "\n## " in rest else ""
        new = before + text + ("\n" + after.lstrip("\n") if after else "")
    else:  # after the single-process campaign
        first = old.find("\n## ", old.find("## Crash and resume") + 1)
        new = old[:first + 1] + text + "\n" + old[first + 1:]
    RECORD.write_text(new)
    print(text)


if __name__ == "__main__":
    main()
