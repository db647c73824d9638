"""One multi-task student vs two single-task students (the built-in ``mnist1d-multitask``:
digit + shear on the same MNIST-1D signals, one teacher per task).

Each single-task student (the same architecture, one task's head) is distilled from its own
task's teacher; the multi-task student (a shared trunk, one head per task) from both at once,
each head from its teacher (``nas_student.distill.multitask``). Same recipe (the product's full
training, ``default_recipe(ProxyRecipe())``), steps and seeds; one CPU thread; scored on the
4,000 test signals. Students:

- ``small``: under 1/10 of one teacher (the budget each single-task student would have);
  the multi-task one costs half of the two single-task ones together.
- ``wide``: a multi-task student under 1/10 of the two teachers' sum (what the search allows
  with ``price_against: sum``, the default), about the cost of the two small ones together.
- The small multi-task student trained with CE only (the labels of both tasks), to see what
  distillation gives it.

Finished runs are kept in ``--cache`` (a rerun resumes). Writes results/records/multi_task.{md,json}.

    python bench/multi_task.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from nas_student.cost.profile import profile
from nas_student.distill import ProxyRecipe, evaluate, predict, train
from nas_student.families import build
from nas_student.families.base import ModelIO, describe
from nas_student.full_training import default_recipe
from nas_student.tasks import load_task

SMALL = {"family": "cnn1d", "stem_width": 16, "stem_kernel": 5, "norm": "batch", "activation": "relu", "residual": True,
         "stages": [{"depth": 2, "width": 24, "kernel": 5, "downsample": "stride"},
                    {"depth": 1, "width": 32, "kernel": 3, "downsample": "stride"}]}
WIDE = {"family": "cnn1d", "stem_width": 24, "stem_kernel": 5, "norm": "batch", "activation": "relu", "residual": True,
        "stages": [{"depth": 2, "width": 32, "kernel": 5, "downsample": "stride"},
                   {"depth": 2, "width": 48, "kernel": 3, "downsample": "stride"}]}


def mean_sd(xs: list[float], sign: bool = False, digits: int = 4) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):{'+' if sign else ''}.{digits}f} ± {sd:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cache", default="/tmp/nas_student_bench/multi_task.json")
    ap.add_argument("--out", default="results/records/multi_task")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    task = load_task("mnist1d-multitask", seed=0)
    names, heads = task.io.head_names, task.io.heads
    teachers = list(task.teacher.teachers)
    teacher_acc = evaluate(task.teacher, task.test.x, task.test.y)
    train_logits = predict(task.teacher, task.train.x)
    single_logits = [predict(t, task.train.x) for t in teachers]
    recipe = default_recipe(ProxyRecipe())
    single_io = [ModelIO(task.io.input_shape, h) for h in heads]

    def cost(arch: dict, io: ModelIO) -> dict[str, float]:
        return cost_of(build(arch, io), io)

    t_cost = [cost_of(t, task.io) for t in teachers]
    two = {k: sum(cost(SMALL, io)[k] for io in single_io) for k in ("macs", "params")}
    costs = {"multi-task small": cost(SMALL, task.io), "multi-task wide": cost(WIDE, task.io),
             "two single-task small": two, "two single-task small, CE only": two}
    path = Path(args.cache)
    done = json.loads(path.read_text()) if path.exists() else {}

    def run(key: str, arch: dict, io: ModelIO, y: torch.Tensor, logits: torch.Tensor | None, seed: int,
            test_y: torch.Tensor) -> dict[str, float]:
        if key not in done:
            torch.manual_seed(seed)
            m = build(arch, io)
            train(m, task.train.x, y, recipe, teacher_logits=logits, seed=seed)
            done[key] = evaluate(m, task.test.x, test_y)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.with_suffix(".tmp").write_text(json.dumps(done, indent=1))
            os.replace(path.with_suffix(".tmp"), path)
            print(key, done[key], file=sys.stderr, flush=True)
        return done[key]

    per: dict[str, list[list[float]]] = {}  # mode -> per seed [task 0 acc, task 1 acc]
    for seed in range(args.seeds):
        for mode, arch, logits in (("multi-task small", SMALL, train_logits), ("multi-task wide", WIDE, train_logits),
                                   ("multi-task small, CE only", SMALL, None)):
            r = run(f"{mode}|{seed}", arch, task.io, task.train.y, logits, seed, task.test.y)
            per.setdefault(mode, []).append([r[f"accuracy_{i}"] for i in range(len(heads))])
        for mode, ce in (("two single-task small", False), ("two single-task small, CE only", True)):
            singles = [run(f"single {names[i]} small{', CE only' if ce else ''}|{seed}", SMALL, single_io[i],
                           task.train.y[:, i].contiguous(), None if ce else single_logits[i], seed,
                           task.test.y[:, i].contiguous())["accuracy"] for i in range(len(heads))]
            per.setdefault(mode, []).append(singles)
    base = per["two single-task small"]
    mean_of = {mode: [sum(s) / len(s) for s in seeds] for mode, seeds in per.items()}
    t_acc = ", ".join(f"{n} {teacher_acc[f'accuracy_{i}']:.4f}" for i, n in enumerate(names))
    t_costs = ", ".join(f"{c['macs']:,} MACs and {c['params']:,} params" for c in t_cost)
    lines = [
        "# One multi-task student vs two single-task students (mnist1d-multitask)", "",
        f"Command: `python bench/multi_task.py --seeds {args.seeds}` ({(time.perf_counter() - t0) / 60:.0f} min, one CPU "
        "thread; teachers cached).", "",
        f"Tasks on the same signals: {', '.join(f'`{n}` ({h} classes)' for n, h in zip(names, heads))}. Teachers "
        f"(one per task, the same residual CNN): test accuracy {t_acc}; {t_costs}. Students: "
        f"small `{describe(SMALL)}`, wide `{describe(WIDE)}`. Recipe: {recipe.describe()}; seeds 0..{args.seeds - 1}; "
        f"test accuracy on {len(task.test)} signals, mean ± sd over seeds; differences per seed, then mean ± sd.", "",
        "| students | MACs | params | cost vs two single-task | " + " | ".join(f"{n} accuracy" for n in names)
        + " | mean over tasks | vs two single-task (points) |",
        "|---|---:|---:|---:|" + "---:|" * len(names) + "---:|---:|",
    ]
    for mode in ("two single-task small", "multi-task small", "multi-task wide", "multi-task small, CE only",
                 "two single-task small, CE only"):
        c = costs.get(mode, costs["multi-task small"])
        diff = [100 * (a - b) for a, b in zip(mean_of[mode], mean_of["two single-task small"])]
        cols = [mean_sd([s[i] for s in per[mode]]) for i in range(len(heads))]
        lines.append(f"| {mode} | {c['macs']:,} | {c['params']:,} | "
                     f"{c['macs'] / costs['two single-task small']['macs']:.2f}x MACs, "
                     f"{c['params'] / costs['two single-task small']['params']:.2f}x params | " + " | ".join(cols)
                     + f" | {mean_sd(mean_of[mode])} | {'-' if mode == 'two single-task small' else mean_sd(diff, sign=True, digits=2)} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
    Path(f"{args.out}.json").write_text(json.dumps({"teachers": teacher_acc, "costs": costs, "per_seed": per,
                                                    "base": base}, indent=1))
    print("\n".join(lines))


def cost_of(model: torch.nn.Module, io: ModelIO) -> dict[str, float]:
    c = profile(model, io.example_input())
    return {"macs": c.macs, "params": c.params}


if __name__ == "__main__":
    main()
