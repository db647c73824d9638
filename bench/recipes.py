"""Distillation recipes compared at full training, on digits and on the text task.

1. The same student trained with: CE only, KD, KD + temperature curriculum (cosine 8 -> 2),
   KD + feature hints (and KD + attention maps for the Transformer student), several seeds.
   Digits: the best student of the default search; text: a 2-layer Transformer student.
2. Semi-supervised on digits: 10 % of the labels; KD (all inputs distilled) vs CE only.
3. The best student of the default search (<= 1/10 of the teacher's MACs) vs a uniformly
   shrunk copy of the teacher (depth halved, widths scaled to the same MACs), both distilled
   with the same KD recipe: does the search earn its keep?

Every run is cached in a JSON file as soon as it ends, so an interrupted benchmark resumes;
``--part digits`` and ``--part text`` may run in two processes, then ``--part all`` (all
cached) writes the record. One CPU thread. Writes results/records/recipes.md.

    python bench/recipes.py [--seeds 3] [--digits-steps 600] [--text-steps 600] [--part all]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from nas_student.cost import profile
from nas_student.distill import evaluate, predict, train
from nas_student.distill.recipe import AttentionKD, FeatureKD, Recipe
from nas_student.families import build
from nas_student.families.base import describe
from nas_student.tasks import load_task
from nas_student.tasks.digits import TEACHER_ARCH

CURRICULUM = {"kind": "cosine", "start": 8.0, "end": 2.0}
TEXT_STUDENTS = {
    "Transformer 2x32": {"family": "transformer", "layers": 2, "d_model": 32, "heads": 4, "ffn_ratio": 2.0,
                         "pos_encoding": "sinusoidal", "norm_placement": "pre", "activation": "gelu",
                         "dropout": 0.0},
}


def recipes(base: Recipe, transformer: bool) -> dict[str, tuple[Recipe, bool]]:
    """name -> (recipe, distil?)"""
    out = {"CE only": (base, False), "KD": (base, True),
           "KD + curriculum": (Recipe.model_validate({**base.model_dump(), "temperature": CURRICULUM}), True),
           "KD + features": (base.model_copy(update={"features": FeatureKD(weight=1.0)}), True)}
    if transformer:
        out["KD + attention"] = (base.model_copy(update={"attention": AttentionKD(weight=1.0)}), True)
    return out


class Cache:
    """Finished runs, kept in ``<folder>/recipes-<part>.json`` (one file per part, so the
    digits and text parts can run in parallel processes); every part's file is read."""

    def __init__(self, folder: Path, part: str) -> None:
        self.path = folder / f"recipes-{part}.json"
        self.data: dict[str, Any] = {}
        for f in sorted(folder.glob("recipes-*.json")):
            self.data.update(json.loads(f.read_text()))
        self.own: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def get(self, key: str, fn) -> Any:  # noqa: ANN001
        if key not in self.data:
            t0 = time.perf_counter()
            self.data[key] = self.own[key] = {**fn(), "wall_s": time.perf_counter() - t0}
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.own, indent=1))
            tmp.replace(self.path)
            print(f"  {key}: {self.data[key]}", flush=True)
        return self.data[key]


def fit_and_score(task, arch, recipe: Recipe, distil: bool, seed: int, soft) -> dict[str, float]:  # noqa: ANN001
    torch.manual_seed(seed)
    m = build(arch, task.io)
    train(m, task.train.x, task.train.y, recipe, teacher_logits=soft if distil else None,
          teacher=task.teacher, seed=seed)
    return evaluate(m, task.test.x, task.test.y)


def macs(task, arch) -> int:  # noqa: ANN001
    return profile(build(arch, task.io), task.io.example_input()).macs


