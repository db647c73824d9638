"""What the trust report costs against the search it checks, both ways of training its students,
side by side on the same search.

    python bench/trust_cost.py --seeds 3 [--space mnist1d-cnn]

For each search seed: the default search (`nas-student search` with no options but the seed,
`--no-trust`), then its trust report twice on the same trials and front: `start: proxy`
(each student continues its proxy run from the kept weights) and `start: init` (re-trained
from its initialisation, what the report did before). Both on the search's processes. Reports
each report's wall time as a share of the search's wall time and of its training time (the
trained trials' summed training seconds over the processes that ran them), its own training
seconds against the search's (what the report's `budget` bounds), its tau, projected tau and
verdict. Writes results/records/trust_cost.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import optuna

from nas_student.config import RunConfig, SearchSettings, TrustSettings
from nas_student.search import pool, run_search, trust


def one(seed: int, space: str | None, trials: int) -> dict:
    base = RunConfig() if space is None else RunConfig(space=space)
    with tempfile.TemporaryDirectory() as d:
        cfg = base.model_copy(update={"results_dir": d, "search": base.search.model_copy(
            update={"seed": seed, "trials": trials, "trust": TrustSettings(enabled=False)})})
        t0 = time.perf_counter()
        out = run_search(cfg)
        wall = time.perf_counter() - t0
        trained = out.trials[out.trials["feasible"] & out.trials["duplicate_of"].isna()]
        workers = pool.resolve(cfg.execution.workers, out.ctx.device, cfg.execution.backend)
        row = {"seed": seed, "search_s": wall, "workers": workers, "trained": len(trained),
               "train_s": float(trained["train_s"].sum()) / workers}
        for start in ("proxy", "init"):
            (out.run_dir / "trust.json").unlink(missing_ok=True)
            c = cfg.model_copy(update={"search": cfg.search.model_copy(update={"trust": TrustSettings(start=start)})})
            rep = trust.run_trust(dataclasses.replace(out.ctx, cfg=c), out.trials, out.front, out.run_dir)
            row[start] = {"s": rep.wall_s, "tau": rep.tau, "train_share": rep.training_s / (rep.search_training_s or float("nan")), "proj": rep.projected_tau,
                          "verdict": rep.verdict.split(":")[0], "n": len(rep.students),
                          "continued": sum(bool(s["continued"]) for s in rep.students)}
        print(row, flush=True)
        return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--space", default=None, help="default: the default search's space")
    ap.add_argument("--trials", type=int, default=SearchSettings().trials)
    ap.add_argument("--out", default="results/records/trust_cost.md")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = [one(s, args.space, args.trials) for s in range(args.seeds)]
    cfg = RunConfig() if args.space is None else RunConfig(space=args.space)
    med = lambda f: statistics.median(f(r) for r in rows)  # noqa: E731
    lines = [
        "# Trust report: its cost against the search, continued vs re-trained",
        "",
        f"Command: `python bench/trust_cost.py --seeds {args.seeds}"
        f"{'' if args.trials == SearchSettings().trials else f' --trials {args.trials}'}"
        f"{'' if args.space is None else ' --space ' + args.space}` (the default search: {cfg.task}, "
        f"{cfg.space}, {args.trials} trials, {cfg.budget.describe()}; search seeds 0-{args.seeds - 1}; "
        "quiet machine, 2 cores). Each search once, then its trust report both ways on the same trials and "
        "front, on the search's processes. *Training s*: the trained trials' summed training time over the "
        "processes that ran them.",
        "",
        "| seed | search s | training s | trained | report | report s | share of search wall | share of training | "
        "its training s / the search's | students (continued) | tau | projected tau | verdict |",
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        for start in ("proxy", "init"):
            x = r[start]
            lines.append(f"| {r['seed']} | {r['search_s']:.1f} | {r['train_s']:.1f} | {r['trained']} | {start} | "
                         f"{x['s']:.1f} | {x['s'] / r['search_s']:.0%} | {x['s'] / r['train_s']:.0%} | {x['train_share']:.0%} | "
                         f"{x['n']} ({x['continued']}) | {x['tau']:.2f} | {x['proj']:.2f} | {x['verdict']} |")
    lines += [
        "",
        f"**trust report (continued) / search training time: median {med(lambda r: r['proxy']['s'] / r['train_s']):.0%}** "
        f"(re-trained: {med(lambda r: r['init']['s'] / r['train_s']):.0%}); of the search's wall time: "
        f"{med(lambda r: r['proxy']['s'] / r['search_s']):.0%} (re-trained "
        f"{med(lambda r: r['init']['s'] / r['search_s']):.0%}). Continued / re-trained wall time: median "
        f"{med(lambda r: r['proxy']['s'] / r['init']['s']):.2f}x over {len(rows)} seeds. The report's training "
        f"seconds (summed over its processes) against the search's, what its `budget` "
        f"({TrustSettings().budget:.0%}) bounds: median {med(lambda r: r['proxy']['train_share']):.0%} continued "
        f"(re-trained {med(lambda r: r['init']['train_share']):.0%}).",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
