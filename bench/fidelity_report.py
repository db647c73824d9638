"""The analysis and the record of ``bench/proxy_fidelity.py``: rank correlations between each
cheap score and the full-distillation target, the noise ceiling of that target, the budget
rule, and the per-student table. Pure functions of the measurement cache (no training)."""

from __future__ import annotations

import math
import statistics
import sys

from scipy import stats

from nas_student.distill.recipe import ProxyRecipe, Recipe
from nas_student.families.base import describe

RULE_MARGIN = 0.05  # the budget rule: the smallest budget whose tau is within this of the best
COST_CEILING = 0.05  # the proxy's cost goal: this share of the full recipe's steps at most


def score_of(m: dict, split: str, args) -> float:
    """The metric on a split, higher is better (perplexity is negated)."""
    v = m[f"{split}_{args.metric}"]
    return -v if args.metric == "perplexity" else v


def shown(v: float, args) -> float:
    return -v if args.metric == "perplexity" else v


def full_runs(st: dict, args) -> list[float]:
    return [score_of(st["m"][f"full@s{k}"], "test", args) for k in range(args.full_seeds)]


def target(st: dict, args) -> float:
    """The test metric after the full recipe, the mean over its init seeds (as `train` reports)."""
    return statistics.mean(full_runs(st, args))


def kd_target(st: dict, args) -> float:
    """The second target: minus the validation KD loss after the full recipe (continuous: no
    ties, unlike test accuracy on a few hundred images near 100 %)."""
    return -statistics.mean(st["m"][f"full@s{k}"]["val_kd_loss"] for k in range(args.full_seeds))


def is_default_proxy(overrides: dict) -> bool:
    """True when the full recipe with ``overrides`` is the search's default proxy recipe (at
    any number of steps), from the init seed the search uses (repeats from other seeds: see
    :func:`proxy_noise`)."""
    if "seed" in overrides:
        return False
    return is_default_recipe(overrides)


def is_default_recipe(overrides: dict) -> bool:
    overrides = {k: v for k, v in overrides.items() if k != "seed"}
    mine = Recipe.model_validate({**Recipe().model_dump(), **overrides}).model_dump()
    ref = ProxyRecipe().model_dump()
    return {k: v for k, v in mine.items() if k != "steps"} == {k: v for k, v in ref.items() if k != "steps"}


def label(overrides: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items())


def scores(st: dict, args) -> dict[str, tuple[float, int]]:
    """Every score of one student -> (value, proxy steps: 0 for training-free scores)."""
    m, metric, out = st["m"], args.metric, {}
    for name, (ov, steps) in args.variants.items():
        for s in steps:
            if is_default_proxy(ov):
                out[f"**default proxy** ({label(ov)}), {s} steps (val {metric})"] = (score_of(m[f"{name}@{s}"], "val", args), s)
    for s in args.budgets:
        out[f"full recipe cut short, {s} steps (val {metric})"] = (score_of(m[f"kd@{s}"], "val", args), s)
        out[f"full recipe cut short, {s} steps (-val KD loss)"] = (-m[f"kd@{s}"]["val_kd_loss"], s)
    for s in args.ce_steps:
        out[f"CE only, {s} steps (val {metric})"] = (score_of(m[f"ce@{s}"], "val", args), s)
    for name, (ov, steps) in args.variants.items():
        for s in steps:
            if not is_default_proxy(ov) and "seed" not in ov:
                out[f"KD {label(ov)}, {s} steps (val {metric})"] = (score_of(m[f"{name}@{s}"], "val", args), s)
    out["parameter count"] = (st["params"], 0)
    out["MACs"] = (st["macs"], 0)
    for k, v in st.get("zc", {}).items():
        out[f"training-free: {k} (at init)"] = (v, 0)
    return out


def tau(sc: list[float], t: list[float]) -> float:
    return float(stats.kendalltau(sc, t).statistic) if len(sc) > 2 else math.nan


def topk(score: list[float], tgt: list[float], k: int) -> float:
    order = lambda xs: sorted(range(len(xs)), key=lambda i: -xs[i])
    return len(set(order(score)[:k]) & set(order(tgt)[:k])) / k


