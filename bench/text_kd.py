"""Text task: does distillation pay? KD vs CE-only for the best students at <= 1/10 and <= 1/30
of the teacher's MACs, and KD + attention maps for a Transformer student (several seeds).

Students per budget are picked as the search would: every candidate under the budget gets the
search's default proxy (150 KD steps, seed 0) and the best by validation next-token accuracy is
kept (a GRU, and at 1/10 also the best Transformer, the only family attention maps fit). Each
pick is then fully trained with the product's default full-training recipe for language models
(``default_recipe(ProxyRecipe(), per_token=True)``: T = 1, alpha 0.9, beta 0.1; ``--steps``
overrides its length) with KD, with CE only (the same recipe, no teacher) and, for the
Transformer, KD + attention; the same steps and seeds, scored on the test windows. One CPU
thread throughout. Finished runs are kept in ``--cache`` (a rerun resumes). Writes
results/records/text_kd.{md,json}.

    python bench/text_kd.py [--seeds 3] [--steps 1500]
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

from nas_student.cost import measure_latency, profile
from nas_student.distill import ProxyRecipe, evaluate, predict, train
from nas_student.distill.recipe import AttentionKD
from nas_student.families import build
from nas_student.families.base import describe
from nas_student.full_training import default_recipe
from nas_student.tasks import load_task

T = {"family": "transformer", "activation": "gelu", "dropout": 0.0, "pos_encoding": "sinusoidal",
     "norm_placement": "pre", "heads": 4, "ffn_ratio": 2.0}
CANDIDATES = [  # filtered against each budget at run time (an oversized one is skipped, said so)
    {**T, "layers": 2, "d_model": 40}, {**T, "layers": 3, "d_model": 32}, {**T, "layers": 1, "d_model": 32},
    {**T, "layers": 2, "d_model": 24},
    {"family": "rnn", "cell": "gru", "layers": 1, "hidden": 80, "embed_dim": 32},
    {"family": "rnn", "cell": "lstm", "layers": 1, "hidden": 72, "embed_dim": 32},
    {"family": "rnn", "cell": "gru", "layers": 1, "hidden": 48, "embed_dim": 24},
    {"family": "rnn", "cell": "lstm", "layers": 1, "hidden": 40, "embed_dim": 24},
    {"family": "rnn", "cell": "gru", "layers": 1, "hidden": 40, "embed_dim": 16},
    {"family": "rnn", "cell": "gru", "layers": 1, "hidden": 32, "embed_dim": 16},
    {"family": "rnn", "cell": "lstm", "layers": 1, "hidden": 32, "embed_dim": 16},
]
BUDGETS = {"1/10": 0.1, "1/30": 1 / 30}
LATENCY_BATCH = 64


def mean_sd(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}" if len(xs) > 1 else f"{xs[0]:.3f}"


class Runs:
    """Finished runs by key, in a JSON file rewritten after each (a killed bench resumes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, dict] = json.loads(path.read_text()) if path.exists() else {}

    def get(self, key: str, run) -> dict:
        if key not in self.data:
            t0 = time.perf_counter()
            self.data[key] = {**run(), "wall_s": time.perf_counter() - t0}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1))
            os.replace(tmp, self.path)
            print(f"{key}: {self.data[key]}", file=sys.stderr, flush=True)
        return self.data[key]


def latencies(model, io) -> dict[str, float]:
    one = io.example_input()
    many = one.repeat(LATENCY_BATCH, *[1] * (one.dim() - 1))
    return {"b1_ms": measure_latency(model, one, warmup=5, repeats=30),
            f"b{LATENCY_BATCH}_ms": measure_latency(model, many, warmup=2, repeats=10)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=None, help="full training steps (default: the product's)")
    ap.add_argument("--cache", default="/tmp/nas_student_bench/text_kd.json")
    ap.add_argument("--out", default="results/records/text_kd")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    task = load_task("text")
    io, teacher = task.io, task.teacher
    proxy = ProxyRecipe()
    full = default_recipe(proxy, per_token=True)
    if args.steps:
        full = full.model_copy(update={"steps": args.steps})
    corpus = task.teacher_info["corpus"]
    runs = Runs(Path(args.cache).with_name(f"{Path(args.cache).stem}-{corpus['sha256'][:12]}-{full.steps}.json"))
    soft = predict(teacher, task.train.x)
    print(f"teacher: test {evaluate(teacher, task.test.x, task.test.y)}", file=sys.stderr, flush=True)
    t_cost = profile(teacher, io.example_input())
    t_lat = latencies(teacher, io)
    t_test = evaluate(teacher, task.test.x, task.test.y)

    def fit(arch, recipe, seed, distil):
        torch.manual_seed(seed)
        m = build(arch, io)
        train(m, task.train.x, task.train.y, recipe, teacher_logits=soft if distil else None,
              teacher=teacher if recipe.attention else None, seed=seed)
        return m

    costs = {describe(a): profile(build(a, io), io.example_input()) for a in CANDIDATES}
    picks: dict[str, list[dict]] = {}
    screened = []
    for name, ratio in BUDGETS.items():
        best: dict[str, tuple[float, dict]] = {}
        for arch in CANDIDATES:
            c = costs[describe(arch)]
            if c.macs > ratio * t_cost.macs or c.params > ratio * t_cost.params:
                continue
            acc = runs.get(f"proxy|{describe(arch)}", lambda: evaluate(fit(arch, proxy, 0, True), task.val.x, task.val.y))["accuracy"]
            screened.append((name, arch, acc))
            kind = "transformer" if arch["family"] == "transformer" else "rnn"
            if kind not in best or acc > best[kind][0]:
                best[kind] = (acc, arch)
        if "rnn" not in best:
            raise SystemExit(f"no recurrent candidate fits {name} of the teacher's MACs and params: add a smaller one")
        picks[name] = [best["rnn"][1]] + ([best["transformer"][1]] if name == "1/10" and "transformer" in best else [])

    results = []  # (budget, arch, mode, [metrics per seed])
    for name, archs in picks.items():
        for arch in archs:
            modes = {"CE only": (full, False), "KD": (full, True)}
            if arch["family"] == "transformer":
                modes["KD + attention"] = (full.model_copy(update={"attention": AttentionKD(weight=1.0)}), True)
            for mode, (recipe, distil) in modes.items():
                per_seed = [runs.get(f"full|{describe(arch)}|{mode}|{seed}",
                                     lambda: evaluate(fit(arch, recipe, seed, distil), task.test.x, task.test.y))
                            for seed in range(args.seeds)]
                results.append((name, arch, mode, per_seed))
    lat = {describe(a): latencies(build(a, io), io) for archs in picks.values() for a in archs}
    elapsed = time.perf_counter() - t_start
    write(args, task, full, corpus, t_cost, t_lat, t_test, costs, screened, results, lat, elapsed)


