"""Proxy fidelity: does the search's cheap score rank students as full distillation does?

Samples feasible students uniformly from a space (the default bounds: <= 1/10 of the
teacher's MACs and params), then for each one measures

* ``kd@S``: the full recipe (``Recipe``'s defaults: T = 4, lr 3e-3) cut short at S steps,
  scored by validation accuracy (and KD loss), initialised as the search's
  :class:`~nas_student.search.objective.Objective` initialises it;
* ``ce@S``: the same student trained S steps with cross-entropy only;
* ``NAME@S``: proxy variants (``--variants``): the full recipe with some settings changed, e.g.
  the search's default proxy (``ProxyRecipe``: lr 0.01, T = 1) at several budgets;
* ``full@sK``: the full recipe (KD, ``--full-steps``) from init seed K; the target is the test
  metric after it, averaged over ``--full-seeds`` seeds (test is disjoint from the proxy's val);
* training-free scores at init (:mod:`nas_student.search.zero_cost`), params and MACs;

and reports (:mod:`fidelity_report`) Kendall tau / Spearman rho between each score and the
target, on all students and on each half of the draw, top-k overlap, the regret of each
score's top-1, and the noise ceiling (one full run vs another). Every measurement is cached
(one JSON per student, merged under a lock) so runs resume and several processes can share a
cache (``--workers``/``--worker`` split students, ``--only`` splits measurement kinds). One
CPU thread per process. The commands behind the records are in ``results/BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

from nas_student.config import RunConfig
from nas_student.distill import evaluate, train
from nas_student.distill.recipe import ProxyRecipe, Recipe
from nas_student.families import build, get_family
from nas_student.search.candidates import draw
from nas_student.search.context import prepare
from nas_student.search.trust import continuation_seed
from nas_student.seeds import student_seed
from nas_student.tasks.base import Split

BIG_TEST_SEED = 1042  # the task's own data is generator seed 42

sys.path.insert(0, str(Path(__file__).parent))
from fidelity_report import report  # noqa: E402


def measure(ctx, arch: dict, h: str, steps: int, kd: bool, seed_base: int,
            overrides: dict | None = None, big: Split | None = None, keep: Path | None = None) -> dict:
    seed = student_seed(h, seed_base)
    torch.manual_seed(seed)
    model = build(arch, ctx.task.io)
    # kd@S and full: full training's recipe (Recipe's defaults) at S steps; variants change it
    ov, steps = for_family(overrides or {}, arch.get("family"), steps)
    more = ov.pop("continue", 0)
    per_layer, power = ov.pop("per_layer", None), ov.pop("depth_power", None)
    if per_layer is not None:  # K steps per layer of the student (its depth), or K x depth^P
        steps = round(int(per_layer) * get_family(arch["family"]).depth(arch) ** float(1 if power is None else power))
    elif power is not None:  # the product's rule: steps at depth 2, x (depth / 2)^P
        steps = ProxyRecipe(steps=steps, depth_power=float(power)).steps_for(arch)
    more = steps if more == "own" else int(more)  # "own": as many more as the student's proxy steps
    budget = Recipe.model_validate({**Recipe().model_dump(), **ov, "steps": steps})
    res = train(model, ctx.task.train.x, ctx.task.train.y, budget,
                teacher_logits=ctx.teacher_train_logits if kd else None, seed=seed)
    if more:  # the trust report's longer run: the same recipe again from these weights
        res = train(model, ctx.task.train.x, ctx.task.train.y, budget.model_copy(update={"steps": more}),
                    teacher_logits=ctx.teacher_train_logits if kd else None, seed=continuation_seed(seed))
        steps += more
    val = evaluate(model, ctx.task.val.x, ctx.task.val.y, ctx.teacher_val_logits,
                   temperature=budget.temperature)
    test = evaluate(model, ctx.task.test.x, ctx.task.test.y)
    out = {"val_" + k: v for k, v in val.items()}
    out.update({"test_" + k: v for k, v in test.items()})
    if big is not None:
        out.update({"bigtest_" + k: v for k, v in evaluate(model, big.x, big.y).items()})
    if keep is not None:  # the trained weights, to score them again later without training
        keep.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), keep)
    out["train_s"] = res.wall_s
    out["steps"] = steps
    per_epoch = max(1, -(-len(ctx.task.train.x) // budget.batch_size))
    out["sotl"] = statistics.mean(res.loss_curve)  # sum of training losses (Ru et al. 2021), per step
    out["sotl_e"] = statistics.mean(res.loss_curve[-per_epoch:])  # ... over the last epoch only
    return out


def big_test(n: int, cache_dir: Path) -> Split:
    """``n`` fresh mnist1d signals from the package's own generator (its default arguments,
    generator seed :data:`BIG_TEST_SEED`, none of them in the task's 20,000), standardised by
    their own mean and sd as the generator standardises the task's: a test split large enough
    that one run's accuracy is not dominated by which few signals it happens to miss (one
    signal is 0.0025 points here against 0.025 on the task's 4,000). Cached as ``.npz``."""
    import numpy as np

    path = cache_dir / f"bigtest-{n}-{BIG_TEST_SEED}.npz"
    if not path.exists():
        from mnist1d.data import get_dataset_args, make_dataset

        gen = get_dataset_args()
        gen.num_samples, gen.train_split, gen.seed = n, 0.0, BIG_TEST_SEED
        d = make_dataset(gen)  # reseeds numpy's global state: this process draws nothing else from it
        np.savez(path, x=d["x_test"].astype(np.float32), y=d["y_test"].astype(np.int64))
    with np.load(path, allow_pickle=False) as f:
        return Split(torch.from_numpy(f["x"].reshape(-1, 1, f["x"].shape[-1]).copy()), torch.from_numpy(f["y"].copy()))


