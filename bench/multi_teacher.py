"""Several teachers vs one (mnist1d): the same student, steps and seeds, distilled from the
built-in teacher alone, or from an ensemble of it and teachers of the same architecture trained
from other init seeds on the same split (``nas_student.distill.ensemble``: ``mean`` and
``confidence``), and trained with CE only. Full training with the product's default recipe
(``default_recipe(ProxyRecipe())``), one CPU thread, scored on the 4,000 test signals.
Finished runs are kept in ``--cache`` (a rerun resumes). Writes results/records/multi_teacher.{md,json}.

    python bench/multi_teacher.py [--teachers 3] [--seeds 3]
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

from nas_student.distill import ProxyRecipe, evaluate, predict, train
from nas_student.distill.ensemble import TeacherEnsemble
from nas_student.families import build
from nas_student.families.base import describe
from nas_student.full_training import default_recipe
from nas_student.tasks import load_task, mnist1d
from nas_student.tasks.base import freeze
from nas_student.tasks.teacher_cache import builtin_teacher

#: two students under 1/10 of one teacher's MACs and params, from bench/proxy_fidelity.py's draw
#: (full KD test accuracy there: 0.944 and 0.973)
STUDENTS = [
    {"family": "cnn1d", "stem_width": 8, "stem_kernel": 7, "norm": "batch", "activation": "silu", "residual": False,
     "stages": [{"block": "inverted", "expansion": 4, "depth": 1, "width": 8, "kernel": 3, "downsample": "stride"}]},
    {"family": "cnn1d", "stem_width": 16, "stem_kernel": 5, "norm": "batch", "activation": "relu", "residual": False,
     "stages": [{"block": "inverted", "expansion": 1, "depth": 1, "width": 16, "kernel": 5, "downsample": "stride"},
                {"block": "conv", "expansion": 1, "depth": 2, "width": 12, "kernel": 7, "downsample": "stride"}]},
]


def mean_sd(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs):.4f}" if len(xs) > 1 else f"{xs[0]:.4f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--teachers", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cache", default="/tmp/nas_student_bench/multi_teacher.json")
    ap.add_argument("--out", default="results/records/multi_teacher")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    task = load_task("mnist1d", seed=0)
    teachers = [task.teacher] + [
        freeze(builtin_teacher("mnist1d", task.io, task.train, task.test, mnist1d.TEACHER_ARCH,
                               mnist1d.TEACHER_BUDGET, seed=s, device="cpu")[0]) for s in range(1, args.teachers)]
    single = [evaluate(t, task.test.x, task.test.y)["accuracy"] for t in teachers]
    ensembles = {how: TeacherEnsemble(teachers, how).eval() for how in ("mean", "confidence")}
    ens_acc = {how: evaluate(e, task.test.x, task.test.y)["accuracy"] for how, e in ensembles.items()}
    soft = {"KD, one teacher": predict(task.teacher, task.train.x),
            **{f"KD, {args.teachers} teachers ({how})": predict(e, task.train.x) for how, e in ensembles.items()}}
    recipe = default_recipe(ProxyRecipe())
    path = Path(args.cache)
    done = json.loads(path.read_text()) if path.exists() else {}
    results: dict[str, dict[str, list[float]]] = {}
    for arch in STUDENTS:
        d = describe(arch)
        for mode in ["CE only", *soft]:
            for seed in range(args.seeds):
                key = f"{d}|{mode}|{args.teachers}|{seed}"
                if key not in done:
                    torch.manual_seed(seed)
                    m = build(arch, task.io)
                    train(m, task.train.x, task.train.y, recipe, teacher_logits=soft.get(mode), seed=seed)
                    done[key] = evaluate(m, task.test.x, task.test.y)["accuracy"]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.with_suffix(".tmp").write_text(json.dumps(done, indent=1))
                    os.replace(path.with_suffix(".tmp"), path)
                    print(key, done[key], file=sys.stderr, flush=True)
                results.setdefault(d, {}).setdefault(mode, []).append(done[key])
    lines = [
        "# Several teachers vs one (mnist1d)",
        "",
        f"Command: `python bench/multi_teacher.py --teachers {args.teachers} --seeds {args.seeds}` "
        f"({(time.perf_counter() - t0) / 60:.0f} min, one CPU thread; teachers cached).",
        "",
        f"Teachers: the built-in mnist1d teacher and {args.teachers - 1} more of its architecture trained from init "
        f"seeds 1..{args.teachers - 1} on the same split; test accuracy {', '.join(f'{a:.4f}' for a in single)}; "
        f"their ensemble: mean {ens_acc['mean']:.4f}, confidence-weighted {ens_acc['confidence']:.4f}. "
        f"Students trained with {recipe.describe()}; test accuracy on {len(task.test)} signals, mean ± sd over "
        f"seeds 0..{args.seeds - 1}.",
        "",
        "| student | mode | test accuracy | vs KD from one teacher (points, per-seed differences) |",
        "|---|---|---:|---:|",
    ]
    for d, modes in results.items():
        base = modes["KD, one teacher"]
        for mode, accs in modes.items():
            diff = [100 * (a - b) for a, b in zip(accs, base)]
            lines.append(f"| {d} | {mode} | {mean_sd(accs)} | "
                         f"{'-' if mode == 'KD, one teacher' else f'{statistics.mean(diff):+.2f} ± {statistics.stdev(diff) if len(diff) > 1 else 0:.2f}'} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
    Path(f"{args.out}.json").write_text(json.dumps({"teachers": single, "ensemble": ens_acc, "results": results}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
