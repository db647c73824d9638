"""Fuzzing run files: generated bad run files through `nas-student search --config`.

    python bench/runfile_fuzz.py [--files 1000] [--seed 0]

The files come from tests/runfile_fuzz.py (the generator tests/test_fuzz_runfiles.py runs 140
of): a valid run file for a user's own task broken once each (wrong types, missing and unknown
keys, paths that do not exist or are folders, huge or negative numbers, data files of mixed
kinds). Each goes through the CLI in this process; a file that would start a search is stopped
where its study would be created and counted as accepted. Writes
results/records/reliability_runfiles.md: outcomes per kind, one example of each distinct message.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

import nas_student.search  # noqa: E402
import test_fuzz_runfiles as fuzz_test  # noqa: E402
from runfile_fuzz import KINDS, generate, make_project  # noqa: E402

CMD = "python -m pytest tests/test_fuzz_runfiles.py -q"


def template(line: str, folder: str) -> str:
    """A message with its file, line, quoted values and numbers taken out: its kind of wording."""
    t = line.replace(folder, "F")
    t = re.sub(r"run\.yaml:\d+", "run.yaml:N", t)
    t = re.sub(r"\(got [^)]*\)", "(got X)", t)
    return re.sub(r"-?\d[\d,.e+]*", "N", t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "results/records/reliability_runfiles.md"))
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    nas_student.search.create_or_resume = fuzz_test.accept  # a valid file stops before its study
    folder = Path(tempfile.mkdtemp())
    make_project(folder)
    os.chdir(folder)
    files = generate(args.files, args.seed)
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    examples: dict[str, dict[str, str]] = collections.defaultdict(dict)
    t0 = time.perf_counter()
    for kind, where, text in files:
        ok, printed = fuzz_test.outcome(folder, text)
        counts[kind]["one line, exit 2, nothing written" if ok else "NOT as promised"] += 1
        first = printed.splitlines()[0] if printed else "(nothing printed)"
        examples[kind].setdefault(template(first, str(folder)), f"{where}: {first.replace(str(folder), 'F')}")
    wall = time.perf_counter() - t0
    good = sum(c["one line, exit 2, nothing written"] for c in counts.values())
    lines = ["## Fuzzing run files", "",
             f"Reproduce: `python bench/runfile_fuzz.py --files {args.files} --seed {args.seed}` (this record); "
             f"`{CMD}` asserts the same on 140 files. Generator: `tests/runfile_fuzz.py`.", "",
             f"**{good} of {len(files)}** generated bad run files were refused in one line (`error: ...`), exit "
             f"code 2, no traceback, no results folder written; {len(files) - good} were not. "
             f"{wall:.0f} s for all (in one process).", "",
             "| kind | files | refused as promised | distinct messages |", "|---|---:|---:|---:|"]
    for kind in KINDS:
        c = counts[kind]
        lines.append(f"| {kind} | {sum(c.values())} | {c['one line, exit 2, nothing written']} | {len(examples[kind])} |")
    lines += ["", "Found by the first run (fixed; the test covers each kind): `budget.steps: 1e30` (the proxy's own "
              "`steps` field had no upper bound), `trials: 1e30`, `lr: .inf`, `temperature: 1e60`, `beta: 1e30`, "
              "`batch_size: 1e60` and `macs_ratio: 1e30` were accepted and would have started a search. Numbers in "
              "run files are now finite, and counts, rates, weights and ratios have upper bounds (steps <= 1e9, "
              "batch <= 2^20, lr <= 10, loss weights and temperatures <= 1000, ratios <= 1e6, trials <= 1e6).", "",
              "### One example of each distinct message (F = the project folder)", "",
              "| kind | where: message |", "|---|---|"]
    for kind in KINDS:
        for i, ex in enumerate(sorted(examples[kind].values())):
            lines.append(f"| {kind if i == 0 else ''} | ``{ex[:220]}`` |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:16]))


if __name__ == "__main__":
    main()