def for_family(overrides: dict, family: str | None, steps: int) -> tuple[dict, int]:
    """A variant's recipe overrides for one student, and its steps: a key ``FAMILY.key``
    (e.g. ``rnn.lr=0.03``, ``transformer.steps=300``) applies only to students of that family
    and wins over the plain ``key``; ``steps`` there replaces the variant's budget."""
    out = {k: v for k, v in overrides.items() if "." not in k}
    out.update({k.split(".", 1)[1]: v for k, v in overrides.items() if "." in k and k.split(".", 1)[0] == family})
    return out, int(out.pop("steps", steps))


def plan(args) -> list[tuple[str, int, bool, int, dict]]:
    """(name, steps, kd, seed_base, recipe overrides) per measurement of a student, cheapest
    first: the proxies, their variants, then the full recipe from ``--full-seeds`` init seeds."""
    out = [(f"kd@{s}", s, True, 0, {}) for s in args.budgets]
    out += [(f"ce@{s}", s, False, 0, {}) for s in args.ce_steps]
    out += [(f"{name}@{s}", s, True, ov.get("seed", 0), {k: v for k, v in ov.items() if k != "seed"})
            for name, (ov, steps) in args.variants.items() for s in steps]
    out += [(f"full@s{k}", args.full_steps, True, 100 + k, {}) for k in range(args.full_seeds)]
    return out


def parse_variants(text: str, steps: list[int]) -> dict[str, tuple[dict, list[int]]]:
    """``"lr1e-2:lr=0.01;T2@50/150:temperature=2,alpha=0.5"`` -> {name: (recipe overrides,
    budgets)}; a variant without ``@`` is measured at ``steps`` (``--variant-steps``). The key
    ``seed=K`` is not a recipe setting: it repeats the variant from another init seed (default 0);
    nor is ``continue=N``: N more steps of the same recipe from the trained weights (a fresh
    schedule, as the trust report continues a proxy run; ``continue=own``: as many more as the
    student's own steps, the trust report's run under steps by depth); nor is ``depth_power=P``: the variant's budget
    is the steps of a depth-2 student and others train it x (depth / 2)^P, as the search's proxy
    does (``ProxyRecipe.steps_for``; absent: every student trains the budget); nor is
    ``per_layer=K``: K steps per layer of the student (``Family.depth``) in place of the budget,
    or K x depth^P with ``depth_power=P`` (the form of earlier records).
    A key ``FAMILY.key`` applies to one family's students only (:func:`for_family`): a
    per-family recipe, e.g. ``fam:lr=0.01,temperature=1,rnn.lr=0.03,transformer.steps=300``."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        head, _, kv = part.partition(":")
        name, _, at = head.partition("@")
        out[name] = ({k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in kv.split(",") if item)},
                     [int(v) for v in at.split("/")] if at else steps)
    return out


def parse_compose(text: str) -> dict[str, dict[str, str]]:
    """``"fam300:rnn=p@300,transformer=p@300,*=p@150"`` -> {name: {family or "*": measurement}}."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, kv = part.partition(":")
        out[name] = dict(item.split("=", 1) for item in kv.split(",") if item)
    return out


def _write(path: Path, data) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _merge(path: Path, name: str, value: dict) -> dict:
    """Add one measurement to a student's file under a lock (two processes may measure
    different things of the same student) and return the file's whole content."""
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[name] = value
        _write(path, data)
    return data


def load(cache_dir: Path) -> dict:
    """``students.json`` (the drawn students, their costs and training-free scores) plus one
    ``<hash>.json`` of measurements per student (written through :func:`_merge`)."""
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


