"""Reliability record: crash and resume, bad inputs, fuzzing the space loader, determinism.

    python bench/reliability_record.py [--files 1000] [--seed 0] [--random-kills 10]
                                       [--no-kills] [--no-bad-inputs] [--no-determinism]

Kills: a seeded 40-trial search (`--steps 10`, digits-mlp) SIGKILLed at each crash point of
tests/search/crash_points.py, then at --random-kills random moments (seeded), then run to the
end; compared with the same search never interrupted (the checks of tests/search/test_crash.py).
Bad inputs: every case of tests/bad_inputs.py through the CLI; the one line each gave.
Fuzz: the files of tests/spaces/space_fuzz.py (the generator the test uses) are loaded; each
valid space has 5 architectures sampled and built (forward on a (2, 1, 8, 8) input). Counts,
timings and every distinct error message (grouped by mutation kind, one example each).
Determinism: three `nas-student search` processes with the same seed (the runner of
tests/search/test_determinism.py), trials and Pareto fronts compared.
Writes results/records/reliability.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "spaces"), str(ROOT / "tests" / "search"), str(ROOT / "tests")]

import torch  # noqa: E402
from space_fuzz import generate, message_kind  # noqa: E402

from nas_student.errors import ConfigError, NasStudentError  # noqa: E402
from nas_student.families import ModelIO, build  # noqa: E402
from nas_student.spaces import RandomSuggester, load_space  # noqa: E402

FUZZ_CMD = "python -m pytest tests/spaces/test_fuzz_spaces.py -q"
DET_CMD = "python -m pytest tests/search/test_determinism.py -q"
KILL_CMD = "python -m pytest tests/search/test_crash.py -q"
KILL_TRIALS = 40  # the test runs the same campaign on 20 trials
BAD_CMD = "python -m pytest tests/test_cli.py -q -k bad_input"


FIXED = [
    "`type: [choice]` (a list as type) and `? [a, b]` (a list as key): TypeError unhashable type.",
    "Nesting 3000 levels deep: RecursionError in PyYAML's composer (now refused past 64 levels).",
    "A control character: two-line message (PyYAML's ReaderError text); a key with a newline: two lines.",
    "A bare function name in a rule (`abs > 1`): KeyError at evaluation.",
    "An int bound of 10**23: OverflowError (now |bound| <= 2**53); a range of 10**12 values: "
    "MemoryError (counting listed the whole range).",
    "Float ranges wider than the largest double, or steps giving more than 2**53 values: OverflowError.",
    "A sampled repeat count below 0 was accepted (read as 0 layers); a fixed count of 10**8 hung "
    "(counts now within 0..256).",
    "Rules such as `'a' * 10**12 == 'b'` or `(((10**64)**64)**64)**64 > 0` hung or ran out of "
    "memory; a 100000-term rule raised RecursionError (rules now <= 1000 characters, <= 50 levels).",
    "A `!!python/...` tag on a scalar read as 'YAML syntax error: could not determine a constructor'.",
    "A space whose rules admit nothing was accepted when a continuous parameter made its size infinite.",
    "Counting a space could run for minutes (12 M rule evaluations); now bounded (size then unknown).",
    "Messages: 'value error, ' prefix; pydantic union tags in keys; 'not UTF-8' and 'file larger' named no line.",
]


def fuzz(n: int, seed: int) -> dict:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    cases = generate(n, seed=seed)
    t_gen = time.perf_counter() - t0
    work = Path(tempfile.mkdtemp())
    os.chdir(work)  # messages then start with a short relative path
    Path("fuzz").mkdir()
    out = {"files": n, "valid": sum(c.valid for c in cases), "generate_s": t_gen, "loaded": 0,
           "kind_files": collections.Counter(c.kind for c in cases if not c.valid),
           "refused": 0, "escaped": [], "built": 0, "build_refused": 0, "build_escaped": [],
           "samples": 0, "broke_rules": 0, "by_kind": collections.defaultdict(dict),
           "templates": collections.Counter(), "template_example": {}, "wrong_outcome": []}
    t_load = t_build = 0.0
    io = ModelIO((1, 8, 8), 10)
    for c in cases:
        path = f"fuzz/{c.name}"
        Path(path).write_bytes(c.data)
        t = time.perf_counter()
        try:
            space = load_space(path)
        except ConfigError as e:
            t_load += time.perf_counter() - t
            out["refused"] += 1
            msg = str(e)
            kind = message_kind(msg, path)
            out["by_kind"][c.kind].setdefault(kind, msg)
            out["templates"][kind] += 1
            out["template_example"].setdefault(kind, msg)
            if c.valid:
                out["wrong_outcome"].append(f"{path}: valid, refused: {msg}")
            continue
        except Exception as e:  # noqa: BLE001
            out["escaped"].append(f"{path}: {type(e).__name__}: {e}")
            continue
        t_load += time.perf_counter() - t
        out["loaded"] += 1
        if not c.valid:
            out["wrong_outcome"].append(f"{path}: invalid ({c.kind}), accepted")
            continue
        t = time.perf_counter()
        rng = RandomSuggester(c.index)
        for _ in range(5):
            arch = space.sample(rng)
            out["samples"] += 1
            if space.violations(arch):
                out["broke_rules"] += 1
                continue
            try:
                model = build(arch, io)
                with torch.no_grad():
                    assert tuple(model(torch.randn(2, 1, 8, 8)).shape) == (2, 10)
                out["built"] += 1
            except NasStudentError:
                out["build_refused"] += 1
            except Exception as e:  # noqa: BLE001
                out["build_escaped"].append(f"{path}: {type(e).__name__}: {e}")
        t_build += time.perf_counter() - t
    out.update(load_s=t_load, build_s=t_build, seed=seed)
    os.chdir(ROOT)
    return out


def determinism() -> dict:
    import test_determinism as td

    from nas_student.tasks import load_task

    load_task("digits", seed=0)  # the teacher is cached before the processes start
    folder = Path(tempfile.mkdtemp())
    t = time.perf_counter()
    dirs = td.run_searches(folder, 3)
    wall = time.perf_counter() - t
    trials = td.trial_records(dirs[0])
    return {"wall_s": wall, "problems": td.compare(dirs), "trials": trials,
            "front": __import__("pandas").read_csv(dirs[0] / "pareto.csv")[td.FRONT_COLUMNS],
            "args": " ".join(td.ARGS)}


def kills(random_kills: int, seed: int) -> dict:
    import crash_points as cp
    import test_crash as tc

    from nas_student.tasks import load_task

    load_task("digits", seed=0)  # the teacher is cached before the processes start
    folder = Path(tempfile.mkdtemp())
    env = {"OMP_NUM_THREADS": "1"}
    ref = cp.campaign(tc.command(folder, "u", KILL_TRIALS), folder / "u", [], env=env)
    plan = tc.HOOK_KILLS[:-1] + ["time:1.5"] * random_kills + tc.HOOK_KILLS[-1:]
    res = cp.campaign(tc.command(folder, "k", KILL_TRIALS), folder / "k", plan, seed=seed, env=env)
    got = cp.outcome(folder / "k", folder / "u") if not res.problems else {}
    interrupted = sum(bool(snap["RUNNING"]) for snap in res.snapshots[:-1])
    reasons = [r for r in (tc.DIED, tc.DIED_CLAIMING) if r in got.get("fail_reasons", [])] or [tc.DIED]
    return {"plan": plan, "res": res, "ref": ref, "got": got, "interrupted": interrupted,
            "expected": tc.expected(interrupted, reasons, KILL_TRIALS),
            "cmd": " ".join(tc.command(Path("DIR"), "k", KILL_TRIALS))}


def bad_inputs() -> list[dict]:
    from bad_inputs import CASES, MARKER, arguments, make_project
    from typer.testing import CliRunner

    from nas_student.cli import app
    from nas_student.tasks import load_task

    load_task("digits", seed=0)
    project = Path(tempfile.mkdtemp())
    make_project(project)
    rows = []
    for i, case in enumerate(CASES):
        folder = project / f"case{i:02d}"
        folder.mkdir()
        for f in project.iterdir():
            if f.is_file():
                (folder / f.name).symlink_to(f)
        os.chdir(folder)
        result = CliRunner().invoke(app, arguments(case, folder), terminal_width=400)
        os.chdir(ROOT)
        lines = [x for x in result.output.splitlines() if x.strip()]
        rows.append({"name": case.name, "exit": result.exit_code, "lines": len(lines),
                     "message": (lines[0] if lines else "").replace(str(folder) + "/", "")
                     .replace(str(ROOT) + "/", ""),
                     "needle": case.needle in result.output, "traceback": "Traceback" in result.output,
                     "written": (folder / "results").exists(),
                     "payload_ran": (folder / MARKER).exists() or (project / MARKER).exists()})
    return rows


def one_line(s: str, n: int = 160) -> str:
    s = s.replace("|", "\\|")
    return s if len(s) <= n else s[:n] + "…"


def write_kills(k: dict | None) -> list[str]:
    L = ["## Crash and resume", ""]
    if k is None:
        return L + ["(not run: `--no-kills`)", ""]
    res, got = k["res"], k["got"]
    lost = len(res.lost)
    L += [f"Reproduce: `{KILL_CMD}` (asserts the same on a 20-trial search, 5 + 2 kills) or this script. The search "
          f"`nas-student {k['cmd']}` is killed with SIGKILL {len(k['plan'])} times (one run per kill, "
          "each resuming the last), then run to the end, and compared with the same command never "
          "interrupted. Crash points (tests/search/crash_points.py): `train` = a student's training "
          "starts; `weights` = its weights are in the temporary file, not yet renamed; `tell` = its "
          "record is stored, its final state not written; `result` = inside the SQLite transaction "
          "that writes its values and COMPLETE state; `tables` = pareto.csv half written at the end; "
          "`time:1.5` = a random moment 0-1.5 s after the teacher is ready (seeded).", "",
          "| figure | value |", "|---|---|",
          f"| kills (SIGKILL delivered) | {res.kills} of {len(k['plan'])} planned |",
          f"| kills survived (the next run went on from a sound study) | {res.survived} |",
          f"| **trials lost** (complete before a kill, missing or changed after) | **{lost}** |",
          f"| runs / wall (incl. the uninterrupted reference: {k['ref'].wall_s:.0f} s) | "
          f"{res.runs} / {res.wall_s:.0f} s |",
          f"| trials interrupted mid-trial (marked failed on resume) | {k['interrupted']} |"]
    labels = {"complete": "complete trials at the end", "failed": "failed trials (the interrupted ones)",
              "unfinished": "trials left RUNNING or WAITING", "fail_reasons": "their reason",
              "trained_twice": "architectures trained twice", "untimed_training": "trained trials without a training time",
              "repeats_point_at_their_source": "repeats point at a trained trial with the same hash and values",
              "weights_are_the_trained": "weights/*.pt are exactly the trained students'",
              "temporary_files": "temporary weight files left by kills (ignored, never a student's weights)",
              "table_rows": "trials.csv rows (COMPLETE, FAIL)",
              "same_params": "same parameters, trial for trial, as uninterrupted",
              "same_values": "same objective values as uninterrupted",
              "same_front": "same Pareto front (arch hash, accuracy, MACs, params)",
              "front_size": "front size", "integrity": "SQLite integrity_check of study.db"}
    for key, label in labels.items():
        if key in got:
            L.append(f"| {label} | {got[key]} |")
    bad = [key for key, want in k["expected"].items() if got.get(key) != want]
    L += ["", "Verdict: " + ("**as uninterrupted, nothing lost**" if not (bad or lost or res.problems)
                             else f"**problems**: {bad} {res.problems[:5]} {res.lost[:5]}"), "",
          "Where each kill landed:", ""]
    L += [f"- {m}" for m in res.moments] + [""]
    return L


def write_bad_inputs(rows: list[dict] | None) -> list[str]:
    L = ["## Bad inputs", ""]
    if rows is None:
        return L + ["(not run: `--no-bad-inputs`)", ""]
    good = [r for r in rows if r["exit"] == 2 and r["lines"] == 1 and r["needle"] and not r["traceback"]
            and not r["written"] and not r["payload_ran"]]
    L += [f"Reproduce: `{BAD_CMD}` (asserts all of this) or this script. Cases: `tests/bad_inputs.py`; "
          "each through `nas-student search` in a fresh folder (paths below relative to it). "
          f"{len(rows)} bad inputs tried; {len(good)} gave exit code 2 and exactly one line holding the "
          "expected words, no traceback, no run folder or study written, no payload run "
          "(`!!python` tag and pickle cases write a marker file if their code runs: it never exists).", "",
          "| bad input | exit | lines | written | message |", "|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['name']} | {r['exit']} | {r['lines']} | {'yes' if r['written'] else 'no'} | "
                 f"``{one_line(r['message'], 300)}`` |")
    return L + [""]


def write(path: Path, f: dict, d: dict | None, k: dict | None = None, b: list[dict] | None = None) -> None:
    L = ["# Reliability: crash and resume, bad inputs, fuzzing search-space files, determinism", ""]
    L += write_kills(k) + write_bad_inputs(b)
    L += ["## Fuzzing the space loader", "",
          f"Reproduce: `{FUZZ_CMD}` (asserts all of the below) or `python bench/reliability_record.py`",
          "(this record). Generator: `tests/spaces/space_fuzz.py`, seed " + str(f["seed"]) + ".", "",
          "| figure | value |", "|---|---|",
          f"| files generated | {f['files']} |",
          f"| valid (mlp and cnn spaces from random combinations of the language) | {f['valid']} |",
          f"| invalid (mutations of valid ones, {len(f['by_kind'])} kinds) | {f['files'] - f['valid']} |",
          f"| loaded | {f['loaded']} |",
          f"| refused with a one-line ConfigError naming file and line or key | {f['refused']} |",
          f"| other exceptions escaping `load_space` | {len(f['escaped'])} |",
          f"| valid refused, or invalid accepted | {len(f['wrong_outcome'])} |",
          f"| architectures sampled from valid spaces (5 each) | {f['samples']} |",
          f"| ... breaking the space's rules (not built) | {f['broke_rules']} |",
          f"| ... built, forward (2, 1, 8, 8) -> (2, 10) | {f['built']} |",
          f"| ... refused by the family (NasStudentError) | {f['build_refused']} |",
          f"| ... other exceptions | {len(f['build_escaped'])} |",
          f"| distinct error messages (file, line, key, values and numbers removed) | {len(f['templates'])} |",
          f"| time: generate / load all / sample+build+forward | {f['generate_s']:.1f} s / {f['load_s']:.1f} s "
          f"/ {f['build_s']:.1f} s (torch on 1 thread) |", ""]
    for title, items in (("Escaped exceptions", f["escaped"] + f["build_escaped"]),
                         ("Wrong outcomes", f["wrong_outcome"])):
        if items:
            L += [f"**{title}:**", ""] + [f"- ``{one_line(x)}``" for x in items[:30]] + [""]
    L += ["### Bugs the fuzzer found (fixed; regression tests in `tests/spaces/test_fuzz_spaces.py`)", ""]
    L += [f"- {b}" for b in FIXED] + [""]
    L += ["### Error messages by mutation kind (one example of each distinct message)", "",
          "| kind | files | distinct | message (example) |", "|---|---|---|---|"]
    kinds = f["kind_files"]
    for kind in sorted(f["by_kind"]):
        msgs = f["by_kind"][kind]
        for i, (template, example) in enumerate(sorted(msgs.items())):
            L.append(f"| {kind if i == 0 else ''} | {kinds[kind] if i == 0 else ''} | "
                     f"{len(msgs) if i == 0 else ''} | ``{one_line(example)}`` |")
    L += ["", "Examples are the first file of each message; `fuzz/NNNN-invalid-KIND.yaml` is the file "
          "(path relative to a temporary folder).", ""]
    L += ["## Determinism of a seeded search", ""]
    if d is None:
        L += kept_determinism(path)
    else:
        n_complete = sum(t["state"] == "COMPLETE" for t in d["trials"])
        verdict = "**identical**" if not d["problems"] else "**different**"
        L += [f"Reproduce: `{DET_CMD}` (marked slow), or this script.", "",
              f"Three fresh processes run `nas-student {d['args']} --results-dir DIR_i` at the same "
              f"time (teacher from the cache). Result: {verdict} — every trial's state, params, "
              "objective values, constraint values, arch hash and record (accuracy, agreement, "
              "kd_loss, MACs, params, ratios, size) and the pareto.csv columns "
              f"{', '.join(td_cols())} are compared. {len(d['trials'])} trials "
              f"({n_complete} complete, {len(d['trials']) - n_complete} broke the space's rules, "
              f"pruned), wall {d['wall_s']:.0f} s for the three processes.", ""]
        if d["problems"]:
            L += ["Differences:", "", "```"] + d["problems"][:40] + ["```", ""]
        L += ["Pareto front of the run (identical in all three):", "", "```",
              d["front"].to_string(index=False), "```", ""]
    path.write_text("\n".join(L) + "\n")


def kept_determinism(path: Path) -> list[str]:
    """With ``--no-determinism``: the section of the record being replaced, said to be kept."""
    old = path.read_text() if path.exists() else ""
    head = "## Determinism of a seeded search\n"
    if head not in old:
        return ["(not run: `--no-determinism`)"]
    body = old.split(head, 1)[1].strip("\n").splitlines()
    if body and body[0].startswith("(Kept"):
        body = body[2:]
    return ["(Kept from the previous run of this script: `--no-determinism` this time.)", ""] + body


def td_cols() -> list[str]:
    import test_determinism as td

    return td.FRONT_COLUMNS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-determinism", action="store_true")
    ap.add_argument("--random-kills", type=int, default=10)
    ap.add_argument("--no-kills", action="store_true")
    ap.add_argument("--no-bad-inputs", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "results/records/reliability.md"))
    args = ap.parse_args()
    f = fuzz(args.files, args.seed)
    d = None if args.no_determinism else determinism()
    k = None if args.no_kills else kills(args.random_kills, args.seed)
    b = None if args.no_bad_inputs else bad_inputs()
    write(Path(args.out), f, d, k, b)
    print(Path(args.out).read_text())


if __name__ == "__main__":
    main()
