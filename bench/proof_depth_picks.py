"""Why did two searches pick different students? For each (budget, seed) of
``proof_depth.py``: the student the equal-steps search picked (A) and the one the
steps-by-depth search picked (B), each scored by *both* proxies (trained as the search of that
seed trains: its task seed, teacher, split and the student's own init seed) and fully trained
from ``--full-seeds`` init seeds (the proof's run from the search seed, and more).

If full training prefers A while the depth proxy prefers B, the depth proxy misranked the two;
if both proxies prefer what their own search picked, the searches simply saw different
students (TPE's path); if B was never trained by the depth search, it was the path too.

    python bench/proof_depth_picks.py --budgets 30 --seeds 0 1 2 3 4 5 --full-seeds 3
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
import proof_mnist1d as proof  # noqa: E402

from nas_student.distill import evaluate, predict, train  # noqa: E402
from nas_student.distill.recipe import DEPTH_POWER, ProxyRecipe  # noqa: E402
from nas_student.families import build  # noqa: E402
from nas_student.families.base import describe  # noqa: E402
from nas_student.seeds import student_seed  # noqa: E402
from nas_student.spaces import arch_hash  # noqa: E402
from nas_student.tasks import load_task  # noqa: E402

PROXIES = {"equal": ProxyRecipe(depth_power=0), "depth": ProxyRecipe(depth_power=DEPTH_POWER)}
KEYS = {"equal": "tpe-accuracy", "depth": "tpe-accuracy-depth"}


@functools.lru_cache(maxsize=None)
def task_of(seed: int) -> tuple:
    task = load_task("mnist1d", seed=seed)
    return task, predict(task.teacher, task.train.x)


def proxy_score(arch: dict, seed: int, proxy: ProxyRecipe) -> float:
    """The student's validation accuracy after the proxy, as the search of ``seed`` trains it."""
    task, logits = task_of(seed)
    h = arch_hash(arch)
    torch.manual_seed(student_seed(h, seed))
    model = build(arch, task.io)
    train(model, *task.distillation_set(), proxy.for_student(arch, ["cnn1d"]), teacher=task.teacher,
          teacher_logits=logits, seed=student_seed(h, seed))
    return float(evaluate(model, task.val.x, task.val.y)["accuracy"])


def trained_by(run: Path, arch: dict) -> bool:
    d = pd.read_csv(run / "trials.csv")
    return arch_hash(arch) in set(d.loc[d["state"] == "COMPLETE", "arch_hash"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budgets", type=int, nargs="+", default=[30])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    ap.add_argument("--full-seeds", type=int, default=3, help="full runs per student (init seeds s, 100+s, 200+s)")
    ap.add_argument("--cache", type=Path, default=proof.CACHE)
    ap.add_argument("--out", type=Path, default=Path("results/records/proof_depth_picks.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    cache = proof.Cache(args.cache)
    task0 = load_task("mnist1d", seed=0)
    soft = predict(task0.teacher, task0.train.x)
    data = cache._read()
    lines = ["# Why the two searches picked different students", "",
             f"Command: `python bench/proof_depth_picks.py --budgets {' '.join(map(str, args.budgets))} --seeds "
             f"{' '.join(map(str, args.seeds))} --full-seeds {args.full_seeds}`", "",
             "A: the equal-steps search's pick; B: the steps-by-depth search's pick (`proof_depth.md`). Proxy "
             "scores: validation accuracy after each proxy, trained as that seed's search trains. Full: test "
             f"accuracy, mean of {args.full_seeds} init seeds (the proof's run and more). 'B in A's search': "
             "whether the equal-steps search trained B, and the other way round.", ""]
    for b in args.budgets:
        owns: dict[int, dict[str, float]] = {}
        lines += [f"## 1/{b}", "", "| seed | A full % | B full % | B - A | equal proxy A / B | depth proxy A / B | "
                  "B in A's search, A in B's | A / B |", "|---:|---:|---:|---:|---|---|---|---|"]
        for s in args.seeds:
            picks, own = {}, {}
            for arm, key in KEYS.items():
                found = data[f"search/{key}/1/{b}/s{s}"]
                best = max(found["front"], key=lambda r: (r["accuracy"], -r["macs"]))
                picks[arm], own[arm] = best["arch"], best["accuracy"]
            full, prox = {}, {}
            for arm, arch in picks.items():
                spec = {"kind": "arch", "arch": arch}
                runs = [cache.get(f"train/{proof.key_of(spec)}/s{k}/KD", lambda k=k: proof.full_train(task0, soft, spec, k, "KD"))
                        ["accuracy"] for k in [s, 100 + s, 200 + s][: args.full_seeds]]
                full[arm] = statistics.fmean(runs)
                for p, recipe in PROXIES.items():
                    prox[(p, arm)] = cache.get(f"proxy/{p}/{arch_hash(arch)}/s{s}",
                                               lambda a=arch, r=recipe: {"accuracy": proxy_score(a, s, r)})["accuracy"]
            root = Path("/tmp/nas-bench-proof")
            b_in_a = trained_by(root / f"tpe-accuracy-b{b}-s{s}", picks["depth"]) if (root / f"tpe-accuracy-b{b}-s{s}").exists() else None
            a_in_b = trained_by(root / f"tpe-accuracy-depth-b{b}-s{s}", picks["equal"])
            same = picks["equal"] == picks["depth"]
            owns[s] = own
            lines.append(
                f"| {s} | {100 * full['equal']:.2f} | {100 * full['depth']:.2f} | {100 * (full['depth'] - full['equal']):+.2f} | "
                f"{100 * prox[('equal', 'equal')]:.2f} / {100 * prox[('equal', 'depth')]:.2f} | "
                f"{100 * prox[('depth', 'equal')]:.2f} / {100 * prox[('depth', 'depth')]:.2f} | "
                f"{'same student' if same else f'{b_in_a if b_in_a is not None else chr(63)}, {a_in_b}'} | "
                f"`{describe(picks['equal'])}` / `{describe(picks['depth'])}` |")
        lines += ["", "(Check: each search's own score of its pick, A / B: "
                  + "; ".join(f"s{s} {100 * v['equal']:.2f} / {100 * v['depth']:.2f}" for s, v in owns.items())
                  + ". Where the equal-steps search ran in an earlier session, its own score can differ from "
                  "the re-trained one in the third digit.)", ""]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