def done(args, m: dict, name: str) -> bool:
    """A measurement is done when cached; with ``--big-test`` a full run also needs its score
    on the large test split (an older run without it is trained again from the same seed)."""
    return name in m and not (args.big_test and name.startswith("full@") and "bigtest_accuracy" not in m[name])


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
                                            ctx.task.train.x[: args.zc_batch], seed=student_seed(st["hash"], 0))
    if args.worker == 0:
        save_students(cache_dir, cache)
    big = big_test(args.big_test, cache_dir) if args.big_test else None
    sat = [(f"sat@{s}", s, True, 100, {}) for s in args.saturation]
    # one measurement kind at a time over all students, so partial results are usable early
    for name, steps, kd, base, ov in plan(args) + sat:
        if args.only and not name.startswith(tuple(args.only)):
            continue
        for i, st in enumerate(students):
            if i % args.workers != args.worker or done(args, st["m"], name):
                continue
            if name.startswith("sat@") and i >= args.saturation_students:
                continue
            t0 = time.perf_counter()
            full = name.startswith("full@")
            new = measure(ctx, st["arch"], st["hash"], steps, kd, base, ov, big if full else None,
                          cache_dir / "weights" / f"{st['hash']}-{name}.pt" if full else None)
            old = st["m"].get(name)
            if old:  # a rerun for the large test split: keep the first run's time (taken alone)
                new.update(train_s=old["train_s"], train_s_rerun=new["train_s"],
                           same_test_accuracy=old["test_accuracy"] == new["test_accuracy"])
            st["m"] = _merge(cache_dir / f"{st['hash']}.json", name, new)
            print(f"[{i + 1}/{len(students)}] {name}: val {st['m'][name]['val_accuracy']:.4f} "
                  f"test {st['m'][name]['test_accuracy']:.4f} ({time.perf_counter() - t0:.1f} s)", flush=True)


def finished(args, students: list[dict]) -> list[dict]:
    """Students (in draw order) with every planned measurement."""
    return [st for st in students[: args.n] if all(done(args, st["m"], n) for n, *_ in plan(args))
            and (not args.zero_cost or "zc" in st)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="digits")
    ap.add_argument("--space", default="digits-cnn")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budgets", default="50,100,150,300,800")
    ap.add_argument("--ce-steps", default="150")
    ap.add_argument("--full-steps", type=int, default=3000)
    ap.add_argument("--full-seeds", type=int, default=3,
                    help="init seeds of the full recipe per student; the target is their mean")
    ap.add_argument("--big-test", type=int, default=0,
                    help="mnist1d: also score every full run on this many fresh signals (another generator "
                         "seed) and take the target from them; full runs without that score are trained again")
    ap.add_argument("--variants", default="",
                    help='proxy recipe variants, "name:key=value,...;name2:..." (measured at --variant-steps)')
    ap.add_argument("--variant-steps", default="150")
    ap.add_argument("--compose", default="",
                    help='report-only scores that take each family\'s value from another measurement, '
                         '"name:rnn=p@300,transformer=p@300,*=p@150;..." (a per-family budget, no extra training)')
    ap.add_argument("--mix", default="",
                    help='report-only scores that average the ranks of others, "name:p@150+zc:synflow;..." '
                         '(a measurement\'s val metric, zc:NAME, macs or params)')
    ap.add_argument("--only", default="", help="measure only these kinds (name prefixes, e.g. full,kd)")
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
    args.variant_steps, args.variants = ints(args.variant_steps), parse_variants(args.variants, ints(args.variant_steps))
    args.only = [v for v in args.only.split(",") if v]
    args.big_test_seed = BIG_TEST_SEED
    if args.big_test and args.task != "mnist1d":
        raise SystemExit(f"--big-test: only the mnist1d task has a generator to draw fresh signals from, not {args.task}")
    args.compose = parse_compose(args.compose)
    args.mix = dict(part.split(":", 1) for part in args.mix.split(";") if part)
    torch.set_num_threads(1)
    cache_dir = Path(args.cache_dir or f"/tmp/nas_student_bench/proxy_fidelity_{args.task}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = load(cache_dir)
    t0 = time.perf_counter()
    if not args.report_only:
        ctx = prepare(RunConfig(task=args.task, space=args.space, device="cpu"))
        cache.setdefault("bounds", ctx.bounds)
        run(args, ctx, cache, cache_dir)
        if args.workers > 1 or args.only:
            return  # the report: once every worker is done, run again with --report-only
    cache = load(cache_dir)
    out = Path(args.out or f"results/records/proxy_fidelity_{args.task}.md")
    _write(out.with_suffix(".json"), cache)  # every measurement, kept with the report
    text = report(args, cache, finished(args, cache["students"]), time.perf_counter() - t0)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
