"""Which students does a proxy rank too high or too low? Reads a ``proxy_fidelity.py`` cache.

For each proxy key (``p@150``, ``b256@150``, ...): its Kendall tau against the target over all
students and over the top half by target, and the mean rank error (the proxy's rank minus the
target's, 1 = worst; positive: the proxy ranks the student above where full training puts it)
of the students grouped by what their architecture has: stage count, total depth, downsampling,
block kinds, activation, residual. A proxy without a bias has mean errors near 0 in every group.

    python bench/fidelity_bias.py --cache /tmp/nas_student_bench/proxy_fidelity_mnist1d_cnn \
        --keys p@150 p-s1@150 p-s2@150 b256@150 --target bigtest --out results/records/fidelity_bias_mnist1d_cnn.md
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, rankdata

FEATURES = {
    "stages": lambda a: str(len(a["stages"])),
    "total depth": lambda a: str(sum(s["depth"] for s in a["stages"])),
    "downsampling": lambda a: "/".join(sorted({s["downsample"] for s in a["stages"]})),
    "blocks": lambda a: "/".join(sorted({s["block"] for s in a["stages"]})),
    "activation": lambda a: str(a["activation"]),
    "residual": lambda a: str(a["residual"]),
}


def load(cache: Path, target: str, max_macs: float | None = None) -> tuple[list[dict], np.ndarray, dict[str, dict]]:
    """(students, target per student, the cached measurements per student hash); only the
    students of at most ``max_macs`` MACs when given."""
    students = [s for s in json.loads((cache / "students.json").read_text())["students"]
                if max_macs is None or s["macs"] <= max_macs]
    runs = {s["hash"]: json.loads((cache / f"{s['hash']}.json").read_text()) for s in students}
    field = "bigtest_accuracy" if target == "bigtest" else "test_accuracy"
    full = [[v[field] for k, v in runs[s["hash"]].items() if k.startswith("full@s")] for s in students]
    return students, np.array([np.mean(f) for f in full]), runs


def report(cache: Path, keys: list[str], target: str, max_macs: float | None = None) -> str:
    students, tgt, runs = load(cache, target, max_macs)
    top = rankdata(tgt) > len(tgt) / 2
    lines = [f"# Where the proxy's order differs from full training: `{cache.name}`", "",
             f"Command: `python bench/fidelity_bias.py --cache {cache} --keys {' '.join(keys)} --target {target}"
             + (f" --max-macs {max_macs:g}" if max_macs else "") + "`", "",
             f"{len(students)} students" + (f" (those of at most {max_macs:,.0f} MACs)" if max_macs else "") + f"; target: the mean {target} accuracy of their full runs. Rank error: "
             "the proxy's rank minus the target's (rank 1 = worst), mean over the students in a group; "
             "positive = ranked above where full training puts them.", "",
             "| proxy | tau, all | tau, top half |", "|---|---:|---:|"]
    errors = {}
    for key in keys:
        score = np.array([runs[s["hash"]][key]["val_accuracy"] for s in students])
        errors[key] = rankdata(score) - rankdata(tgt)
        lines.append(f"| {key} | {kendalltau(score, tgt).statistic:.3f} | "
                     f"{kendalltau(score[top], tgt[top]).statistic:.3f} |")
    for name, feature in FEATURES.items():
        groups: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(students):
            groups[feature(s["arch"])].append(i)
        order = sorted(groups, key=lambda g: (len(g), g))
        lines += ["", f"**{name}** (students per group: "
                  + ", ".join(f"{g} {len(groups[g])}" for g in order) + ")", "",
                  "| proxy | " + " | ".join(order) + " |", "|---|" + "---:|" * len(order)]
        for key in keys:
            lines.append(f"| {key} | " + " | ".join(f"{np.mean(errors[key][groups[g]]):+.1f}" for g in order) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, required=True, help="a proxy_fidelity.py --cache-dir")
    ap.add_argument("--keys", nargs="+", default=["p@150"], help="cached proxy measurements to compare")
    ap.add_argument("--target", choices=["test", "bigtest"], default="bigtest")
    ap.add_argument("--max-macs", type=float, help="only the students of at most this many MACs (a tighter "
                    "budget's students, e.g. 63061 for 1/30 of the mnist1d teacher)")
    ap.add_argument("--out", type=Path, help="write the report here (.md) as well as printing it")
    args = ap.parse_args()
    text = report(args.cache, args.keys, args.target, args.max_macs)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