def row(name: str, sc: list[float], t: list[float], steps: int = 0) -> dict:
    """Kendall tau-b and Spearman rho (ties allowed), tau on each half of the draw, top-k
    overlap, regret of the top-1."""
    best = max(range(len(sc)), key=lambda i: sc[i])
    half = len(sc) // 2
    return {"score": name, "steps": steps, "tau": tau(sc, t), "rho": float(stats.spearmanr(sc, t).statistic),
            "tau_a": tau(sc[:half], t[:half]), "tau_b": tau(sc[half:], t[half:]),
            "top5": topk(sc, t, 5), "top10": topk(sc, t, 10), "regret": max(t) - t[best]}


def analyse(args, done: list[dict], tgt_fn=target) -> list[dict]:
    tgt = [tgt_fn(st, args) for st in done]
    per = [scores(st, args) for st in done]
    return [row(name, [p[name][0] for p in per], tgt, steps) for name, (_, steps) in per[0].items()] if done else []


def noise_ceiling(args, done: list[dict]) -> list[tuple[str, float]]:
    """How well one full run ranks students as other full runs do: tau between two seeds, and
    between one seed and the mean of the others (a proxy cannot be expected to beat these by
    much: they measure the target's own noise)."""
    if args.full_seeds < 2 or not done:
        return []
    runs = [full_runs(st, args) for st in done]
    k = args.full_seeds
    pairs = [tau([r[i] for r in runs], [r[j] for r in runs]) for i in range(k) for j in range(i + 1, k)]
    rest = [tau([r[i] for r in runs], [statistics.mean(r[:i] + r[i + 1:]) for r in runs]) for i in range(k)]
    return [(f"one full run vs another (init seeds; mean over {len(pairs)} pairs)", statistics.mean(pairs)),
            (f"one full run vs the mean of the other {k - 1}", statistics.mean(rest))]


def seed_groups(args) -> dict[tuple[str, int], list[str]]:
    """(recipe, steps) -> the measurements of that proxy from each init seed: the seed-0 one
    first (``kd@S`` for the full recipe cut short, else the variant without ``seed``), then its
    ``seed=K`` repeats. Only groups with repeats."""
    groups: dict[tuple[str, int], list[str]] = {}
    for s in args.budgets:
        groups[("full recipe cut short", s)] = [f"kd@{s}"]
    for name, (ov, steps) in args.variants.items():
        rec = {k: v for k, v in ov.items() if k != "seed"}
        key = "**default proxy**" if is_default_recipe(rec) else f"KD {label(rec)}" if rec else "full recipe cut short"
        for s in steps:
            names = groups.setdefault((key, s), [])
            names.insert(0 if "seed" not in ov else len(names), f"{name}@{s}")
    return {k: v for k, v in groups.items() if len(v) > 1}


