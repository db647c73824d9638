"""Text task: the teacher vs the best students at <= 1/10 and <= 1/20 of its MACs, and KD vs
CE-only training of those students at the same budget (several seeds).

Candidates per budget (Transformer and LSTM/GRU students) are trained once with KD; the best
by validation next-token accuracy is kept; then it is trained with KD and with CE only, the
same steps and seeds, and scored on the test windows. One CPU thread throughout.
Writes results/records/text_kd.md.

    python bench/text_kd.py [--seeds 3] [--steps 400]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from nas_student.cost import measure_latency, profile
from nas_student.distill import Recipe, evaluate, predict, train
from nas_student.families import build
from nas_student.families.base import describe
from nas_student.tasks import load_task

T = {"family": "transformer", "activation": "gelu", "dropout": 0.0}
CANDIDATES = {  # filtered against the budgets at run time (an oversized one is skipped, said so)
    "1/10": [
        {**T, "layers": 2, "d_model": 40, "heads": 4, "ffn_ratio": 2.0, "pos_encoding": "sinusoidal", "norm_placement": "pre"},
        {**T, "layers": 3, "d_model": 32, "heads": 4, "ffn_ratio": 2.0, "pos_encoding": "sinusoidal", "norm_placement": "pre"},
        {"family": "rnn", "cell": "lstm", "layers": 1, "hidden": 72, "embed_dim": 32},
        {"family": "rnn", "cell": "gru", "layers": 1, "hidden": 80, "embed_dim": 32},
    ],
    "1/20": [
        {**T, "layers": 1, "d_model": 40, "heads": 4, "ffn_ratio": 2.0, "pos_encoding": "sinusoidal", "norm_placement": "pre"},
        {**T, "layers": 2, "d_model": 24, "heads": 4, "ffn_ratio": 2.0, "pos_encoding": "sinusoidal", "norm_placement": "pre"},
        {"family": "rnn", "cell": "lstm", "layers": 1, "hidden": 48, "embed_dim": 24},
        {"family": "rnn", "cell": "gru", "layers": 1, "hidden": 56, "embed_dim": 24},
    ],
}
RATIO = {"1/10": 0.1, "1/20": 0.05}


def fit(task, arch, budget, seed, soft):
    torch.manual_seed(seed)
    m = build(arch, task.io)
    train(m, task.train.x, task.train.y, budget, teacher_logits=soft, seed=seed)
    return m


def ms(xs):
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}" if len(xs) > 1 else f"{xs[0]:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--proxy-steps", type=int, default=100, help="the search's proxy budget, second table")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--out", default="results/records/text_kd.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    task = load_task("text")
    io, teacher = task.io, task.teacher
    budget = Recipe(steps=args.steps, batch_size=32, lr=3e-3, temperature=args.temperature)
    proxy = budget.model_copy(update={"steps": args.proxy_steps})
    soft = predict(teacher, task.train.x)
    t_cost = profile(teacher, io.example_input())
    t_lat = measure_latency(teacher, io.example_input(), warmup=5, repeats=30)
    t_test = evaluate(teacher, task.test.x, task.test.y)
    uni = task.teacher_info["unigram"]
    rows, shorts, picks = [], [], {}
    for name, cands in CANDIDATES.items():
        scored = []
        for arch in cands:
            c = profile(build(arch, io), io.example_input())
            if c.macs > RATIO[name] * t_cost.macs or c.params > RATIO[name] * t_cost.params:
                print(f"{name}: skipped {describe(arch)} ({c.macs:,} MACs, {c.params:,} params: over)", file=sys.stderr)
                continue
            m = fit(task, arch, budget, 0, soft)
            scored.append((evaluate(m, task.val.x, task.val.y)["accuracy"], arch, c))
            print(f"{name} candidate {describe(arch)}: val acc {scored[-1][0]:.4f}", file=sys.stderr)
        _, arch, c = max(scored, key=lambda s: s[0])
        picks[name] = (arch, c, scored)
        res = {"kd": [], "ce": []}
        short = {"kd": [], "ce": []}
        for seed in range(args.seeds):
            for mode in ("kd", "ce"):
                m = fit(task, arch, budget, seed, soft if mode == "kd" else None)
                res[mode].append(evaluate(m, task.test.x, task.test.y))
                short[mode].append(evaluate(fit(task, arch, proxy, seed, soft if mode == "kd" else None),
                                            task.test.x, task.test.y))
        lat = measure_latency(m, io.example_input(), warmup=5, repeats=30)
        rows.append((name, arch, c, lat, res))
        shorts.append((name, arch, short))
    elapsed = time.perf_counter() - t_start

    lines = [
        "# Text task: teacher vs students at 1/10 and 1/20 of its MACs; KD vs CE-only",
        "",
        f"Command: `NAS_STUDENT_CACHE=... python bench/text_kd.py --seeds {args.seeds} --steps {args.steps} "
        f"--proxy-steps {args.proxy_steps} --temperature {args.temperature:g}` "
        f"({elapsed:.0f} s on this machine, one CPU thread; teacher cached).",
        "",
        f"Task `text`: character-level LM on scikit-learn's dataset descriptions, windows of "
        f"{io.input_shape[0]}, vocabulary {io.vocab_size}; {len(task.train)} / {len(task.val)} / "
        f"{len(task.test)} train/val/test windows. Students trained {args.steps} steps, batch 32, "
        f"Adam lr 3e-3 cosine; KD: T={budget.temperature}, alpha={budget.alpha}, beta={budget.beta} "
        f"(token-level, padding masked); CE: the same with the teacher removed (plain next-token CE). "
        f"Test metrics over real (non-padding) positions; mean ± sd over seeds 0..{args.seeds - 1}. "
        f"Latency: median of 30 forward passes of one 64-token window, batch 1, 1 thread "
        f"(`measure_latency`).",
        "",
        "| model | MACs | params | MACs vs teacher | latency ms | speedup | test ppl | test next-token acc |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| unigram (no context) | 0 | - | - | - | - | {uni['perplexity']:.2f} | {uni['accuracy']:.3f} |",
        f"| teacher: {describe(task.teacher_info['definition']['arch'])} | {t_cost.macs:,} | {t_cost.params:,} | 1 | "
        f"{t_lat:.2f} | 1.0x | {t_test['perplexity']:.2f} | {t_test['accuracy']:.3f} |",
    ]
    for name, arch, c, lat, res in rows:
        for mode in ("kd", "ce"):
            ppl = [r["perplexity"] for r in res[mode]]
            acc = [r["accuracy"] for r in res[mode]]
            lines.append(f"| <= {name}, {mode.upper()}: {describe(arch)} | {c.macs:,} | {c.params:,} | "
                         f"{c.macs / t_cost.macs:.3f} | {lat:.2f} | {t_lat / lat:.1f}x | {ms(ppl)} | {ms(acc)} |")
    lines += ["", "KD minus CE-only, same student, same steps and seeds (test; negative perplexity and "
              "positive accuracy = distillation helps):", "",
              "| budget | student | steps | KD ppl | CE ppl | Δ ppl (KD − CE) | KD acc | CE acc | Δ acc (KD − CE) |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    table = [(name, arch, args.steps, res) for name, arch, c, lat, res in rows]
    table += [(name, arch, args.proxy_steps, short) for name, arch, short in shorts]
    for name, arch, steps, res in table:
        dp = [k["perplexity"] - e["perplexity"] for k, e in zip(res["kd"], res["ce"])]
        da = [k["accuracy"] - e["accuracy"] for k, e in zip(res["kd"], res["ce"])]
        pk, pc = [r["perplexity"] for r in res["kd"]], [r["perplexity"] for r in res["ce"]]
        ak, ac = [r["accuracy"] for r in res["kd"]], [r["accuracy"] for r in res["ce"]]
        lines.append(f"| <= {name} | {describe(arch)} | {steps} | {ms(pk)} | {ms(pc)} | {ms(dp)} | "
                     f"{ms(ak)} | {ms(ac)} | {ms(da)} |")
    lines += ["", "Candidates (KD, seed 0, validation next-token accuracy; the best was kept):", ""]
    for name, (arch, c, scored) in picks.items():
        for acc, a, cc in scored:
            lines.append(f"- <= {name}: {describe(a)}: {cc.macs:,} MACs, {cc.params:,} params, val acc {acc:.4f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
