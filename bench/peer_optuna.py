"""The peer: the plain Optuna script an ML engineer would write instead of using nas-student.

Written as a user would, with no nas-student machinery in the loop: a 1-D CNN defined here and
sampled by TPE (3 objectives: accuracy up, MACs and params down), MACs counted with fvcore's
FlopCountAnalysis, a student over the MACs or params bound scored (0, MACs, params) without
training, and knowledge distillation with the teacher run at every step (its soft targets are
not cached). Only the data and the teacher come from nas-student's mnist1d task, so both
searches see the same splits and the same teacher. Its KD settings are nas-student's proxy's
(150 steps, batch 64, Adam lr 0.01 with cosine decay, T = 1, alpha 0.9, beta 0.1), so the two
differ in the search space and the engineering, not the training recipe.

    python bench/peer_optuna.py --trials 40 --seed 0 --macs-ratio 0.0333
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import optuna
import torch
import torch.nn.functional as F
from fvcore.nn import FlopCountAnalysis
from torch import nn

STEPS, BATCH, LR, T, ALPHA, BETA = 150, 64, 0.01, 1.0, 0.9, 0.1


class PeerCNN(nn.Module):
    """conv(k) -> BN -> ReLU layers, each optionally stride 2, global average pooling, linear;
    1-D convolutions for signals (mnist1d), 2-D for images (digits)."""

    def __init__(self, channels: list[int], kernels: list[int], strides: list[int], classes: int = 10,
                 dims: int = 1) -> None:
        super().__init__()
        conv, norm = (nn.Conv1d, nn.BatchNorm1d) if dims == 1 else (nn.Conv2d, nn.BatchNorm2d)
        layers, c_in = [], 1
        for c, k, s in zip(channels, kernels, strides):
            layers += [conv(c_in, c, k, s, k // 2, bias=False), norm(c), nn.ReLU()]
            c_in = c
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, classes)
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == self.dims + 1:  # no channel axis
            x = x.unsqueeze(1)
        return self.head(self.body(x).flatten(2).mean(-1))


def sample(trial: optuna.Trial) -> dict[str, list[int]]:
    n = trial.suggest_int("n_layers", 1, 4)
    return {"channels": [trial.suggest_categorical(f"c{i}", [4, 8, 12, 16, 24, 32, 48]) for i in range(n)],
            "kernels": [trial.suggest_categorical(f"k{i}", [3, 5, 7]) for i in range(n)],
            "strides": [trial.suggest_categorical(f"s{i}", [1, 2]) for i in range(n)]}


def build(params: dict[str, Any], dims: int = 1) -> PeerCNN:
    return PeerCNN(params["channels"], params["kernels"], params["strides"], dims=dims)


def macs_params(model: nn.Module, example: torch.Tensor | None = None) -> tuple[int, int]:
    flops = FlopCountAnalysis(model.eval(), torch.zeros(1, 1, 40) if example is None else example)
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    return int(flops.total()), sum(p.numel() for p in model.parameters())


def kd_train(model: nn.Module, teacher: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, STEPS)
    model.train()
    for _ in range(STEPS):
        idx = torch.randint(0, len(x), (BATCH,), generator=g)
        xb, yb = x[idx], y[idx]
        with torch.no_grad():
            t_logits = teacher(xb)  # the teacher runs at every step
        s_logits = model(xb)
        kd = F.kl_div(F.log_softmax(s_logits / T, -1), F.log_softmax(t_logits / T, -1),
                      reduction="batchmean", log_target=True) * T * T
        loss = ALPHA * kd + BETA * F.cross_entropy(s_logits, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((model(x).argmax(-1) == y).float().mean())


def search(task: Any, trials: int, seed: int, max_macs: float, max_params: float) -> dict[str, Any]:
    """Run the script's study; returns its trials (params, accuracy, MACs, params count, seconds)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"],
                                sampler=optuna.samplers.TPESampler(seed=seed))
    rows = []
    example = task.train.x[:1]
    dims = example.dim() - 2  # (1, 1, 40): 1-D signals; (1, 1, 8, 8): 2-D images

    def objective(trial: optuna.Trial) -> tuple[float, float, float]:
        t0 = time.perf_counter()
        params = sample(trial)
        torch.manual_seed(seed * 100_003 + trial.number)
        model = build(params, dims)
        macs, n_params = macs_params(model, example)
        acc = 0.0
        if macs <= max_macs and n_params <= max_params:
            kd_train(model, task.teacher, task.train.x, task.train.y, seed * 100_003 + trial.number)
            acc = accuracy(model, task.val.x, task.val.y)
        rows.append({"trial": trial.number, "params": params, "accuracy": acc, "macs": macs,
                     "n_params": n_params, "feasible": macs <= max_macs and n_params <= max_params,
                     "seconds": time.perf_counter() - t0})
        return acc, macs, n_params

    t0 = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return {"trials": rows, "wall_s": time.perf_counter() - t0}


def main() -> None:
    from nas_student.tasks import load_task

    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--macs-ratio", type=float, default=0.1)
    ap.add_argument("--params-ratio", type=float, default=0.1)
    ap.add_argument("--task", default="mnist1d", choices=["mnist1d", "digits"])
    ap.add_argument("--json", help="write the trials and the wall time here")
    args = ap.parse_args()
    t0 = time.perf_counter()
    task = load_task(args.task, seed=args.seed)  # the split and teacher nas-student's --seed gives
    t_macs, t_params = macs_params(task.teacher, task.train.x[:1])
    out = search(task, args.trials, args.seed, args.macs_ratio * t_macs, args.params_ratio * t_params)
    out.update(total_s=time.perf_counter() - t0, teacher_macs=t_macs, teacher_params=t_params)
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(out))
    best = max((r for r in out["trials"] if r["feasible"]), key=lambda r: r["accuracy"], default=None)
    print(f"{args.trials} trials in {out['wall_s']:.1f} s; best feasible: {best}")
    assert math.isfinite(out["wall_s"])


if __name__ == "__main__":
    main()
