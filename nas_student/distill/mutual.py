"""Deep mutual learning with a teacher: a cohort of students trained together, each learning
from the teacher's soft targets, the labels, and the other students.

Zhang, Xiang, Hospedales & Lu 2018, "Deep Mutual Learning" (CVPR): students trained side by
side, each also minimising ``KL(p_peer || p_self)`` towards its peers' current predictions,
generalise better than alone. Here each student ``i``'s loss on a batch is the recipe's output
KD loss (``alpha * T^2 * KL(teacher || i) + beta * CE``, :mod:`nas_student.distill.losses`)
plus ``peer_weight * mean_{j != i} KL(p_j || p_i)`` at temperature 1, with ``p_j`` held fixed
(detached), as in the paper's alternating updates. All students see the same batches; the
cohort's whole state is checkpointed in one file, so a killed run resumes exactly.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nas_student.distill.losses import kd_loss
from nas_student.distill.recipe import Recipe
from nas_student.distill.schedules import is_constant, lr_factor, value_at
from nas_student.distill.trainer import DivergedError, TrainResult, make_optimizer
from nas_student.errors import NasStudentError


def mutual_losses(logits: list[torch.Tensor], targets: torch.Tensor | None, teacher_log_probs: torch.Tensor | None,
                  *, temperature: float, alpha: float, beta: float, peer_weight: float) -> list[torch.Tensor]:
    """Each student's loss on one batch (classification logits ``(B, C)``)."""
    probs = [F.softmax(z.detach(), dim=-1) for z in logits]
    out = []
    for i, z in enumerate(logits):
        own = kd_loss(z, None, targets, teacher_log_probs=teacher_log_probs, temperature=temperature,
                      alpha=alpha if teacher_log_probs is not None else 0.0, beta=beta).total
        log_p = F.log_softmax(z, dim=-1)
        peers = [F.kl_div(log_p, p, reduction="batchmean") for j, p in enumerate(probs) if j != i]
        out.append(own + peer_weight * sum(peers) / max(1, len(peers)))
    return out


def train_mutual(models: list[nn.Module], x: torch.Tensor, y: torch.Tensor, recipe: Recipe, *,
                 teacher_logits: torch.Tensor | None, peer_weight: float = 1.0, seed: int = 0,
                 checkpoint: Path | None = None, checkpoint_every: int = 200,
                 on_step=None) -> list[TrainResult]:  # noqa: ANN001 - on_step(step) -> bool
    """Train ``models`` (at least two) together; one :class:`TrainResult` per student."""
    if len(models) < 2:
        raise NasStudentError("mutual learning needs a cohort of at least two students")
    if recipe.features or recipe.attention:
        raise NasStudentError("mutual learning distils outputs only: remove features/attention from the recipe")
    total, n = recipe.total_steps(len(x)), len(x)
    bs = min(recipe.batch_size, n)
    device = next(models[0].parameters()).device
    x, y = x.to(device), y.to(device)
    t_logits = teacher_logits.to(device).float() if teacher_logits is not None else None
    fixed = is_constant(recipe.temperature)
    soft = (torch.log_softmax(t_logits / value_at(recipe.temperature, 0, total), dim=-1)
            if t_logits is not None and fixed else None)
    opts = [make_optimizer(list(m.parameters()), recipe) for m in models]
    gen = torch.Generator().manual_seed(seed)
    order, pos, step = torch.randperm(n, generator=gen), 0, 0
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if state["recipe"] != recipe.model_dump_json() or len(state["models"]) != len(models):
            raise NasStudentError(f"{checkpoint}: written by another cohort or recipe; delete it to start over")
        for m, o, ms, os_ in zip(models, opts, state["models"], state["opts"]):
            m.load_state_dict(ms)
            o.load_state_dict(os_)
        gen.set_state(state["gen"])
        step, order, pos = int(state["step"]), state["order"], int(state["pos"])
    resumed, t0 = step, time.perf_counter()
    for m in models:
        m.train()
    losses = [torch.tensor(math.nan)] * len(models)
    while step < total:
        if pos + bs > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos:pos + bs]
        pos += bs
        for o in opts:
            for g in o.param_groups:
                g["lr"] = recipe.lr * lr_factor(recipe.schedule, step, total, recipe.warmup_steps)
        idx = idx.to(device)
        t = value_at(recipe.temperature, step, total)
        t_lp = (soft[idx] if soft is not None else
                torch.log_softmax(t_logits[idx] / t, dim=-1) if t_logits is not None else None)
        logits = [m(x[idx]) for m in models]
        losses = mutual_losses(logits, y[idx], t_lp, temperature=t, alpha=value_at(recipe.alpha, step, total),
                               beta=value_at(recipe.beta, step, total), peer_weight=peer_weight)
        for o in opts:
            o.zero_grad(set_to_none=True)
        sum(losses).backward()  # each loss reaches only its own student (peers are detached)
        for o in opts:
            o.step()
        step += 1
        if checkpoint is not None and (step % checkpoint_every == 0 or step == total):
            state = {"recipe": recipe.model_dump_json(), "step": step, "order": order, "pos": pos,
                     "models": [m.state_dict() for m in models], "opts": [o.state_dict() for o in opts],
                     "gen": gen.get_state()}
            tmp = checkpoint.with_name(f".{checkpoint.name}.{os.getpid()}.tmp")
            torch.save(state, tmp)
            os.replace(tmp, checkpoint)
        if on_step is not None and on_step(step):
            break
    final = [float(v.detach()) for v in losses]
    if step > resumed and not all(math.isfinite(v) for v in final):
        raise DivergedError(f"mutual learning diverged: final losses {final}")
    wall = time.perf_counter() - t0
    return [TrainResult(step, wall, v, resumed) for v in final]
