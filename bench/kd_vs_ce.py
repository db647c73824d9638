"""KD proxy (teacher outputs cached once) vs CE-only training: same student, same budget.

Runs the two side by side, alternating, several times per student, and reports the median
ratio of wall times. Writes results/records/kd_vs_ce.md.

The recipe is the search's proxy (``ProxyRecipe``: T = 1, where KD and CE share the student's
log-softmax) unless ``--temperature`` says otherwise (full training's default is T = 4). One
torch thread, as in the search's trial processes.

    python bench/kd_vs_ce.py [--repeats 7] [--steps 300] [--temperature 4]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from nas_student.distill import ProxyRecipe, predict, train
from nas_student.families import build
from nas_student.tasks import load_task

STUDENTS = {
    "small cnn": {"family": "cnn", "stem_width": 16, "groups": 1, "norm": "batch", "activation": "relu",
                  "residual": False, "stages": [{"depth": 1, "width": 32, "kernel": 3, "downsample": "maxpool"}]},
    "mid cnn": {"family": "cnn", "stem_width": 16, "groups": 1, "norm": "batch", "activation": "gelu",
                "residual": True, "stages": [{"depth": 2, "width": 32, "kernel": 3, "downsample": "none"},
                                             {"depth": 1, "width": 48, "kernel": 3, "downsample": "stride"}]},
    "mlp": {"family": "mlp", "layers": [{"width": 128}, {"width": 64}], "activation": "relu", "norm": "none"},
    "tiny mlp": {"family": "mlp", "layers": [{"width": 16}], "activation": "relu", "norm": "none"},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--temperature", type=float, default=None, help="default: the proxy's (1)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", default="results/records/kd_vs_ce.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    task = load_task("digits")
    t0 = time.perf_counter()
    logits = predict(task.teacher, task.train.x)
    teacher_pass = time.perf_counter() - t0
    budget = ProxyRecipe(steps=args.steps)
    if args.temperature is not None:
        budget = budget.model_copy(update={"temperature": args.temperature})
    rows = []
    for name, arch in STUDENTS.items():
        kd, ce = [], []
        for r in range(args.repeats):
            for mode in (("kd", "ce") if r % 2 == 0 else ("ce", "kd")):
                torch.manual_seed(r)
                model = build(arch, task.io)
                t = time.perf_counter()
                train(model, task.train.x, task.train.y, budget,
                      teacher_logits=logits if mode == "kd" else None, seed=r)
                (kd if mode == "kd" else ce).append(time.perf_counter() - t)
        ratios = [k / c for k, c in zip(kd, ce)]
        rows.append((name, statistics.median(kd), statistics.median(ce), statistics.median(ratios)))
        print(rows[-1])
    lines = [
        "# KD proxy vs CE-only training: wall time, same student and budget",
        "",
        f"Command: `python bench/kd_vs_ce.py --repeats {args.repeats} --steps {args.steps}"
        + (f" --temperature {args.temperature:g}" if args.temperature is not None else "") + "`  ",
        f"Task digits, {args.steps} steps of {budget.describe()}, CPU threads {torch.get_num_threads()}, "
        f"torch {torch.__version__}. The teacher's logits over the {len(task.train)} training inputs are "
        f"computed once ({teacher_pass * 1000:.0f} ms, shared by every trial of a search) and are not in the "
        "KD times below. KD and CE runs alternate; medians of "
        f"{args.repeats} runs each, ratio = median of per-pair ratios.",
        "",
        "| student | KD s (median) | CE s (median) | KD / CE |",
        "|---|---:|---:|---:|",
        *(f"| {n} | {k:.3f} | {c:.3f} | {r:.3f} |" for n, k, c, r in rows),
        "",
        f"Worst ratio: {max(r for *_, r in rows):.3f} (target <= 1.1).",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
