"""Proxy fidelity: does the search's cheap score rank students as full distillation does?

Samples feasible students uniformly from a space (the default bounds: <= 1/10 of the
teacher's MACs and params), then for each one measures

* ``kd@S``: the search's proxy, KD for S steps, scored by validation accuracy (and KD loss),
  exactly as :class:`~nas_student.search.objective.Objective` trains it (same init seed);
* ``ce@S``: the same student trained S steps with cross-entropy only;
* ``full@sK``: the "full" recipe (KD, ``--full-steps``) from init seed K; the target is the
  test accuracy after it, averaged over the seeds (test is disjoint from the proxy's val);
* training-free scores at init (:mod:`nas_student.search.zero_cost`), params and MACs;

and reports Kendall tau / Spearman rho between each score and the target, top-k overlap and
the regret of each score's top-1. Every measurement is cached (JSON, written after each one)
so the run resumes where it stopped. One CPU thread.

    python bench/proxy_fidelity.py --task digits --space digits-cnn --n 40
    python bench/proxy_fidelity.py --task text --space text-transformer --n 30 --full-steps 600 \
        --budgets 15,30,60,120 --ce-steps 30 --noise-students 0 --saturation 1200 --saturation-students 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from scipy import stats

from nas_student.config import RunConfig
from nas_student.distill import evaluate, train
from nas_student.families import build
from nas_student.families.base import describe
from nas_student.search.candidates import draw
from nas_student.search.objective import _seed, prepare


def measure(ctx, arch: dict, h: str, steps: int, kd: bool, seed_base: int) -> dict:
    seed = _seed(h, seed_base)
    torch.manual_seed(seed)
    model = build(arch, ctx.task.io)
    budget = ctx.cfg.budget.model_copy(update={"steps": steps})
    res = train(model, ctx.task.train.x, ctx.task.train.y, budget,
                teacher_logits=ctx.teacher_train_logits if kd else None, seed=seed)
    val = evaluate(model, ctx.task.val.x, ctx.task.val.y, ctx.teacher_val_logits,
                   temperature=budget.temperature)
    test = evaluate(model, ctx.task.test.x, ctx.task.test.y)
    out = {"val_" + k: v for k, v in val.items()}
    out.update({"test_" + k: v for k, v in test.items()})
    out["train_s"] = res.wall_s
    return out


def plan(args, i: int = 0) -> list[tuple[str, int, bool, int]]:
    """(name, steps, kd, seed_base) per measurement of student ``i``, cheapest first; the
    second init seed of the full recipe (the noise ceiling) only for the first
    ``--noise-students``."""
    out = [(f"kd@{s}", s, True, 0) for s in args.budgets]
    out += [(f"ce@{s}", s, False, 0) for s in args.ce_steps]
    out += [("full@s0", args.full_steps, True, 100)]
    if i < args.noise_students:
        out += [("full@s1", args.full_steps, True, 101)]
    return out


def _write(path: Path, data) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def load(cache_dir: Path) -> dict:
    """``students.json`` (the drawn students, their costs and training-free scores) plus one
    ``<hash>.json`` of measurements per student (so parallel workers never share a file)."""
    if not (cache_dir / "students.json").exists():
        return {}
    cache = json.loads((cache_dir / "students.json").read_text())
    for st in cache["students"]:
        f = cache_dir / f"{st['hash']}.json"
        st["m"] = json.loads(f.read_text()) if f.exists() else {}
    return cache


def save_students(cache_dir: Path, cache: dict) -> None:
    _write(cache_dir / "students.json",
           {**cache, "students": [{k: v for k, v in st.items() if k != "m"} for st in cache["students"]]})


def run(args, ctx, cache: dict, cache_dir: Path) -> None:
    if "students" not in cache:
        if args.worker:
            raise SystemExit("worker 0 draws the students first")
        cands = draw(ctx.space, ctx.task.io, ctx.bounds, args.n, seed=args.seed)
        cache["students"] = [{"arch": c.arch, "hash": c.hash, "macs": c.costs["macs"],
                              "params": c.costs["params"]} for c in cands]
        for st in cache["students"]:
            st["m"] = {}
    students = cache["students"][: args.n]
    if args.zero_cost and args.worker == 0 and any("zc" not in st for st in students):
        from nas_student.search import (
            zero_cost,  # cheap (a pass or two per student): all first
        )

        for st in students:
            if "zc" not in st:
                st["zc"] = zero_cost.scores(st["arch"], ctx.task.io, ctx.task.teacher,
                                            ctx.task.train.x[: args.zc_batch], seed=_seed(st["hash"], 0))
    if args.worker == 0:
        save_students(cache_dir, cache)
    sat = [(f"sat@{s}", s, True, 100) for s in args.saturation]
    for i, st in enumerate(students):
        if i % args.workers != args.worker:
            continue
        jobs = plan(args, i) + (sat if i < args.saturation_students else [])
        for name, steps, kd, base in jobs:
            if name in st["m"]:
                continue
            t0 = time.perf_counter()
            st["m"][name] = measure(ctx, st["arch"], st["hash"], steps, kd, base)
            _write(cache_dir / f"{st['hash']}.json", st["m"])
            print(f"[{i + 1}/{len(students)}] {name}: val {st['m'][name]['val_accuracy']:.4f} "
                  f"test {st['m'][name]['test_accuracy']:.4f} ({time.perf_counter() - t0:.1f} s)", flush=True)


# -- analysis ---------------------------------------------------------------------------------

def target(st: dict, args) -> float:
    return st["m"]["full@s0"][f"test_{args.metric}"]


def scores(st: dict, args) -> dict[str, float]:
    out = {}
    for s in args.budgets:
        out[f"KD proxy {s} steps (val {args.metric})"] = st["m"][f"kd@{s}"][f"val_{args.metric}"]
        out[f"KD proxy {s} steps (-val KD loss)"] = -st["m"][f"kd@{s}"]["val_kd_loss"]
    for s in args.ce_steps:
        out[f"CE-only proxy {s} steps (val {args.metric})"] = st["m"][f"ce@{s}"][f"val_{args.metric}"]
    out["parameter count"] = st["params"]
    out["MACs"] = st["macs"]
    for k, v in st.get("zc", {}).items():
        out[f"zero-cost: {k}"] = v
    return out


def topk(score: list[float], tgt: list[float], k: int) -> float:
    order = lambda xs: sorted(range(len(xs)), key=lambda i: -xs[i])
    return len(set(order(score)[:k]) & set(order(tgt)[:k])) / k


def kd_target(st: dict, args) -> float:
    """The second target: minus the validation KD loss after the full recipe (continuous:
    no ties, unlike test accuracy on a few hundred images near 100%)."""
    return -st["m"]["full@s0"]["val_kd_loss"]


def analyse(args, students: list[dict], target=target, noise: bool = True) -> list[dict]:
    done = finished(args, students)
    tgt = [target(st, args) for st in done]
    names = list(scores(done[0], args)) if done else []
    rows = []
    for name in names:
        sc = [scores(st, args)[name] for st in done]
        rows.append(row(name, sc, tgt))
    twice = [st for st in done if "full@s1" in st["m"]]
    if noise and len(twice) >= 4:
        rows.append(row(f"full recipe, another init seed (noise ceiling; {len(twice)} students)",
                        [st["m"]["full@s1"][f"test_{args.metric}"] for st in twice],
                        [target(st, args) for st in twice]))
    return rows


def finished(args, students: list[dict]) -> list[dict]:
    """Students with every measurement but the optional second full seed."""
    return [st for st in students if all(n in st["m"] for n, *_ in plan(args, args.noise_students))
            and (not args.zero_cost or "zc" in st)]


def row(name: str, sc: list[float], t: list[float]) -> dict:
    """Kendall tau-b and Spearman rho (ties allowed), top-k overlap, regret of the top-1."""
    best = max(range(len(sc)), key=lambda i: sc[i])
    return {"score": name, "tau": stats.kendalltau(sc, t).statistic, "rho": stats.spearmanr(sc, t).statistic,
            "top5": topk(sc, t, 5), "top10": topk(sc, t, 10), "regret": max(t) - t[best]}


def cost_share(args, students: list[dict]) -> dict[str, float]:
    """Median proxy train time / median full train time (same students)."""
    full = statistics.median(st["m"]["full@s0"]["train_s"] for st in students if "full@s0" in st["m"])
    return {f"kd@{s}": statistics.median(st["m"][f"kd@{s}"]["train_s"] for st in students
                                         if f"kd@{s}" in st["m"]) / full for s in args.budgets}


def report(args, cache: dict, wall: float) -> str:
    students = cache["students"]
    rows = analyse(args, students)
    done = finished(args, students)
    tgt = sorted(target(st, args) for st in done)
    share = cost_share(args, done)
    kd_rows = {int(r["score"].split()[2]): r for r in rows if r["score"].startswith("KD proxy") and "val" in r["score"]
               and "loss" not in r["score"]}
    best_tau = max((r["tau"] for r in kd_rows.values() if not math.isnan(r["tau"])), default=math.nan)
    chosen = min((s for s, r in kd_rows.items() if r["tau"] >= best_tau - 0.05), default=None)
    cmd = " ".join(["python bench/proxy_fidelity.py", *sys.argv[1:]])
    lines = [
        f"# Proxy fidelity: {args.task} / {args.space}",
        "",
        f"Command: `{cmd}` ({wall / 60:.0f} min of this invocation; cached measurements are reused).",
        "",
        (f"{len(done)} feasible students drawn uniformly from `{args.space}` (seed {args.seed}; rules kept, "
        f"<= the default bounds {', '.join(f'{k} <= {v:,.0f}' for k, v in cache['bounds'].items())}). "
        f"Target: test {args.metric} after the full recipe (KD, {args.full_steps} steps, the default "
        f"Budget otherwise), one init seed. Proxy scores are on the validation split "
        f"(what the search sees); test is disjoint. Target range: min {tgt[0]:.4f}, median "
        f"{statistics.median(tgt):.4f}, max {tgt[-1]:.4f}; {len({round(t, 6) for t in tgt})} distinct values."),
        "",
        "| score | Kendall tau | Spearman rho | top-5 overlap | top-10 overlap | regret of its top-1 |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {r['score']} | {r['tau']:.3f} | {r['rho']:.3f} | {r['top5']:.1f} | {r['top10']:.1f} | "
          f"{r['regret']:.4f} |" for r in rows),
        "",
        "Proxy cost (median train time of the proxy / median train time of the full recipe, same students): "
        + ", ".join(f"{k} {v:.1%}" for k, v in share.items()) + ".",
        "",
        f"Smallest KD budget whose tau is within 0.05 of the best KD budget's ({best_tau:.3f}): **{chosen} steps** "
        f"(tau {kd_rows[chosen]['tau']:.3f})." if chosen else "No KD budget has a defined tau yet.",
    ]
    rows2 = analyse(args, students, kd_target, noise=False)
    lines += ["", ("The same scores against the second target, minus the validation KD loss after the full "
              "recipe (continuous, so no ties; it measures how closely the distilled student matches the teacher):"),
              "", "| score | Kendall tau | Spearman rho | top-5 overlap |", "|---|---:|---:|---:|",
              *(f"| {r['score']} | {r['tau']:.3f} | {r['rho']:.3f} | {r['top5']:.1f} |" for r in rows2)]
    lines += ["", "Per student (test accuracy; KD proxy columns are validation accuracy, as the search sees them):", "",
              "| student | MACs | params | " + " | ".join(f"kd@{b}" for b in args.budgets)
              + " | " + " | ".join(f"ce@{b}" for b in args.ce_steps) + " | full (test) | full val KD loss |",
              "|---|---:|---:|" + "---:|" * (len(args.budgets) + len(args.ce_steps) + 2)]
    for st in done:
        m = st["m"]
        lines.append(f"| {describe(st['arch'])} | {st['macs']:,.0f} | {st['params']:,.0f} | "
                     + " | ".join(f"{m[f'kd@{b}'][f'val_{args.metric}']:.3f}" for b in args.budgets) + " | "
                     + " | ".join(f"{m[f'ce@{b}'][f'val_{args.metric}']:.3f}" for b in args.ce_steps)
                     + f" | {target(st, args):.4f} | {m['full@s0']['val_kd_loss']:.4f} |")
    sat = [st for st in students if any(k.startswith("sat@") for k in st["m"])]
    if sat:
        lines += ["", f"Saturation check (init seed of full@s0; test {args.metric}):", "",
                  "| student | " + " | ".join(f"{s} steps" for s in sorted(args.saturation + [args.full_steps])) + " |",
                  "|---|" + "---:|" * (len(args.saturation) + 1)]
        for st in sat:
            vals = {s: st["m"][f"sat@{s}"][f"test_{args.metric}"] for s in args.saturation if f"sat@{s}" in st["m"]}
            vals[args.full_steps] = st["m"]["full@s0"][f"test_{args.metric}"] if "full@s0" in st["m"] else math.nan
            lines.append(f"| {describe(st['arch'])} | " + " | ".join(f"{vals.get(s, math.nan):.4f}" for s in sorted(vals)) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="digits")
    ap.add_argument("--space", default="digits-cnn")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budgets", default="50,100,150,300,800")
    ap.add_argument("--ce-steps", default="150")
    ap.add_argument("--full-steps", type=int, default=3000)
    ap.add_argument("--noise-students", type=int, default=8,
                    help="students also trained with the full recipe from a second init seed")
    ap.add_argument("--saturation", default="1000,6000", help="extra KD budgets on the first students")
    ap.add_argument("--saturation-students", type=int, default=4)
    ap.add_argument("--metric", default="accuracy")
    ap.add_argument("--zero-cost", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--zc-batch", type=int, default=64)
    ap.add_argument("--cache-dir", default=None, help="default /tmp/nas_student_bench/proxy_fidelity_TASK")
    ap.add_argument("--workers", type=int, default=1, help="processes sharing the students (run one per --worker)")
    ap.add_argument("--worker", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    ints = lambda s: [int(v) for v in s.split(",") if v]
    args.budgets, args.ce_steps, args.saturation = ints(args.budgets), ints(args.ce_steps), ints(args.saturation)
    torch.set_num_threads(1)
    cache_dir = Path(args.cache_dir or f"/tmp/nas_student_bench/proxy_fidelity_{args.task}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = load(cache_dir)
    t0 = time.perf_counter()
    if not args.report_only:
        ctx = prepare(RunConfig(task=args.task, space=args.space, device="cpu"))
        cache.setdefault("bounds", ctx.bounds)
        run(args, ctx, cache, cache_dir)
        if args.workers > 1:
            return  # the report: once every worker is done, run again with --report-only
    cache = load(cache_dir)
    out = Path(args.out or f"results/records/proxy_fidelity_{args.task}.md")
    _write(out.with_suffix(".json"), cache)  # every measurement, kept with the report
    text = report(args, cache, time.perf_counter() - t0)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