def over_seeds(args, done: list[dict], tgt_fn=target) -> list[dict]:
    """For each proxy repeated from several init seeds: its tau from each seed (mean, spread),
    tau between seeds (the proxy's own noise), and the tau of the mean over seeds (what
    averaging would buy, at that many times the cost)."""
    tgt = [tgt_fn(st, args) for st in done]
    out = []
    for (key, s), names in sorted(seed_groups(args).items(), key=lambda kv: (kv[0][0] != "**default proxy**", kv[0][1])):
        sc = [[score_of(st["m"][n], "val", args) for st in done] for n in names]
        each = [tau(x, tgt) for x in sc]
        out.append({"score": key, "steps": s, "seeds": len(names), "taus": each, "mean": statistics.mean(each),
                    "sd": statistics.stdev(each), "held_out": statistics.mean(tau(x[len(x) // 2:], tgt[len(tgt) // 2:]) for x in sc),
                    "between": statistics.mean(tau(sc[i], sc[j]) for i in range(len(sc)) for j in range(i + 1, len(sc))),
                    "of_mean": tau([statistics.mean(v) for v in zip(*sc)], tgt)})
    return out


def seeds_table(rows: list[dict], full_steps: int) -> list[str]:
    if not rows:
        return []
    out = ["**Over proxy init seeds** (the tables above use one init seed per student and proxy; a proxy "
           "run is itself noisy): each proxy repeated from other init seeds.", "",
           "| proxy | steps | seeds | tau per seed | mean tau (sd) | mean tau, held-out half | tau seed vs seed "
           "| tau of the mean over seeds (cost) |", "|---|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['score']} | {r['steps']} | {r['seeds']} | {', '.join(f'{t:.3f}' for t in r['taus'])} "
                   f"| **{r['mean']:.3f}** ({r['sd']:.3f}) | {r['held_out']:.3f} | {r['between']:.3f} "
                   f"| {r['of_mean']:.3f} ({r['seeds'] * r['steps'] / full_steps:.0%}) |")
    return out + [""]


def budget_rule(rows: list[dict], seeded: list[dict] = ()) -> tuple[int | None, float, dict[int, float]]:
    """Over the default proxy's budgets: the smallest whose tau is within RULE_MARGIN of the
    best; on the mean tau over init seeds where every budget was repeated."""
    fam = {r["steps"]: r["tau"] for r in rows if r["score"].startswith("**default proxy**")}
    means = {r["steps"]: r["mean"] for r in seeded if r["score"] == "**default proxy**"}
    if means and set(means) == set(fam):
        fam = means
    if not fam:
        return None, math.nan, fam
    best = max(fam.values())
    return min(s for s, t in fam.items() if t >= best - RULE_MARGIN), best, fam


def wall_share(args, done: list[dict], name: str) -> float:
    """Median over students of: train time of measurement ``name`` / the median train time of
    that student's full runs (wall times; noisy on a shared machine)."""
    return statistics.median(st["m"][name]["train_s"] / statistics.median(
        st["m"][f"full@s{k}"]["train_s"] for k in range(args.full_seeds)) for st in done)


def table(rows: list[dict], full_steps: int) -> list[str]:
    out = ["| score | Kendall tau | tau 1st half | tau 2nd half | Spearman rho | top-5 overlap | top-10 overlap "
           "| regret of its top-1 | cost (steps / full) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        cost = f"{r['steps'] / full_steps:.1%}" if r["steps"] else "~0"
        out.append(f"| {r['score']} | {r['tau']:.3f} | {r['tau_a']:.3f} | {r['tau_b']:.3f} | {r['rho']:.3f} | "
                   f"{r['top5']:.1f} | {r['top10']:.1f} | {r['regret']:.4f} | {cost} |")
    return out


def report(args, cache: dict, done: list[dict], wall: float) -> str:
    rows = analyse(args, done)
    seeded = over_seeds(args, done)
    tgt = sorted(shown(target(st, args), args) for st in done)
    chosen, best, fam = budget_rule(rows, seeded)
    default_steps = ProxyRecipe().steps
    default_name = next((n for n, (ov, _) in args.variants.items() if is_default_proxy(ov)), None)
    default_row = next((r for r in rows if r["score"].startswith("**default proxy**") and r["steps"] == default_steps), None)
    half = len(done) // 2
    lines = [
        f"# Proxy fidelity: {args.task} / {args.space}", "",
        f"Command: `python bench/proxy_fidelity.py {' '.join(sys.argv[1:])}` ({wall / 60:.0f} min of this "
        "invocation; cached measurements are reused).", "",
        f"{len(done)} feasible students drawn uniformly from `{args.space}` (seed {args.seed}; rules kept, <= the "
        f"default bounds {', '.join(f'{k} <= {v:,.0f}' for k, v in cache['bounds'].items())}). **Target**: test "
        f"{args.metric} after the full recipe (KD, {args.full_steps} steps, `Recipe`'s defaults: lr 3e-3 cosine, "
        f"T = 4, alpha 0.9, beta 0.1), the mean over {args.full_seeds} init seeds. Proxy scores are on the "
        "validation split (what the search sees); test is disjoint. Target range: "
        f"min {tgt[0]:.4f}, median {statistics.median(tgt):.4f}, max {tgt[-1]:.4f}.", "",
        "**Noise ceiling** (the target's own noise):", "",
        *(f"- {name}: tau = {v:.3f}" for name, v in noise_ceiling(args, done)), "",
        f"`tau 1st/2nd half`: tau on students 1-{half} and {half + 1}-{len(done)} of the draw. The proxy "
        "variants were chosen looking at the first half only; the second half is held out.", "",
        *table(rows, args.full_steps), "",
    ]
    lines += seeds_table(seeded, args.full_steps)
    if default_row is not None:
        share = wall_share(args, done, f"{default_name}@{default_steps}")
        rep = next((r for r in seeded if r["score"] == "**default proxy**" and r["steps"] == default_steps), None)
        value = (f"{rep['mean']:.2f} (mean over {rep['seeds']} proxy init seeds, "
                 f"{min(rep['taus']):.2f} to {max(rep['taus']):.2f}; held-out half {rep['held_out']:.2f})"
                 if rep else f"{default_row['tau']:.2f} (held-out half: {default_row['tau_b']:.2f})")
        lines += [f"default proxy: Kendall tau = {value}; {default_steps} steps = "
                  f"{default_steps / args.full_steps:.0%} of the full recipe's steps, {share:.1%} of its wall "
                  "time (median over students)", ""]
    if chosen is not None:
        lines += [f"Budget rule (smallest budget of the default proxy whose tau is within {RULE_MARGIN} of its "
                  f"best, {best:.3f}{', taus averaged over init seeds' if seeded else ''}): **{chosen} steps**. "
                  "Taus by budget: " + ", ".join(f"{s}: {t:.3f}" for s, t in sorted(fam.items())) + ".", ""]
        cheap = {s: t for s, t in fam.items() if s / args.full_steps <= COST_CEILING + 1e-9}
        if chosen / args.full_steps > COST_CEILING + 1e-9 and cheap:
            within, _, _ = budget_rule([{"score": "**default proxy**", "steps": s, "tau": t} for s, t in cheap.items()])
            lines += [f"That budget costs {chosen / args.full_steps:.0%} of the full recipe, over the "
                      f"{COST_CEILING:.0%} ceiling; the same rule over the budgets within it: **{within} steps**.", ""]
    rows2 = analyse(args, done, kd_target)
    lines += ["Against a second target, minus the validation KD loss after the full recipe (continuous, "
              "so no ties; how closely the distilled student matches the teacher):", "",
              "| score | Kendall tau | Spearman rho | top-5 overlap |", "|---|---:|---:|---:|",
              *(f"| {r['score']} | {r['tau']:.3f} | {r['rho']:.3f} | {r['top5']:.1f} |" for r in rows2), ""]
    lines += per_student(args, done, default_name)
    lines += saturation(args, cache["students"])
    return "\n".join(lines) + "\n"


def per_student(args, done: list[dict], default_name: str | None) -> list[str]:
    cols = [f"kd@{b}" for b in args.budgets] + [f"ce@{b}" for b in args.ce_steps]
    if default_name:
        cols += [f"{default_name}@{s}" for s in args.variants[default_name][1]]
    out = [f"Per student (proxy columns: validation {args.metric}; `{default_name}` = the default proxy; "
           f"full: test {args.metric} per init seed):", "",
           "| student | MACs | params | " + " | ".join(cols) + " | full (per seed) | target |",
           "|---|---:|---:|" + "---:|" * (len(cols) + 2)]
    for st in done:
        m = st["m"]
        out.append(f"| {describe(st['arch'])} | {st['macs']:,.0f} | {st['params']:,.0f} | "
                   + " | ".join(f"{shown(score_of(m[c], 'val', args), args):.3f}" for c in cols)
                   + " | " + ", ".join(f"{shown(v, args):.4f}" for v in full_runs(st, args))
                   + f" | {shown(target(st, args), args):.4f} |")
    return out + [""]


def saturation(args, students: list[dict]) -> list[str]:
    sat = [st for st in students if any(k.startswith("sat@") for k in st["m"])]
    if not sat:
        return []
    steps = sorted(args.saturation + [args.full_steps])
    out = [f"Saturation check (the init seed of full@s0; test {args.metric}):", "",
           "| student | " + " | ".join(f"{s} steps" for s in steps) + " |", "|---|" + "---:|" * len(steps)]
    for st in sat:
        vals = {s: shown(score_of(st["m"][f"sat@{s}"], "test", args), args) for s in args.saturation
                if f"sat@{s}" in st["m"]}
        if "full@s0" in st["m"]:
            vals[args.full_steps] = shown(score_of(st["m"]["full@s0"], "test", args), args)
        out.append(f"| {describe(st['arch'])} | " + " | ".join(f"{vals.get(s, math.nan):.4f}" for s in steps) + " |")
    return out
