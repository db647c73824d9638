"""The trust report: after a search, does the proxy's ranking survive longer training?

The search ranks students by their accuracy after a short KD run (the proxy). This step
trains the front's students (at most ``max_front``, spread along the front) and a few
off-front ones (``off_front``, spread over the proxy accuracies) for longer
(``steps_factor`` x the proxy's steps, or ``steps``); fewer (down to 4 + 1) when those runs
would take more than ``budget`` (20 %) of the search's training time. It scores them on the
same validation split and reports Kendall's tau between proxy and longer-run accuracy, on this
user's task. The longer run *continues* each student's proxy run from the weights the search kept
(``weights/<hash>.pt``): the remaining steps only, with the proxy's recipe and a fresh schedule
(a warm restart), so the report costs half of what re-training from the start did. That is
the default (``start: auto``) when the picked students are all of one family; across families
they are re-trained from their initialisation, as is a student without kept weights
(:func:`continues`). It writes ``trust.json`` (every number, and a cache: a student
already re-trained at these steps is not trained again) and ``trust.md`` in the run folder.
The students train on as many processes as the search's ``--workers`` (forked, one share of
the cores each; their numbers are those of one process, the seeds being the students').

Students that are still improving at different rates (a GRU or Transformer starts slower than
a CNN) can keep their order between the proxy and a run twice as long and still swap it after
full training. So the verdict also weighs a projected ranking: each student's accuracy one
more stretch along its own learning curve, assuming it closes again the fraction of its
remaining error that the longer run just closed (:func:`projected`; error shrinking by a
constant factor per doubling of the steps). The verdict takes the lower of the two taus.
Calibrated in ``bench/trust_calibration.py`` on students fully trained (mnist1d,
results/records/trust_calibration_mnist1d_{cnn,mixed}.md): on 1-D CNNs, "high" on the measured
tau alone was right (tau >= 0.7 against full training) in 96 % of virtual searches, and with
the projection still in 96 % (281 of 300 stay "high"); on mixed families the measured tau said
"high" in 90 % of searches while the true tau was 0.33 (right in 2 %); the projection says
"low" in 98 % of them. A first rule, ``long + (long - proxy)``, ignored that students near the
ceiling gain less: it judged the default demo "low" (projected tau -0.16). A projected swap
counts only beyond the validation noise (:func:`projected_tau`): with the budget's 5 students
the demo read "low" on front students projected within 0.0006 of each other. Numbers since
(results/BENCHMARKS.md section 12): "high" right in 99 % of virtual CNN searches (96 % with 8
students); across families "high" is capped at "moderate" (:func:`verdict`).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from nas_student.distill import evaluate, train
from nas_student.families import build
from nas_student.search import pool
from nas_student.search.context import SearchContext
from nas_student.search.trust_pick import (MIN_FRONT, MIN_OFF, continues, long_runs_s, n_families, pick, pick_sizes,
                                           pick_within, search_training_s, steps_of, with_steps)
from nas_student.seeds import student_seed

__all__ = ["HIGH", "MIN_FRONT", "MIN_OFF", "MODERATE", "TrustReport", "continues", "jobs", "long_runs_s", "n_families",
           "pick", "pick_sizes", "pick_within", "projected", "projected_tau", "run_trust", "search_training_s", "trust_steps",
           "verdict", "with_steps"]  # the picking rule lives in trust_pick; its names stay reachable here

#: verdict thresholds on Kendall tau (proxy vs longer training)
HIGH, MODERATE = 0.7, 0.4


@dataclass
class TrustReport:
    steps: int
    proxy_steps: int
    students: list[dict[str, Any]]  # trial, arch_hash, on_front, proxy_accuracy, long_accuracy, continued, macs, params
    tau: float
    p_value: float
    projected_tau: float  # proxy vs each student's projected accuracy (see the module's doc)
    best_kept: bool  # the front's best proxy student is also the best after longer training
    verdict: str
    wall_s: float
    #: the longer runs' training seconds (summed over processes; 0 for students cached from an
    #: earlier report) against the search's (:func:`search_training_s`; None without timing)
    training_s: float = 0.0
    search_training_s: float | None = None
    reused: int = 0  # students whose longer run an earlier report of this run trained (its seconds counted)


def trust_steps(ctx: SearchContext) -> int:
    t = ctx.cfg.search.trust
    return t.steps if t.steps is not None else max(ctx.cfg.budget.steps + 1,
                                                   round(t.steps_factor * ctx.cfg.budget.steps))


def projected(proxy: list[float], long: list[float]) -> list[float]:
    """Each student's accuracy projected along its own trend: the longer run closed a fraction
    of the proxy's remaining error (``1 - accuracy``); the next stretch closes that fraction of
    what is left again: ``long + (long - proxy) * (1 - long) / (1 - proxy)``."""
    return [b + (b - a) * (1 - b) / (1 - a) if a < 1 else b for a, b in zip(proxy, long)]


def projected_tau(proxy: list[float], long: list[float], n_val: int) -> float:
    """Kendall's tau between the proxy's order and the projected one (:func:`projected`), where a
    pair counts as swapped only when the projection reverses it by more than the standard error
    of the difference of two accuracies on ``n_val`` validation examples; a smaller reversal is
    no evidence and counts as kept. Over 5 students a measured tau of 1.00 read "low" when three
    front students at 0.96-0.98 projected within 0.0006 of each other (the default demo)."""
    proj = projected(proxy, long)
    kept = swapped = 0
    for i in range(len(proxy)):
        for j in range(i + 1, len(proxy)):
            a, b = proxy[i] - proxy[j], proj[i] - proj[j]
            if a == 0:
                continue
            se = math.sqrt((long[i] * (1 - long[i]) + long[j] * (1 - long[j])) / max(n_val, 1))
            if a * b < 0 and abs(b) > se:
                swapped += 1
            else:
                kept += 1
    return (kept - swapped) / (kept + swapped) if kept + swapped else math.nan


def verdict(tau: float, n: int, projected_tau: float | None = None, families: int = 1) -> str:
    """From the measured tau and, when given, the projected one: the lower decides. Students
    of several ``families`` are at most "moderate": a run twice as long cannot confirm their
    order across families (with the per-family proxy lr, "high" was right in 64 % of mixed
    searches: results/BENCHMARKS.md section 12)."""
    if n < 4 or math.isnan(tau):
        return "too few trained students to judge the proxy"
    # tau over n students is a multiple of 1 / C(n, 2): over 5, scipy gives 0.39999999999999997 for 0.4
    tau = round(tau, 9)
    projected_tau = None if projected_tau is None or math.isnan(projected_tau) else round(projected_tau, 9)
    unsettled = projected_tau is not None and projected_tau < min(tau, HIGH)
    worst = min(tau, projected_tau) if unsettled else tau  # type: ignore[type-var]
    why = (f" (students still improve at different rates: the projected ranking has tau {projected_tau:.2f})"
           if unsettled else "")
    if worst >= HIGH and families > 1:
        return (f"moderate: the front's order may change after full training; compare its top students "
                f"(students of {families} families, which converge at different speeds: a longer run "
                "cannot confirm their order)")
    if worst >= HIGH:
        return "high: the proxy ranks these students as longer training does"
    if worst >= MODERATE:
        return "moderate: the front's order may change after full training; compare its top students" + why
    return "low: the proxy's ranking does not hold; search again with more --steps" + why


def _load_cache(path: Path, steps: int) -> dict[str, tuple[float, bool, float, int | None]]:
    """{arch_hash: (long accuracy, continued, training s, its own steps)} from an earlier report
    at the same steps."""
    if not path.exists():
        return {}
    try:
        old = json.loads(path.read_text())
    except ValueError:
        return {}
    if old.get("steps") != steps:
        return {}
    return {s["arch_hash"]: (s["long_accuracy"], bool(s.get("continued", False)), float(s.get("train_s") or 0.0),
                             s.get("long_steps")) for s in old.get("students", [])}


def run_trust(ctx: SearchContext, trials: pd.DataFrame, front: pd.DataFrame, run_dir: Path) -> TrustReport:
    """Train the picked students to :func:`trust_steps` steps; write and return the report."""
    t0 = time.perf_counter()
    cfg, s = ctx.cfg, ctx.cfg.search.trust
    steps = trust_steps(ctx)
    budget = cfg.budget.scaled(steps)
    cache = _load_cache(run_dir / "trust.json", steps)
    rows = []
    trials, front = (with_steps(f, cfg.budget, steps, ctx.space.families) for f in (trials, front))
    kept = run_dir / "weights"
    picked = pick_within(trials, front, s, cfg.budget.steps, steps, kept)
    weights = kept if continues(picked, s.start) else None
    largest_first = picked.sort_values("macs", ascending=False, kind="stable")  # the shortest makespan on N processes
    own = dict(zip(picked["arch_hash"], picked["long_steps"]))
    todo = [j for j in jobs(largest_first, weights, cfg.budget.steps, steps)  # trained the same way before: kept
            if j.arch_hash not in cache or cache[j.arch_hash][1] != (j.start is not None)
            or cache[j.arch_hash][3] not in (None, own[j.arch_hash])]
    new = _long_accuracies(ctx, todo, budget)
    cache.update({j.arch_hash: (new[j.arch_hash][0], j.start is not None, new[j.arch_hash][1], int(own[j.arch_hash]))
                  for j in todo})
    for r in picked.itertuples():
        h = r.arch_hash
        rows.append({"trial": int(r.trial), "arch_hash": h, "on_front": bool(r.on_front),
                     "proxy_accuracy": float(r.accuracy), "long_accuracy": float(cache[h][0]),
                     "continued": cache[h][1], "macs": float(r.macs), "params": float(r.params),
                     "proxy_steps": int(r.proxy_steps), "long_steps": int(r.long_steps), "train_s": cache[h][2]})
    from scipy import stats  # imported here: 0.7 s that a search without the report does not pay

    proxy = [x["proxy_accuracy"] for x in rows]
    long = [x["long_accuracy"] for x in rows]
    tau, p = (stats.kendalltau(proxy, long) if len(rows) >= 2 else (math.nan, math.nan))
    tau, p = float(tau), float(p)
    proj = projected_tau(proxy, long, len(ctx.task.val.y))
    fr = [x for x in rows if x["on_front"]]
    best_kept = bool(fr) and (max(fr, key=lambda x: x["proxy_accuracy"])["long_accuracy"]
                              >= max(x["long_accuracy"] for x in fr))
    report = TrustReport(steps, cfg.budget.steps, rows, tau, p, proj, best_kept,
                         verdict(tau, len(rows), proj, n_families(picked)), time.perf_counter() - t0,
                         sum(x["train_s"] for x in rows), search_training_s(trials), len(rows) - len(todo))
    write(report, run_dir)
    return report


def continuation_seed(seed: int) -> int:
    """The data-order seed of a continued run (another order than the proxy's first stretch)."""
    return seed + 1


@dataclass(frozen=True)
class Job:
    """One student to train longer: from ``start`` (its proxy weights, trained ``done`` steps)
    or, without them, from its initialisation."""

    arch: str
    arch_hash: str
    start: Path | None
    done: int


def _long_accuracy(ctx: SearchContext, job: Job, budget: Any) -> tuple[float, float]:
    """One student trained to ``budget.steps`` in all: continued from its proxy weights, or
    re-trained from the proxy's initialisation when there are none; (accuracy, training s)."""
    seed = student_seed(job.arch_hash, ctx.cfg.search.seed)
    torch.manual_seed(seed)  # the proxy's initialisation
    arch = json.loads(job.arch)
    model = build(arch, ctx.task.io)
    budget = budget.for_student(arch, ctx.space.families)  # the proxy's own lr and steps
    if job.start is not None:
        model.load_state_dict(torch.load(job.start, map_location="cpu", weights_only=True))
        more = budget.steps - job.done
        budget = budget.model_copy(update={"steps": more, "warmup_steps": min(budget.warmup_steps, more - 1)})
        seed = continuation_seed(seed)
    model.to(ctx.device)
    res = train(model, *ctx.task.distillation_set(), budget, teacher=ctx.task.teacher,
                teacher_logits=ctx.teacher_train_logits, seed=seed)
    return evaluate(model, ctx.task.val.x, ctx.task.val.y)["accuracy"], res.wall_s


def jobs(picked: pd.DataFrame, weights_dir: Path | None, proxy_steps: int, steps: int) -> list[Job]:
    """What to train for each picked student: continue from its kept weights (in ``weights_dir``;
    None: never) when they exist and it trained fewer steps than ``steps``; else from its
    initialisation."""
    out = []
    for r in picked.itertuples():
        _, done, long = steps_of(r, proxy_steps, steps)
        w = None if weights_dir is None else weights_dir / f"{r.arch_hash}.pt"
        out.append(Job(r.arch, r.arch_hash, w if w is not None and w.exists() and done < long else None, done))
    return out


_SHARED: dict[str, Any] = {}  # what forked helpers inherit: the context and the budget


def _long_accuracy_in_helper(job: Job) -> tuple[float, float]:
    return _long_accuracy(_SHARED["ctx"], job, _SHARED["budget"])


def _long_accuracies(ctx: SearchContext, todo: list[Job], budget: Any) -> dict[str, tuple[float, float]]:
    """The students' longer-run (accuracy, training s), on as many processes as the search's ``--workers``
    (forked, one core each: the students are independent); in this process when one."""
    n = min(pool.resolve(ctx.cfg.execution.workers, ctx.device, ctx.cfg.execution.backend), len(todo))
    if n <= 1 or pool.start_method(ctx.device) != "fork":
        return {j.arch_hash: _long_accuracy(ctx, j, budget) for j in todo}
    _SHARED.update(ctx=ctx, budget=budget)
    try:
        with ProcessPoolExecutor(n, mp_context=mp.get_context("fork"), initializer=torch.set_num_threads,
                                 initargs=(pool.threads_per_worker(n),)) as ex:
            return dict(zip((j.arch_hash for j in todo), ex.map(_long_accuracy_in_helper, todo)))
    finally:
        _SHARED.clear()


def _json_safe(v: float) -> float | None:
    return None if isinstance(v, float) and math.isnan(v) else v


def write(report: TrustReport, run_dir: Path) -> None:
    d = asdict(report)
    d.update(tau=_json_safe(report.tau), p_value=_json_safe(report.p_value),
             projected_tau=_json_safe(report.projected_tau))
    tmp = run_dir / f".trust.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(d, indent=2))
    os.replace(tmp, run_dir / "trust.json")
    (run_dir / "trust.md").write_text(markdown(report))


def _own_steps(report: TrustReport) -> list[tuple[int, int]]:
    """(proxy steps, steps in all) of the students that trained other steps than the run's (by
    depth, or their family's step factor)."""
    return sorted({(s["proxy_steps"], s["long_steps"]) for s in report.students if "long_steps" in s
                   and (s["proxy_steps"], s["long_steps"]) != (report.proxy_steps, report.steps)})


def summary(report: TrustReport) -> str:
    """One line: tau, how many students, the verdict."""
    n = len(report.students)
    own = bool(_own_steps(report))
    runs = (f"the proxy (each student's own steps) and {report.steps / report.proxy_steps:g}x those" if own
            else f"the proxy ({report.proxy_steps} steps) and {report.steps} steps")
    return f"Trust: Kendall tau {report.tau:.2f} between {runs} over {n} students; {report.verdict}"


def how_trained(report: TrustReport) -> str:
    n = sum(bool(s.get("continued")) for s in report.students)
    more = report.steps - report.proxy_steps
    own = _own_steps(report)
    longer = ("; students with their own steps (by depth, or their family's step factor): "
              + ", ".join(f"{a} proxy steps and {b} in all" for a, b in own)) if own else ""
    if n == len(report.students):
        return f"every student continued from its proxy weights for {more} more steps{longer}"
    return (f"{n} of {len(report.students)} students continued from their proxy weights for {more} more steps, "
            f"the others re-trained from their initialisation for {report.steps} (several families, or no weights "
            f"kept){longer}")


def _share(report: TrustReport) -> str:
    if not report.search_training_s:
        return ""
    again = f" ({report.reused} of them reused from an earlier report)" if report.reused else ""
    return (f" The longer runs trained {report.training_s:.1f} s{again}, "
            f"{report.training_s / report.search_training_s:.0%} of the search's {report.search_training_s:.1f} s "
            "of training.")


def markdown(report: TrustReport) -> str:
    lines = [
        "# Trust report",
        "",
        summary(report) + ".",
        "",
        (f"The front's best student by proxy accuracy is {'also' if report.best_kept else 'NOT'} the best "
        f"after {report.steps} steps. Kendall tau p-value {report.p_value:.3g}. Projected ranking "
        f"(each student further along its own learning curve): tau {report.projected_tau:.2f}. "
        f"Training took {report.wall_s:.1f} s: {how_trained(report)}.{_share(report)}"),
        "",
        "| trial | on front | proxy accuracy | accuracy after longer training | MACs | params |",
        "|---:|:---:|---:|---:|---:|---:|",
        *(f"| {s['trial']} | {'yes' if s['on_front'] else 'no'} | {s['proxy_accuracy']:.4f} | "
          f"{s['long_accuracy']:.4f} | {s['macs']:,.0f} | {s['params']:,.0f} |" for s in report.students),
    ]
    return "\n".join(lines) + "\n"