def write(args, task, full, corpus, t_cost, t_lat, t_test, costs, screened, results, lat, elapsed) -> None:
    io, uni = task.io, task.teacher_info["unigram"]
    b = f"b{LATENCY_BATCH}_ms"
    lines = [
        "# Text task: KD vs CE-only at 1/10 and 1/30 of the teacher's MACs",
        "",
        f"Command: `python bench/text_kd.py --seeds {args.seeds} --steps {full.steps}` ({elapsed / 60:.0f} min on this "
        "machine, one CPU thread; teacher cached).",
        "",
        f"Corpus: `{corpus['source']}` of Python {corpus['python']} ({corpus['texts']} topics, {corpus['characters']:,} "
        f"characters, sha256 {corpus['sha256'][:16]}...). Windows of {io.input_shape[0]}, vocabulary {io.vocab_size}; "
        f"{len(task.train)} / {len(task.val)} / {len(task.test)} train/val/test windows.",
        "",
        f"Full training (each student, each mode): {full.describe()}. CE only: the same recipe without the teacher. "
        f"Test metrics over real (non-padding) positions; mean ± sd over seeds 0..{args.seeds - 1}. Latency: median "
        f"forward pass of 64-token windows at batch 1 and batch {LATENCY_BATCH}, 1 thread.",
        "",
        "| model | mode | MACs | params | MACs vs teacher | ms b1 | ms b64 | test ppl | test next-token acc |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| unigram (no context) | - | 0 | - | - | - | - | {uni['perplexity']:.2f} | {uni['accuracy']:.3f} |",
        f"| teacher: {describe(task.teacher_info['definition']['arch'])} | CE | {t_cost.macs:,} | {t_cost.params:,} | 1 | "
        f"{t_lat['b1_ms']:.2f} | {t_lat[b]:.1f} | {t_test['perplexity']:.3f} | {t_test['accuracy']:.3f} |",
    ]
    summary = {}
    for name, arch, mode, per_seed in results:
        c, d = costs[describe(arch)], describe(arch)
        ppl, acc = [r["perplexity"] for r in per_seed], [r["accuracy"] for r in per_seed]
        lines.append(f"| <= {name}: {d} | {mode} | {c.macs:,} | {c.params:,} | {c.macs / t_cost.macs:.3f} | "
                     f"{lat[d]['b1_ms']:.2f} | {lat[d][b]:.1f} | {mean_sd(ppl)} | {mean_sd(acc)} |")
        summary.setdefault((name, d), {})[mode] = per_seed
    lines += ["", "Distillation minus CE only, same student, steps and seeds (test perplexity; negative = "
              "distillation helps; the spread is the sd of the per-seed differences):", "",
              "| budget | student | mode | Δ ppl vs CE only | Δ acc vs CE only |", "|---|---|---|---:|---:|"]
    record = {"corpus": corpus, "recipe": full.model_dump(mode="json"), "seeds": args.seeds,
              "teacher": {"perplexity": t_test["perplexity"], "accuracy": t_test["accuracy"], "macs": t_cost.macs,
                          "latency": t_lat}, "rows": []}
    for (name, d), modes in summary.items():
        ce = modes["CE only"]
        for mode, per_seed in modes.items():
            record["rows"].append({"budget": name, "student": d, "mode": mode, "test": per_seed, "latency": lat[d],
                                   "macs": costs[d].macs, "params": costs[d].params})
            if mode == "CE only":
                continue
            dp = [k["perplexity"] - e["perplexity"] for k, e in zip(per_seed, ce)]
            da = [k["accuracy"] - e["accuracy"] for k, e in zip(per_seed, ce)]
            lines.append(f"| <= {name} | {d} | {mode} | {mean_sd(dp)} | {mean_sd(da)} |")
    lines += ["", "Students screened (the search's default proxy, KD, seed 0; validation next-token accuracy; "
              "the best GRU/LSTM and the best Transformer were kept):", ""]
    for name, arch, acc in screened:
        c = costs[describe(arch)]
        lines.append(f"- <= {name}: {describe(arch)}: {c.macs:,} MACs ({c.macs / t_cost.macs:.3f}), {c.params:,} params, "
                     f"val acc {acc:.4f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
    Path(f"{args.out}.json").write_text(json.dumps(record, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
