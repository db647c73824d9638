"""Trust-report calibration: does the tau the trust report prints predict the tau against full
training of the same students?

Uses a proxy-fidelity cache (``bench/proxy_fidelity.py``: students drawn uniformly from a
space, each with the search's default proxy at 150 steps (``p@150``), the trust report's
longer run both ways (``p@300``: 300 steps from the initialisation; ``pc@150``: the proxy's
150 steps continued for 150 more from its weights), and ``full@s0..2``, full KD training from
three init seeds, scored on the test split). Every way of training the longer run (``p@300``,
``pc@150``, and ``auto``, the report's default: continued when the picked students are all of
one family) is judged on the same virtual searches. Each *virtual search* draws ``--students`` of them without
replacement, computes their Pareto front (proxy accuracy up, MACs and params down), picks the
students the trust report would re-train (:func:`nas_student.search.trust.pick`, the default
``max_front`` and ``off_front``), and records

* the trust report's tau: proxy accuracy vs the longer run's accuracy of the picked students, and
  its verdict (:func:`nas_student.search.trust.verdict`);
* the true tau: proxy accuracy vs the mean full-training test accuracy of the same students;
* whether the front's best proxy student is the front's best after full training.

No training: every number comes from the cache. Writes results/records/trust_calibration.md.

    python bench/trust_calibration.py --cache /tmp/nas_student_bench/proxy_fidelity_mnist1d_cnn
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from nas_student.config import TrustSettings
from nas_student.results.pareto import pareto_front
from nas_student.search.trust import (HIGH, MIN_FRONT, MIN_OFF, MODERATE, continues, long_runs_s, n_families,
                                      pick_within, projected_tau, search_training_s, verdict)


#: the validation split the cached proxy accuracies were scored on (mnist1d: 2,000 signals)
VAL_SIZE = 2000


def long_runs(fresh: str = "p@300", continued: str = "pc@150") -> dict[str, tuple[str, list[str]]]:
    """The trust report's ways of training the longer run: {name: (description, measurements)};
    ``fresh`` from the initialisation (``p@S``), ``continued`` from the proxy's weights
    (``pcN@150``: N more steps; ``pc@150``: 150 more)."""
    more = continued.split("@")[0][2:] or "150"
    return {fresh: (f"{fresh.split('@')[1]} steps from the initialisation", [fresh]),
            continued: (f"the proxy's 150 steps continued for {more} more from its weights", [continued]),
            "auto": (f"`start: auto`: `{continued}` when the picked students are all of one family, else `{fresh}`",
                     [fresh, continued])}


def named(way: str, proxy: str) -> str:
    """A measurement name of proxy ``p`` (``p@300``, ``pc@150``) for another proxy's runs (``fl``:
    ``fl@300``, ``flc@150``)."""
    return way.replace("p", proxy, 1)


def load(cache: Path, ways: dict, proxy: str = "p", target: str = "test") -> pd.DataFrame:
    students = json.loads((cache / "students.json").read_text())["students"]
    rows = []
    for i, s in enumerate(students):
        f = cache / f"{s['hash']}.json"
        m = json.loads(f.read_text()) if f.exists() else {}
        full = [m[k][f"{target}_accuracy"] for k in m if k.startswith("full@s")]
        needs = [named(k, proxy) for k in ["p@150", *ways["auto"][1]]]
        if any(k not in m for k in needs) or not full:
            continue
        rows.append({"trial": i, "arch_hash": s["hash"], "macs": s["macs"], "params": s["params"],
                     "accuracy": m[named("p@150", proxy)]["val_accuracy"],
                     **{k: m[named(k, proxy)]["val_accuracy"] for k in ways["auto"][1]},
                     "arch": s["arch"] if isinstance(s["arch"], str) else json.dumps(s["arch"]),
                     "full": statistics.mean(full), "feasible": True, "duplicate_of": None,
                     "train_s": m[named("p@150", proxy)].get("train_s", float("nan"))})  # older caches: none
    return pd.DataFrame(rows)


def share(picked: pd.DataFrame, trials: pd.DataFrame, start: str, steps: int) -> float:
    """The picked students' longer runs as a share of the virtual search's training time
    (estimated from the cached proxy runs' times, as the report's budget is)."""
    total = search_training_s(trials)
    return long_runs_s(picked, start, 150, steps) / total if total else float("nan")


def virtual_search(pool: pd.DataFrame, n: int, rng: np.random.Generator, settings: TrustSettings,
                   long: str, ways: dict) -> dict:
    trials = pool.iloc[rng.choice(len(pool), size=min(n, len(pool)), replace=False)].reset_index(drop=True)
    front = pareto_front(trials, ("accuracy", "macs", "params"))
    fresh, continued = ways["auto"][1]
    start = {fresh: "init", continued: "proxy"}.get(long, "auto")
    # the budget's estimate: each student's proxy time per step x the steps its longer run adds
    picked = pick_within(trials, front, settings.model_copy(update={"start": start}), 150, int(fresh.split("@")[1]))
    if long == "auto":
        picked = picked.assign(long=picked[continued] if continues(picked, "auto") else picked[fresh])
    else:
        picked = picked.assign(long=picked[long])
    trust_tau = float(stats.kendalltau(picked["accuracy"], picked["long"])[0])
    proj_tau = projected_tau(picked["accuracy"].tolist(), picked["long"].tolist(), VAL_SIZE)
    true_tau = float(stats.kendalltau(picked["accuracy"], picked["full"])[0])
    fr = picked[picked["on_front"]]
    best_kept = bool(fr.loc[fr["accuracy"].idxmax(), "full"] >= fr["full"].max())
    return {"trust_tau": trust_tau, "proj_tau": proj_tau, "true_tau": true_tau,
            "measured only": verdict(trust_tau, len(picked)).split(":")[0],
            "with projection": verdict(trust_tau, len(picked), proj_tau, n_families(picked)).split(":")[0],
            "best_kept": best_kept, "picked": len(picked), "share": share(picked, trials, start, int(fresh.split("@")[1]))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--students", type=int, default=30, help="trained students per virtual search")
    ap.add_argument("--searches", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/records/trust_calibration.md")
    ap.add_argument("--proxy", default="p", help="the proxy's measurements: p (p@150, p@300, pc@150) or another "
                    "variant measured the same ways, e.g. fl (fl@150, fl@300, flc@150: the per-family lr)")
    ap.add_argument("--fresh", default="p@300", help="the longer run from the initialisation (p@S)")
    ap.add_argument("--continued", default="pc@150", help="the longer run continued from the proxy (pcN@150)")
    ap.add_argument("--max-front", type=int, default=TrustSettings().max_front)
    ap.add_argument("--off-front", type=int, default=TrustSettings().off_front)
    ap.add_argument("--budget", type=float, default=TrustSettings().budget,
                    help="the longer runs' share of the search's training time (0: no limit)")
    ap.add_argument("--target", choices=("test", "bigtest"), default="test",
                    help="full training scored on the task's test split, or on the fresh signals of "
                         "proxy_fidelity.py --big-test")
    args = ap.parse_args()
    ways = long_runs(args.fresh, args.continued)
    settings = TrustSettings(max_front=args.max_front, off_front=args.off_front, budget=args.budget or None)
    # students with both longer runs: the ways compared on the same draws
    pool = load(Path(args.cache), ways, args.proxy, args.target)
    by_way = {}
    for way in ways:
        rng = np.random.default_rng(args.seed)
        by_way[way] = pd.DataFrame([virtual_search(pool, args.students, rng, settings, way, ways)
                                    for _ in range(args.searches)])
    extra = "".join(f" --{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                    if k in ("fresh", "continued", "max_front", "off_front", "budget", "target")
                    and v != ap.get_default(k))
    lines = [
        "# Trust report vs full training (calibration)",
        "",
        f"Command: `python bench/trust_calibration.py --cache {args.cache} --students {args.students} "
        f"--searches {args.searches} --seed {args.seed}{'' if args.proxy == 'p' else ' --proxy ' + args.proxy}{extra}`",
        "",
        f"Pool: {len(pool)} students with the proxy (`{named('p@150', args.proxy)}`), both longer runs of the trust report and full "
        f"training (mean of its seeds) cached. {args.searches} virtual searches of {args.students} trained students "
        "each (drawn uniformly from the pool: a TPE search concentrates its trials more; the same draws for every "
        f"way of training the longer run); the trust report's own picking rule and verdict thresholds (high >= "
        f"{HIGH}, moderate >= {MODERATE}). *True tau*: the proxy against full training, on the same picked students. "
        f"Picked: up to {settings.max_front} students along the front and {settings.off_front} off it"
        + (f", fewer (to {MIN_FRONT} + {MIN_OFF}) where their longer runs would take over {settings.budget:.0%} of the "
           "search's training time (`budget`). " if settings.budget else ". ") +
        "The longer run: " + "; ".join(f"`{w}` {d}" for w, (d, _) in ways.items()) + ".",
        "",
        *(f"- `{w}`: **trust report vs full training: Kendall tau = "
          f"{stats.kendalltau(r[['trust_tau', 'proj_tau']].min(axis=1), r['true_tau'])[0]:.2f}** with the projected "
          f"ranking (the verdict's tau: the lower of measured and projected), "
          f"{stats.kendalltau(r['trust_tau'], r['true_tau'])[0]:.2f} with the measured tau alone (over the virtual "
          "searches, between the tau the report judges by and the true tau)" for w, r in by_way.items()),
        "",
        "| longer run | verdict rule | verdict printed | searches | its tau (median) | true tau median [10th, 90th pct] | "
        f"true tau >= {HIGH} | front's best kept |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for way, runs in by_way.items():
        for rule in ("measured only", "with projection"):
            for name, g in runs.groupby(rule):
                judged = g["trust_tau"] if rule == "measured only" else g[["trust_tau", "proj_tau"]].min(axis=1)
                q = g["true_tau"].quantile([0.1, 0.5, 0.9]).tolist()
                lines.append(f"| {way} | {rule} | {name} | {len(g)} | {judged.median():.2f} | {q[1]:.2f} [{q[0]:.2f}, "
                             f"{q[2]:.2f}] | {(g['true_tau'] >= HIGH).mean():.0%} | {g['best_kept'].mean():.0%} |")
    lines += ["", *(f"- `{w}`: students picked: median {r['picked'].median():.0f} (range {r['picked'].min()}-"
                    f"{r['picked'].max()}); their longer runs, estimated from the proxy runs' times: median "
                    f"{r['share'].median():.0%} of the virtual search's training time (range {r['share'].min():.0%}-"
                    f"{r['share'].max():.0%})" for w, r in by_way.items())]
    runs = by_way["auto"]
    q = runs["true_tau"].quantile([0.1, 0.5, 0.9]).tolist()
    lines += ["", f"All searches (`auto`): trust tau median {runs['trust_tau'].median():.2f}; true tau median {q[1]:.2f} "
              f"[{q[0]:.2f}, {q[2]:.2f}]; front's best kept in {runs['best_kept'].mean():.0%}."]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
