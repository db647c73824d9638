"""Data-free distillation: test accuracy reached without the training data vs with it.

Digits: per seed, 1,000 inputs are synthesised from the teacher alone (DeepInversion,
``nas_student.distill.datafree``); fixed students are trained the same budget three ways:
KD on the synthetic inputs only (no training data), KD on the real training split, CE on the
real training split; all scored on the real test split. Text (``--text``): a GRU student
trained by token-level KD on sequences sampled from the teacher vs on the real windows.
One CPU thread. Writes results/records/datafree.md.

    python bench/datafree.py [--seeds 3] [--steps 1500] [--samples 1000] [--text]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from nas_student.cost import profile
from nas_student.distill import Recipe, evaluate, predict, train
from nas_student.distill.datafree import DataFreeSettings
from nas_student.families import build
from nas_student.families.base import describe
from nas_student.tasks import Task, load_task
from nas_student.tasks.datafree import data_free_task

CNN = {"family": "cnn", "groups": 1, "norm": "batch"}
STUDENTS = [
    {**CNN, "stem_width": 16, "activation": "relu", "residual": False,
     "stages": [{"depth": 1, "width": 32, "kernel": 3, "downsample": "maxpool"}]},
    {"family": "mlp", "layers": [{"width": 128}, {"width": 64}], "activation": "relu", "norm": "none"},
]
TEXT_STUDENT = {"family": "rnn", "cell": "gru", "layers": 1, "hidden": 56, "embed_dim": 24}
DIGITS_SETTINGS = DataFreeSettings(enabled=True, input_range=(0.0, 1.0))


def ms(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}" if len(xs) > 1 else f"{xs[0]:.3f}"


def fit(task: Task, arch: dict, train_task: Task, budget: Recipe, seed: int, kd: bool) -> float:
    torch.manual_seed(seed)
    m = build(arch, task.io)
    soft = predict(task.teacher, train_task.train.x) if kd else None
    train(m, train_task.train.x, train_task.train.y, budget, teacher_logits=soft, seed=seed)
    return evaluate(m, task.test.x, task.test.y)["accuracy"]


def digits(args: argparse.Namespace) -> list[str]:
    task = load_task("digits")
    settings = DIGITS_SETTINGS.model_copy(update={"samples": args.samples})
    budget = Recipe(steps=args.steps)
    t_macs = profile(task.teacher, task.io.example_input()).macs
    res = {i: {"synthetic KD": [], "real KD": [], "real CE": []} for i in range(len(STUDENTS))}
    synth_s, conf = [], []
    for seed in range(args.seeds):
        view = data_free_task(task, settings, seed=seed)
        synth_s.append(view.teacher_info["data_free"]["synthesis_s"])
        conf.append(view.teacher_info["data_free"]["teacher_confidence"])
        for i, arch in enumerate(STUDENTS):
            res[i]["synthetic KD"].append(fit(task, arch, view, budget, seed, kd=True))
            res[i]["real KD"].append(fit(task, arch, task, budget, seed, kd=True))
            res[i]["real CE"].append(fit(task, arch, task, budget, seed, kd=False))
            print(seed, describe(arch), {k: v[-1] for k, v in res[i].items()}, flush=True)
    s = settings
    lines = [
        "## Digits (DeepInversion inputs)",
        "",
        (f"Teacher: {describe(task.teacher_info['definition']['arch'])}, {t_macs:,} MACs, test accuracy "
        f"{evaluate(task.teacher, task.test.x, task.test.y)['accuracy']:.3f}. Per seed, {s.samples} inputs "
        f"synthesised ({s.steps} Adam steps per batch of {s.batch_size}, lr {s.lr}; weights bn "
        f"{s.bn_weight} (first layer x{s.first_bn_multiplier}), ce {s.ce_weight}, tv {s.tv_weight}, "
        f"l2 {s.l2_weight}, diversity {s.diversity_weight}; inputs in {list(s.input_range or [])}). "
        f"Synthesis: {ms(synth_s)} s per seed; teacher's mean confidence on them {ms(conf)}. "
        f"Students: {args.steps} steps, batch {budget.batch_size}, Adam lr {budget.lr} cosine; "
        f"KD T={budget.temperature}, alpha={budget.alpha}, beta={budget.beta} (on synthetic inputs the "
        f"hard label is the teacher's top-1); CE = real labels only. Test accuracy on the real test "
        f"split ({len(task.test)} images), mean ± sd over seeds 0..{args.seeds - 1} (the seed sets the "
        f"synthetic inputs, the student's initialisation and the batch order). Real training split: "
        f"{len(task.train)} images."),
        "",
        ("| student | MACs vs teacher | KD, synthetic only (no training data) | KD, real data | CE, real data "
        "| synthetic − real KD |"),
        "|---|---:|---:|---:|---:|---:|",
    ]
    for i, arch in enumerate(STUDENTS):
        r = res[i]
        gap = [a - b for a, b in zip(r["synthetic KD"], r["real KD"])]
        ratio = profile(build(arch, task.io), task.io.example_input()).macs / t_macs
        lines.append(f"| {describe(arch)} | {ratio:.3f} | {ms(r['synthetic KD'])} | {ms(r['real KD'])} | "
                     f"{ms(r['real CE'])} | {ms(gap)} |")
    return lines


def text(args: argparse.Namespace) -> list[str]:
    task = load_task("text")
    budget = Recipe(steps=400, batch_size=32, lr=3e-3, temperature=1.0)
    settings = DataFreeSettings(enabled=True, samples=len(task.train))
    res: dict[str, list[float]] = {"sampled": [], "real": []}
    secs = []
    for seed in range(args.seeds):
        view = data_free_task(task, settings, seed=seed)
        secs.append(view.teacher_info["data_free"]["synthesis_s"])
        for name, src in (("sampled", view), ("real", task)):
            torch.manual_seed(seed)
            m = build(TEXT_STUDENT, task.io)
            train(m, src.train.x, src.train.y, budget, teacher_logits=predict(task.teacher, src.train.x),
                  seed=seed)
            res[name].append(evaluate(m, task.test.x, task.test.y)["perplexity"])
        print("text", seed, {k: v[-1] for k, v in res.items()}, flush=True)
    t_ppl = evaluate(task.teacher, task.test.x, task.test.y)["perplexity"]
    return [
        "## Text (sequences sampled from the teacher)",
        "",
        (f"Teacher: {describe(task.teacher_info['definition']['arch'])}, test perplexity {t_ppl:.2f} "
        f"(unigram {task.teacher_info['unigram']['perplexity']:.2f}). Per seed, {settings.samples} "
        f"sequences of {task.io.input_shape[0]} tokens sampled from the teacher (temperature "
        f"{settings.temperature}): {ms(secs)} s. Student {describe(TEXT_STUDENT)}: 400 steps, batch 32, "
        f"token-level KD T=1, alpha 0.9, beta 0.1; test perplexity on the real test windows, mean ± sd over "
        f"seeds 0..{args.seeds - 1}."),
        "",
        "| student | KD on teacher samples (no training data) | KD on the real windows |",
        "|---|---:|---:|",
        f"| {describe(TEXT_STUDENT)} | {ms(res['sampled'])} | {ms(res['real'])} |",
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--text", action="store_true", help="also the text task (teacher samples)")
    ap.add_argument("--out", default="results/records/datafree.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    body = digits(args) + ([""] + text(args) if args.text else [])
    cmd = (f"python bench/datafree.py --seeds {args.seeds} --steps {args.steps} --samples {args.samples}"
           + (" --text" if args.text else ""))
    lines = [
        "# Data-free distillation: accuracy without the training data vs with it",
        "",
        (f"Command: `NAS_STUDENT_CACHE=... {cmd}` ({time.perf_counter() - t0:.0f} s, one CPU thread, "
        f"torch {torch.__version__}; teachers cached; the machine was shared with other jobs, so the "
        "synthesis times are upper bounds)."),
        "",
        *body,
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
