"""Born-again and mutual learning vs plain KD (mnist1d): the same students, recipe and seeds.

For each student of ``bench/multi_teacher.py`` and each seed: plain KD from the built-in
teacher (generation 1), born-again generation 2 (the same architecture from a fresh
initialisation, distilled from generation 1: ``nas_student.full_training_ban``'s rule), and a
mutual-learning cohort of two (``nas_student.distill.mutual``, teacher + labels + peer, the
``train --mutual 2`` settings; its first member starts from the KD student's initialisation).
Full training with the product's default recipe, one CPU thread, 4,000 test signals. Finished
runs are kept in ``--cache``. Writes results/records/kd_modes.{md,json}.

    python bench/kd_modes.py [--seeds 3]
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
from nas_student.distill.mutual import train_mutual
from nas_student.families import build
from nas_student.families.base import describe
from nas_student.full_training import default_recipe
from nas_student.full_training_mutual import PEER_WEIGHT
from nas_student.tasks import load_task
from nas_student.tasks.base import freeze

sys.path.insert(0, str(Path(__file__).parent))
from multi_teacher import STUDENTS, mean_sd  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cache", default="/tmp/nas_student_bench/kd_modes")
    ap.add_argument("--out", default="results/records/kd_modes")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    task = load_task("mnist1d", seed=0)
    x, y = task.train.x, task.train.y
    soft = predict(task.teacher, x)
    recipe = default_recipe(ProxyRecipe())
    folder = Path(args.cache)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "results.json"
    done = json.loads(path.read_text()) if path.exists() else {}

    def keep(key: str, value) -> None:
        done[key] = value
        path.with_suffix(".tmp").write_text(json.dumps(done, indent=1))
        os.replace(path.with_suffix(".tmp"), path)
        print(key, value, file=sys.stderr, flush=True)

    def test(m) -> float:
        return evaluate(m, task.test.x, task.test.y)["accuracy"]

    results: dict[str, dict[str, list[float]]] = {}
    for arch in STUDENTS:
        d = describe(arch)
        for seed in range(args.seeds):
            kd_file = folder / f"{arch_key(d)}-kd-s{seed}.pt"
            if f"{d}|KD|{seed}" not in done or not kd_file.exists():
                torch.manual_seed(seed)
                m = build(arch, task.io)
                train(m, x, y, recipe, teacher_logits=soft, seed=seed)
                torch.save(m.state_dict(), kd_file)
                keep(f"{d}|KD|{seed}", test(m))
            if f"{d}|born-again gen 2|{seed}" not in done:
                g1 = build(arch, task.io)
                g1.load_state_dict(torch.load(kd_file, weights_only=True))
                torch.manual_seed(seed + 7919)  # full_training_ban's fresh initialisation of generation 2
                m = build(arch, task.io)
                train(m, x, y, recipe, teacher_logits=predict(freeze(g1), x), seed=seed)
                keep(f"{d}|born-again gen 2|{seed}", test(m))
            if f"{d}|mutual (cohort of 2)|{seed}" not in done:
                cohort = []
                for i in range(2):
                    torch.manual_seed(seed + 104729 * i)  # full_training_mutual's initialisations
                    cohort.append(build(arch, task.io))
                train_mutual(cohort, x, y, recipe, teacher_logits=soft, peer_weight=PEER_WEIGHT, seed=seed)
                keep(f"{d}|mutual (cohort of 2)|{seed}", [test(m) for m in cohort])
            for mode in ("KD", "born-again gen 2", "mutual (cohort of 2)"):
                v = done[f"{d}|{mode}|{seed}"]
                if isinstance(v, list):
                    results.setdefault(d, {}).setdefault("mutual, member mean", []).append(statistics.mean(v))
                    results[d].setdefault("mutual, best member", []).append(max(v))
                else:
                    results.setdefault(d, {}).setdefault(mode, []).append(v)
    lines = [
        "# Born-again and mutual learning vs plain KD (mnist1d)",
        "",
        f"Command: `python bench/kd_modes.py --seeds {args.seeds}` ({(time.perf_counter() - t0) / 60:.0f} min, one "
        "CPU thread; teacher cached).",
        "",
        f"Teacher: the built-in mnist1d teacher (test accuracy {task.teacher_info['test_accuracy']:.4f}). Every student "
        f"trained with {recipe.describe()}; mutual: peer weight {PEER_WEIGHT}. Test accuracy on {len(task.test)} "
        f"signals, mean ± sd over seeds 0..{args.seeds - 1}; differences are per seed against plain KD.",
        "",
        "| student | mode | test accuracy | vs KD (points) |",
        "|---|---|---:|---:|",
    ]
    for d, modes in results.items():
        for mode, accs in modes.items():
            diff = [100 * (a - b) for a, b in zip(accs, modes["KD"])]
            sd = statistics.stdev(diff) if len(diff) > 1 else 0.0
            lines.append(f"| {d} | {mode} | {mean_sd(accs)} | "
                         + ("-" if mode == "KD" else f"{statistics.mean(diff):+.2f} ± {sd:.2f}") + " |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
    Path(f"{args.out}.json").write_text(json.dumps(results, indent=1))
    print("\n".join(lines))


def arch_key(d: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in d)[:80]


if __name__ == "__main__":
    main()
