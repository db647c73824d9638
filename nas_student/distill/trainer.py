"""The trainer: a budget of optimiser steps over in-memory tensors, with or without a teacher.

The search proxy is this trainer with a short budget; full training the same with a long one;
the built-in teachers are trained by it too (no teacher, plain CE).

Two kinds of output, told apart by the model's output rank (so callers such as the search
objective need not know the task): classification ``(N, C)`` with labels ``(N,)``, and
per-token outputs ``(N, L, V)`` (language modelling) with targets ``(N, L)`` where padding
positions hold ``IGNORE_INDEX``; those are masked out of the losses and of every metric.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Annotated, Callable, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from nas_student.distill.losses import IGNORE_INDEX, kd_loss
from nas_student.errors import NasStudentError


class Budget(BaseModel):
    """How a student is trained: steps, batch, optimiser and the KD loss weights."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: Annotated[int, Field(ge=1)] = 300
    batch_size: Annotated[int, Field(ge=1)] = 64
    lr: Annotated[float, Field(gt=0)] = 3e-3
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    schedule: Literal["constant", "cosine"] = "cosine"
    temperature: Annotated[float, Field(gt=0)] = 4.0
    alpha: Annotated[float, Field(ge=0)] = 0.9
    beta: Annotated[float, Field(ge=0)] = 0.1


@dataclass
class TrainResult:
    steps: int
    wall_s: float
    final_loss: float


class DivergedError(NasStudentError):
    """The loss became NaN or infinite."""


def _optimizer(model: nn.Module, b: Budget) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if b.optimizer == "sgd":
        return torch.optim.SGD(params, lr=b.lr, momentum=0.9, weight_decay=b.weight_decay, nesterov=True)
    cls = torch.optim.AdamW if b.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=b.lr, weight_decay=b.weight_decay)


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None,
    budget: Budget,
    *,
    teacher_logits: torch.Tensor | None = None,
    seed: int = 0,
    on_step: Callable[[int], bool] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``(x, y)``; with ``teacher_logits`` (same rows as ``x``,
    precomputed once) the loss is the KD loss, without it plain cross-entropy. For per-token
    outputs ``teacher_logits`` is ``(N, L, V)`` and the loss is token-level KD over real tokens.

    ``on_step(steps_done)`` is called after every optimiser step; if it returns True, training
    stops there (early stopping; ``TrainResult.steps`` says how many steps ran)."""
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    opt = _optimizer(model, budget)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, budget.steps)
             if budget.schedule == "cosine" else None)
    alpha = budget.alpha if teacher_logits is not None else 0.0
    beta = budget.beta if teacher_logits is not None else 1.0
    n, bs = len(x), min(budget.batch_size, len(x))
    # Data and the teacher's soft targets go to the device once; the soft targets are computed
    # once at this temperature, so a KD step costs one log_softmax more than a CE step.
    # For language modelling they are (N, L, V) floats for the whole training set, held in
    # memory: 4*N*L*V bytes, ~28 MB for the built-in text task (N~540, L=64, V~200 at most).
    # That stops scaling at real vocabularies (V=32k, L=512: 64 MB per training sequence):
    # there the teacher must run per batch or keep only its top-k log-probs per position.
    x = x.to(device)
    y = y.to(device) if y is not None else None
    soft = (torch.log_softmax(teacher_logits.to(device).float() / budget.temperature, dim=-1)
            if teacher_logits is not None else None)
    model.train()
    t0 = time.perf_counter()
    order, pos, loss_v = torch.randperm(n, generator=gen), 0, math.nan
    steps = 0
    for _ in range(budget.steps):
        if pos + bs > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos:pos + bs]
        pos += bs
        idx = idx.to(device)
        out = model(x[idx])
        loss = kd_loss(out, None, y[idx] if y is not None else None,
                       teacher_log_probs=soft[idx] if soft is not None else None,
                       temperature=budget.temperature, alpha=alpha, beta=beta).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        steps += 1
        if on_step is not None and on_step(steps):
            break
    loss_v = float(loss.detach())
    if not math.isfinite(loss_v):
        raise DivergedError(f"training diverged: final loss {loss_v}")
    return TrainResult(steps, time.perf_counter() - t0, loss_v)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits for all rows of ``x`` in eval mode, on CPU."""
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    out = torch.cat([model(x[i:i + batch_size].to(device)).float().cpu()
                     for i in range(0, len(x), batch_size)])
    model.train(was)
    return out


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             teacher_logits: torch.Tensor | None = None, temperature: float = 4.0) -> dict[str, float]:
    """Accuracy; with the teacher's logits also top-1 agreement and the KD loss (T^2 * KL).

    Per-token outputs (language modelling): ``accuracy`` is next-token accuracy over real
    (non-padding) target positions, plus ``perplexity`` = exp(mean cross-entropy in nats)
    over the same positions; agreement and the KD loss are per real position too."""
    logits = predict(model, x)
    if logits.dim() > 2:
        return _evaluate_tokens(logits, y, teacher_logits, temperature)
    pred = logits.argmax(-1)
    out = {"accuracy": float((pred == y).float().mean())}
    if teacher_logits is not None:
        out["agreement"] = float((pred == teacher_logits.argmax(-1)).float().mean())
        out["kd_loss"] = float(kd_loss(logits, teacher_logits, None, temperature=temperature,
                                       alpha=1.0, beta=0.0).kd)
    return out


def _evaluate_tokens(logits: torch.Tensor, y: torch.Tensor, teacher_logits: torch.Tensor | None,
                     temperature: float) -> dict[str, float]:
    v = logits.shape[-1]
    keep = (y != IGNORE_INDEX).reshape(-1)
    flat, target = logits.reshape(-1, v)[keep], y.reshape(-1)[keep]
    pred = flat.argmax(-1)
    nll = float(torch.nn.functional.cross_entropy(flat.double(), target))
    out = {"accuracy": float((pred == target).float().mean()), "perplexity": math.exp(nll)}
    if teacher_logits is not None:
        t = teacher_logits.reshape(-1, v)[keep]
        out["agreement"] = float((pred == t.argmax(-1)).float().mean())
        out["kd_loss"] = float(kd_loss(flat, t, None, temperature=temperature, alpha=1.0, beta=0.0).kd)
    return out
