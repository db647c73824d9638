"""Proxy cost: wall time of the search's default proxy vs full distillation, side by side.

For the first ``--students`` students drawn as ``bench/proxy_fidelity.py`` draws them, trains
each with the default proxy (``ProxyRecipe``) and with the full recipe (``train``'s default:
``Recipe``, 20x the proxy's steps), alternating, ``--repeats`` times, one CPU thread, and
reports the median time of each and the median ratio. Timing covers the whole ``train()`` call
(setup included), not the evaluation. Writes results/records/proxy_cost.md.

    python bench/proxy_cost.py --students 6 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from nas_student.config import RunConfig
from nas_student.distill import ProxyRecipe, train
from nas_student.families import build
from nas_student.families.base import describe
from nas_student.search.candidates import draw
from nas_student.search.context import prepare
from nas_student.seeds import student_seed
from nas_student.full_training import default_recipe


def timed(ctx, arch: dict, h: str, recipe) -> float:
    seed = student_seed(h, 0)
    torch.manual_seed(seed)
    model = build(arch, ctx.task.io)
    t0 = time.perf_counter()
    train(model, ctx.task.train.x, ctx.task.train.y, recipe, teacher_logits=ctx.teacher_train_logits, seed=seed)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="digits")
    ap.add_argument("--space", default="digits-cnn")
    ap.add_argument("--students", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="results/records/proxy_cost.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ctx = prepare(RunConfig(task=args.task, space=args.space, device="cpu"))
    proxy = ProxyRecipe()
    full = default_recipe(proxy)
    rows = []
    for c in draw(ctx.space, ctx.task.io, ctx.bounds, args.students, seed=0):
        p, f = [], []
        for _ in range(args.repeats):
            p.append(timed(ctx, c.arch, c.hash, proxy))
            f.append(timed(ctx, c.arch, c.hash, full))
        rows.append((describe(c.arch), statistics.median(p), statistics.median(f)))
        print(f"{rows[-1][0]}: proxy {rows[-1][1]:.2f} s, full {rows[-1][2]:.2f} s", flush=True)
    ratios = [p / f for _, p, f in rows]
    lines = [
        "# Proxy cost: default proxy vs full distillation (wall time, side by side)", "",
        f"Command: `python bench/proxy_cost.py --students {args.students} --repeats {args.repeats}` "
        f"({args.task} / {args.space}; one CPU thread; each student trained alternately with both "
        "recipes; medians of the repeats).", "",
        f"Proxy: {proxy.describe()}, lr {proxy.lr:g}. Full: {full.describe()}, lr {full.lr:g}.", "",
        "| student | proxy s | full s | proxy / full |", "|---|---:|---:|---:|",
        *(f"| {d} | {p:.2f} | {f:.2f} | {p / f:.1%} |" for d, p, f in rows), "",
        f"**Median proxy / full: {statistics.median(ratios):.1%}** (in steps: {proxy.steps / full.steps:.1%}).",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
