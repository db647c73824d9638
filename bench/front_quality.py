"""Which proxy picks the better front? Fronts chosen by each proxy, judged by full training.

Uses a proxy-fidelity cache (``bench/proxy_fidelity.py``: students drawn uniformly from a
space, each with several proxies and full KD training from >= 1 init seed). Each *virtual
search* draws ``--students`` of them; for every proxy, the front it would report (its
validation accuracy up, MACs and params down, :func:`nas_student.results.pareto.pareto_front`)
is scored with the students' full-training test accuracy (the mean over seeds):

* the front's hypervolume (``nas_student.results.hypervolume``; costs scaled by the run's
  bounds, accuracy as 1 - accuracy, reference (1, 1, 1));
* the full-training accuracy of the student ``--recommend best`` would pick (the front's best
  by the proxy), and its regret against the best student of the draw.

The same draws for every proxy, so the comparison is paired. No training.

    python bench/front_quality.py --cache /tmp/nas_student_bench/proxy_fidelity_mnist1d_mixed \
        --proxies p@150,p-s1@150,p-s2@150,fl@150,fl-s1@150,fl-s2@150
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import pandas as pd

from nas_student.results.hypervolume import hypervolume, normalise
from nas_student.results.pareto import pareto_front

OBJS = ("accuracy", "macs", "params")


def parts(proxy: str) -> tuple[str, str | None, set[str]]:
    """A proxy's measurements: ``m`` alone, or ``base+other:fam1/fam2`` (``other`` for students
    of those families, ``base`` for the rest: a per-family step budget, e.g.
    ``fl@150+fl@300:rnn/transformer``)."""
    if "+" not in proxy:
        return proxy, None, set()
    base, rest = proxy.split("+", 1)
    other, fams = rest.split(":", 1)
    return base, other, set(fams.split("/"))


def value(m: dict, family: str | None, proxy: str) -> float:
    base, other, fams = parts(proxy)
    return m[other if other is not None and family in fams else base]["val_accuracy"]


def load(cache: Path, proxies: list[str], target: str = "test") -> tuple[pd.DataFrame, dict[str, float]]:
    data = json.loads((cache / "students.json").read_text())
    rows = []
    for i, s in enumerate(data["students"]):
        f = cache / f"{s['hash']}.json"
        m = json.loads(f.read_text()) if f.exists() else {}
        full = [v[f"{target}_accuracy"] for k, v in m.items() if k.startswith("full@s")]
        needed = {x for p in proxies for x in parts(p)[:2] if x is not None}
        if not full or any(x not in m for x in needed):
            continue
        arch = s["arch"] if isinstance(s["arch"], dict) else json.loads(s["arch"])
        rows.append({"trial": i, "family": arch.get("family"), "macs": s["macs"], "params": s["params"],
                     "full": statistics.mean(full), "feasible": True, "duplicate_of": None,
                     **{p: value(m, arch.get("family"), p) for p in proxies}})
    return pd.DataFrame(rows), data["bounds"]


def judge(draw: pd.DataFrame, proxy: str, bounds: dict[str, float]) -> dict[str, float]:
    front = pareto_front(draw.assign(accuracy=draw[proxy]), OBJS)
    true = front.assign(accuracy=front["full"])
    pick = front.loc[front["accuracy"].idxmax()]
    return {"hv": hypervolume(normalise(true, OBJS, bounds)), "best": float(pick["full"]),
            "regret": float(draw["full"].max() - pick["full"]), "front": len(front)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--proxies", required=True, help="measurement names, comma-separated (e.g. p@150,fl@150; "
                    "fl@150+fl@300:rnn/transformer: fl@300 for those families' students, fl@150 for the rest)")
    ap.add_argument("--groups", default="p=p@150,p-s1@150,p-s2@150;fl=fl@150,fl-s1@150,fl-s2@150",
                    help='proxies averaged as one ("name=a,b,c;..."): each init seed is a proxy run')
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--searches", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", choices=("test", "bigtest"), default="test",
                    help="full training scored on the task's test split, or on the fresh signals of "
                         "proxy_fidelity.py --big-test")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    proxies = [p for p in args.proxies.split(",") if p]
    pool, bounds = load(Path(args.cache), proxies, args.target)
    rng = np.random.default_rng(args.seed)
    res = {p: [] for p in proxies}
    for _ in range(args.searches):
        draw = pool.iloc[rng.choice(len(pool), size=min(args.students, len(pool)), replace=False)]
        for p in proxies:
            res[p].append(judge(draw, p, bounds))
    frames = {p: pd.DataFrame(v) for p, v in res.items()}
    lines = [
        "# Fronts chosen by each proxy, judged by full training",
        "",
        f"Command: `python bench/front_quality.py --cache {args.cache} --proxies {args.proxies} "
        f"--students {args.students} --searches {args.searches} --seed {args.seed} --target {args.target}`",
        "",
        f"Pool: {len(pool)} students ({', '.join(f'{k}: {v}' for k, v in pool['family'].value_counts().items())}), "
        f"each with every proxy and full training ({args.target} accuracy, mean over its seeds). "
        f"{args.searches} virtual searches of {args.students} students drawn uniformly (the same draws for "
        "every proxy). *HV*: the "
        "hypervolume of the proxy's front with each student's full-training accuracy (costs scaled by the bounds). "
        "*Best*: the full-training accuracy of the front's best student by the proxy (`--recommend best`); "
        "*regret*: the draw's best full-training accuracy minus it.",
        "",
        "| proxy | HV median | HV mean | best, median | regret, median | regret, mean | front size, median |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(f"| {p} | {f['hv'].median():.4f} | {f['hv'].mean():.4f} | {f['best'].median():.4f} | "
          f"{f['regret'].median():.4f} | {f['regret'].mean():.4f} | {f['front'].median():.0f} |"
          for p, f in frames.items()),
    ]
    groups = {g.split("=")[0]: g.split("=")[1].split(",") for g in args.groups.split(";") if g}
    groups = {g: ms for g, ms in groups.items() if all(m in frames for m in ms)}
    if len(groups) >= 2:
        names = list(groups)
        lines += ["", "Per proxy (its init seeds pooled: each seed a separate run over the same draws):", "",
                  "| proxy | runs | HV mean | regret mean | draws where its HV is higher / lower than " + names[0]
                  + "'s (same seed) | mean HV difference |",
                  "|---|---:|---:|---:|---:|---:|"]
        base = groups[names[0]]
        for g in names:
            hv = pd.concat([frames[m]["hv"] for m in groups[g]])
            rg = pd.concat([frames[m]["regret"] for m in groups[g]])
            diff = [frames[m]["hv"].to_numpy() - frames[b]["hv"].to_numpy() for m, b in zip(groups[g], base)]
            up, down = np.mean([(d > 1e-12).mean() for d in diff]), np.mean([(d < -1e-12).mean() for d in diff])
            lines.append(f"| {g} | {len(groups[g])} | {hv.mean():.4f} | {rg.mean():.4f} | "
                         f"{'-' if g == names[0] else f'{up:.0%} / {down:.0%}'} | "
                         f"{'-' if g == names[0] else f'{np.mean([d.mean() for d in diff]):+.5f}'} |")
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
