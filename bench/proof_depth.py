"""Steps by depth against equal steps, in real searches, fully trained: more seeds than
``proof_mnist1d.py`` runs, at the budgets asked.

For each budget (a fraction of the teacher's MACs; params at most 1/10) and search seed: the
default search (`--focus best`, TPE, 40 students, two processes, every student 150 proxy steps)
and the same search with steps by depth (``--depth-power 0.5``), each search's most
accurate front student then fully trained (the full recipe, init seed = search seed) and
scored on the test split. Searches and trainings are cached in the proof's JSON under the same
keys as ``proof_mnist1d.py`` (so its seeds 0-2 are reused: there the equal-steps searches ran
sessions before the others); otherwise the two arms of a seed run back to back.

    python bench/proof_depth.py --budgets 30 --seeds 0 1 2 3 4 5 --out results/records/proof_depth.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import proof_mnist1d as proof  # noqa: E402

from nas_student.cost import profile  # noqa: E402
from nas_student.distill.recipe import DEPTH_POWER, ProxyRecipe  # noqa: E402
from nas_student.distill import predict  # noqa: E402
from nas_student.families.base import describe  # noqa: E402
from nas_student.tasks import load_task  # noqa: E402

ARMS = {"equal steps": ("tpe-accuracy", False), "steps by depth": ("tpe-accuracy-depth", True)}
#: ``--arm ref1``: steps by depth with no student below 150 steps (212 at depth 2) in place of the rule
REF1 = ("ref1", ProxyRecipe(steps=212, depth_power=DEPTH_POWER))
#: ``--arm eq212``: the control for ref1 at about its cost: every student 212 steps (no rule)
EQ212 = ("eq212", ProxyRecipe(steps=212))
OTHERS = {"ref1": REF1, "eq212": EQ212}
#: what the second arm is, for the record
ARM_TEXT = {"sqrt": "`--depth-power 0.5` (106 steps at depth 1, 150 at 2, 212 at 4).",
            "ref1": "no student below 150 steps (`--steps 212 --depth-power 0.5`: 150 at depth 1, 212 at 2, 300 at 4).",
            "eq212": "equal steps, more of them: every student 212 steps (`--steps 212`), about ref1's cost; "
                     "the column `steps by depth` holds this arm."}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budgets", type=int, nargs="+", default=[30], help="1/B of the teacher's MACs")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    ap.add_argument("--cache", type=Path, default=proof.CACHE)
    ap.add_argument("--out", type=Path, default=Path("results/records/proof_depth.md"))
    ap.add_argument("--arm", choices=["sqrt", *OTHERS], default="sqrt", help="the second arm: the square "
                    "root at depth 2 (--depth-power 0.5), ref1 (no student below 150 steps: --steps 212 "
                    "--depth-power 0.5), or eq212 (every student 212 steps, ref1's cost without the rule)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cache = proof.Cache(args.cache)
    task = load_task("mnist1d", seed=0)
    soft = predict(task.teacher, task.train.x)
    t_cost = profile(task.teacher, task.io.example_input())
    root = Path("/tmp/nas-bench-proof")
    rows = []
    for b in args.budgets:
        for s in args.seeds:
            for arm, (key, by_depth) in ARMS.items():
                other = OTHERS.get(args.arm) if by_depth else None
                key = f"{key}-{other[0]}" if other else key
                found = cache.get(f"search/{key}/1/{b}/s{s}",
                                  lambda: proof.our_search(b, s, "tpe", root, ("accuracy",), by_depth=by_depth,
                                                           proxy=other))
                best = max(found["front"], key=lambda r: (r["accuracy"], -r["macs"]))
                spec = {"kind": "arch", "arch": best["arch"]}
                full = cache.get(f"train/{proof.key_of(spec)}/s{s}/KD",
                                 lambda: proof.full_train(task, soft, spec, s, "KD"))
                rows.append({"budget": b, "seed": s, "arm": arm, "proxy": best["accuracy"], "full": full["accuracy"],
                             "macs": best["macs"] / t_cost.macs, "student": describe(best["arch"])})
    args.out.write_text(report(rows, args) + "\n")
    print(report(rows, args))


def report(rows: list[dict], args) -> str:
    lines = ["# Steps by depth against equal steps, real searches, fully trained", "",
             f"Command: `python bench/proof_depth.py --budgets {' '.join(map(str, args.budgets))} --seeds "
             f"{' '.join(map(str, args.seeds))}" + (f" --arm {args.arm} --out {args.out}" if args.arm != "sqrt" else "")
             + "`", "",
             "The second arm: " + ARM_TEXT[args.arm], "",
             "mnist1d, `mnist1d-cnn`, the default search (TPE, `--focus best`, 40 students, two processes), "
             "params <= 1/10 of the teacher's. Each search's most accurate front student (`--recommend best`) "
             "fully trained once (3000 steps, the full recipe, init seed = search seed), test accuracy on 4,000 "
             "signals. Proxy accuracies of the two arms are not comparable (other steps).", ""]
    for b in args.budgets:
        lines += [f"## 1/{b} of the teacher's MACs", "",
                  "| seed | equal steps: full % (proxy %) | steps by depth: full % (proxy %) | depth - equal, points | "
                  "students (equal / depth) |", "|---:|---:|---:|---:|---|"]
        diffs = []
        for s in args.seeds:
            eq, dp = (next(r for r in rows if (r["budget"], r["seed"], r["arm"]) == (b, s, a)) for a in ARMS)
            diffs.append(100 * (dp["full"] - eq["full"]))
            lines.append(f"| {s} | {100 * eq['full']:.2f} ({100 * eq['proxy']:.1f}) | {100 * dp['full']:.2f} "
                         f"({100 * dp['proxy']:.1f}) | {diffs[-1]:+.2f} | `{eq['student']}` / `{dp['student']}` |")
        eqs = [100 * r["full"] for r in rows if r["budget"] == b and r["arm"] == "equal steps"]
        dps = [100 * r["full"] for r in rows if r["budget"] == b and r["arm"] == "steps by depth"]
        lines += ["", f"- 1/{b}: equal steps median {statistics.median(eqs):.2f} %, steps by depth median "
                  f"{statistics.median(dps):.2f} %; difference per seed median {statistics.median(diffs):+.2f} points "
                  f"(range {min(diffs):+.2f} to {max(diffs):+.2f}; depth ahead on {sum(d > 0 for d in diffs)} of "
                  f"{len(diffs)} seeds; {_signed_rank(diffs)})", ""]
    return "\n".join(lines)


def _signed_rank(diffs: list[float]) -> str:
    """The paired test of the per-seed differences (Wilcoxon signed-rank, two-sided)."""
    from scipy.stats import wilcoxon

    if len(diffs) < 6 or not any(diffs):
        return "too few seeds for a signed-rank test"
    return f"Wilcoxon signed-rank p = {wilcoxon(diffs).pvalue:.2f}, two-sided"


if __name__ == "__main__":
    main()