def shrunk_teacher(task, target_macs: float) -> dict[str, Any]:  # noqa: ANN001
    """The teacher with each stage's depth halved and every width scaled by one factor,
    the largest factor whose MACs stay <= ``target_macs``."""
    def at(f: float) -> dict[str, Any]:
        return {**TEACHER_ARCH, "stem_width": max(1, round(TEACHER_ARCH["stem_width"] * f)),
                "stages": [{**s, "depth": max(1, s["depth"] // 2), "width": max(1, round(s["width"] * f))}
                           for s in TEACHER_ARCH["stages"]]}
    lo, hi = 0.01, 1.0
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if macs(task, at(mid)) <= target_macs else (lo, mid)
    return at(lo)


def best_searched(results: Path) -> dict[str, Any]:
    """The default search's best feasible student (highest validation accuracy, then lowest
    KD loss)."""
    from nas_student.config import RunConfig
    from nas_student.search import run_search

    out = run_search(RunConfig(task="digits", results_dir=str(results), device="cpu"))
    trained = [t for t in out.study.get_trials(deepcopy=False)
               if t.user_attrs.get("feasible") and "duplicate_of" not in t.user_attrs and "record" in t.user_attrs]
    best = max(trained, key=lambda t: (t.user_attrs["record"]["accuracy"], -t.user_attrs["record"]["kd_loss"]))
    return {"trial": best.number, "arch": best.user_attrs["arch"], "val_accuracy": best.user_attrs["record"]["accuracy"]}


def ms(xs: list[float], digits: int = 4) -> str:
    if len(xs) == 1:
        return f"{xs[0]:.{digits}f}"
    return f"{statistics.fmean(xs):.{digits}f} ± {statistics.stdev(xs):.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--digits-steps", type=int, default=600)
    ap.add_argument("--text-steps", type=int, default=600)
    ap.add_argument("--cache", type=Path, default=Path("results/records"), help="folder of the run caches")
    ap.add_argument("--part", choices=["digits", "text", "all"], default="all",
                    help="run one part only (e.g. in two processes), then `all` writes the record")
    ap.add_argument("--out", type=Path, default=Path("results/records/recipes.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    cache, seeds = Cache(args.cache, args.part), range(args.seeds)
    lines = ["# Distillation recipes at full training", "",
             f"Reproduce: `python bench/recipes.py --seeds {args.seeds} --digits-steps {args.digits_steps} "
             f"--text-steps {args.text_steps}` (one CPU thread; runs cached in `{args.cache}/recipes-*.json`).",
             "Test-set scores, mean ± sd over seeds " + ", ".join(map(str, seeds)) + ". ", ""]

    if args.part in ("digits", "all"):
        lines += digits_part(args, cache, seeds)
    if args.part in ("text", "all"):
        lines += text_part(args, cache, seeds)
    if args.part == "all":
        args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def digits_part(args, cache: Cache, seeds: range) -> list[str]:  # noqa: ANN001
    lines: list[str] = []
    task = load_task("digits", seed=0)
    soft = predict(task.teacher, task.train.x)
    t_acc = evaluate(task.teacher, task.test.x, task.test.y)["accuracy"]
    t_macs = macs(task, TEACHER_ARCH)
    found = cache.get("digits/search", lambda: best_searched(Path("/tmp/nas-bench-recipes")))
    students = {"searched": found["arch"]}
    students["shrunk teacher"] = cache.get(
        "digits/shrunk", lambda: {"arch": shrunk_teacher(task, macs(task, found["arch"]))})["arch"]
    base = Recipe(steps=args.digits_steps)
    lines += [f"## digits (teacher: test accuracy {t_acc:.4f}, {t_macs:,} MACs); {base.describe()}", "",
              "| student | MACs (% of teacher) | " + " | ".join(recipes(base, False)) + " |",
              "|---|---|" + "---|" * len(recipes(base, False))]
    scores: dict[tuple[str, str], list[float]] = {}
    for sname, arch in students.items():
        row = [f"{sname}: `{describe(arch)}`", f"{macs(task, arch) / t_macs:.2%}"]
        for rname, (rec, distil) in recipes(base, False).items():
            if sname != "searched" and rname != "KD":  # the shrunk teacher: KD only (CPU time)
                row.append("not run")
                continue
            accs = [cache.get(f"digits/{args.digits_steps}/{sname}/{rname}/s{s}",
                              lambda: fit_and_score(task, arch, rec, distil, s, soft))["accuracy"] for s in seeds]
            scores[(sname, rname)] = accs
            row.append(ms(accs))
        lines.append("| " + " | ".join(row) + " |")
    gain = statistics.fmean(scores[("searched", "KD")]) - statistics.fmean(scores[("shrunk teacher", "KD")])
    lines += ["", f"Search vs uniform shrinking (same MACs budget, same KD recipe): searched student "
              f"{ms(scores[('searched', 'KD')])} vs shrunk teacher {ms(scores[('shrunk teacher', 'KD')])}: "
              f"**{gain * 100:+.2f} points** (searched: trial {found['trial']} of the default search, "
              f"proxy val accuracy {found['val_accuracy']:.4f}).", ""]

    # ---- semi-supervised
    semi = base.model_copy(update={"labelled_fraction": 0.1})
    lines += ["## Semi-supervised, digits: 10 % of the labels", "",
              "KD distils every training input from the teacher and uses the kept labels for CE; CE only "
              "sees the labelled 10 %.", "", "| student | CE only (10 % labels) | KD (10 % labels) | KD (all labels) |",
              "|---|---|---|---|"]
    for sname, arch in list(students.items())[:1]:  # the searched student
        ce = [cache.get(f"digits/{args.digits_steps}/{sname}/semi CE/s{s}", lambda: fit_and_score(task, arch, semi, False, s, soft))["accuracy"]
              for s in seeds]
        kd = [cache.get(f"digits/{args.digits_steps}/{sname}/semi KD/s{s}", lambda: fit_and_score(task, arch, semi, True, s, soft))["accuracy"]
              for s in seeds]
        lines.append(f"| {sname} | {ms(ce)} | {ms(kd)} | {ms(scores[(sname, 'KD')])} |")

    return lines


def text_part(args, cache: Cache, seeds: range) -> list[str]:  # noqa: ANN001
    lines: list[str] = []
    task = load_task("text", seed=0)
    soft = predict(task.teacher, task.train.x)
    t_eval = evaluate(task.teacher, task.test.x, task.test.y)
    t_macs = profile(task.teacher, task.io.example_input()).macs
    base = Recipe(steps=args.text_steps, batch_size=32)
    lines += ["", f"## text (teacher: test perplexity {t_eval['perplexity']:.2f}, next-token accuracy "
              f"{t_eval['accuracy']:.4f}, {t_macs:,} MACs); {base.describe()}", "",
              "Test perplexity (lower is better).", ""]
    names = list(recipes(base, True))
    lines += ["| student | MACs (% of teacher) | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for sname, arch in TEXT_STUDENTS.items():
        row = [f"{sname}: `{describe(arch)}`", f"{macs(task, arch) / t_macs:.2%}"]
        rs = recipes(base, arch["family"] == "transformer")
        for rname in names:
            if rname not in rs:
                row.append("n/a")
                continue
            rec, distil = rs[rname]
            ppl = [cache.get(f"text/{args.text_steps}/{sname}/{rname}/s{s}",
                             lambda: fit_and_score(task, arch, rec, distil, s, soft))["perplexity"] for s in seeds]
            row.append(ms(ppl, 2))
        lines.append("| " + " | ".join(row) + " |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
