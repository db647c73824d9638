"""Cross-modal distillation vs CE-only (and vs same-modality KD) on `mnist1d-from-digits`.

Students on 1-D signals (the two students of bench/multi_teacher.py), trained on the paired
task's training signals (1,078: one per digits training image) with the product's full-training
recipe (`train`'s default: 3,000 steps, T = 4, alpha 0.9, beta 0.1), three ways:

- CE only (the labels);
- cross-modal KD: soft targets of the digits CNN on each signal's paired image (what
  `nas-student train ARCH --task mnist1d-from-digits` does);
- same-modality KD (a control): soft targets of the mnist1d teacher on the signals themselves;
- cross-modal KD without labels (alpha 1, beta 0): the signals' labels unused, the student
  taught by the image teacher alone: supervision transfer to an unlabelled modality, the use
  Gupta et al. made of it.

Scored on mnist1d's 4,000 test signals; one CPU thread; seeds 0..N-1 (the student's init and
data order; the task's split and teachers are seed 0's). Finished runs are kept in --cache.
Writes results/records/cross_modal.{md,json}.

    python bench/cross_modal.py --seeds 3
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
from nas_student.families import build
from nas_student.families.base import describe
from nas_student.full_training import default_recipe
from nas_student.tasks import load_task, paired

sys.path.insert(0, str(Path(__file__).parent))
from multi_teacher import STUDENTS, mean_sd  # noqa: E402

MODES = ("CE only", "cross-modal KD", "same-modality KD", "cross-modal KD, no labels")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cache", default="/tmp/nas_student_bench/cross_modal")
    ap.add_argument("--out", default="results/records/cross_modal")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    task = load_task(paired.NAME, seed=0)
    same = load_task("mnist1d", seed=0)
    x, y = task.train.x, task.train.y
    soft = {"CE only": None, "cross-modal KD": task.teacher_logits("train"),
            "same-modality KD": predict(same.teacher, x)}
    soft["cross-modal KD, no labels"] = soft["cross-modal KD"]
    recipe = default_recipe(ProxyRecipe())
    path = Path(args.cache) / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    done = json.loads(path.read_text()) if path.exists() else {}
    for arch in STUDENTS:
        for mode in MODES:
            for seed in range(args.seeds):
                key = f"{describe(arch)}|{mode}|{seed}"
                if key in done:
                    continue
                torch.manual_seed(seed)
                m = build(arch, task.io)
                r = recipe.model_copy(update={"alpha": 1.0, "beta": 0.0}) if mode.endswith("no labels") else recipe
                train(m, x, y, r, teacher_logits=soft[mode], seed=seed)
                done[key] = evaluate(m, task.test.x, task.test.y)["accuracy"]
                path.with_suffix(".tmp").write_text(json.dumps(done, indent=1))
                os.replace(path.with_suffix(".tmp"), path)
                print(key, done[key], file=sys.stderr, flush=True)
    teacher_acc = evaluate(task.teacher, task.teacher_inputs("test"), task.test.y)["accuracy"]
    same_acc = evaluate(same.teacher, same.test.x, same.test.y)["accuracy"]
    lines = ["## Cross-modal distillation: a signal student taught by an image teacher", "",
             f"Reproduce: `python bench/cross_modal.py --seeds {args.seeds}`. Task `{paired.NAME}`: "
             f"{len(x):,} training signals, each paired with a digits image of its class; test: "
             f"{len(task.test):,} mnist1d signals. Recipe: `train`'s default ({recipe.describe()}). "
             f"Teachers: the digits CNN on the paired images (test accuracy {teacher_acc:.4f} on its images), "
             f"the mnist1d CNN on the signals ({same_acc:.4f}). {args.seeds} seeds; mean ± sd over seeds; "
             "differences are per-seed (same init and data order), mean ± sd.", "",
             "| student | CE only | cross-modal KD | same-modality KD | cross-modal, no labels | "
             "cross-modal − CE (points) | same-modality − CE (points) | no labels − CE (points) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    summary = {}
    for arch in STUDENTS:
        d = describe(arch)
        acc = {m: [done[f"{d}|{m}|{s}"] for s in range(args.seeds)] for m in MODES}
        diff = {m: [100 * (a - c) for a, c in zip(acc[m], acc["CE only"])] for m in MODES[1:]}
        summary[d] = {"accuracy": acc, "diff_points": diff}
        lines.append(f"| {d} | {mean_sd(acc['CE only'])} | {mean_sd(acc['cross-modal KD'])} | "
                     f"{mean_sd(acc['same-modality KD'])} | {mean_sd(acc['cross-modal KD, no labels'])} | "
                     f"{mean_sd(diff['cross-modal KD'])} | {mean_sd(diff['same-modality KD'])} | "
                     f"{mean_sd(diff['cross-modal KD, no labels'])} |")
    allx = [v for s in summary.values() for v in s["diff_points"]["cross-modal KD"]]
    lines += ["", f"`cross-modal vs CE-only: {statistics.mean(allx):+.2f} points` (mean over both students and "
              f"{args.seeds} seeds; per-seed differences range {min(allx):+.2f} to {max(allx):+.2f}).",
              f"Wall: {time.perf_counter() - t0:.0f} s (runs kept in the cache are not re-run).", ""]
    Path(args.out + ".md").write_text("\n".join(lines))
    Path(args.out + ".json").write_text(json.dumps({"teacher_test_accuracy": teacher_acc,
                                                    "same_modality_teacher_accuracy": same_acc,
                                                    "recipe": recipe.describe(), "students": summary}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
