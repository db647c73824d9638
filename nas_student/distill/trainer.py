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
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from nas_student.distill.losses import IGNORE_INDEX, kd_loss, log_softmax_heads, mixed_kd_loss, split_heads
from nas_student.distill.recipe import ProxyRecipe, Recipe
from nas_student.distill.schedules import is_constant, lr_factor, value_at
from nas_student.distill.terms import LossTerms
from nas_student.errors import NasStudentError
from nas_student.families.base import output_heads

__all__ = ["ProxyRecipe", "DivergedError", "Recipe", "TrainResult", "evaluate", "hide_labels", "predict", "score",
           "train"]


@dataclass
class TrainResult:
    steps: int
    wall_s: float
    final_loss: float
    resumed_from: int = 0  # the step a checkpoint resumed from (0: a fresh start)
    parts: dict[str, float] = field(default_factory=dict)  # last step's loss terms, unweighted
    loss_curve: list[float] = field(default_factory=list)  # the training loss of every step run here


class DivergedError(NasStudentError):
    """The loss became NaN or infinite."""


def make_optimizer(params: list[nn.Parameter], r: Recipe) -> torch.optim.Optimizer:
    """The recipe's optimiser over ``params``, fused where torch has the kernel: the same
    update in one pass over all tensors, 4x faster than torch's per-tensor loop on CPU for
    students of ~40 tensors (0.6 vs 2.3 ms a step, a tenth of a small student's step)."""
    fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    if r.optimizer == "sgd":
        return torch.optim.SGD(params, lr=r.lr, momentum=0.9, weight_decay=r.weight_decay, nesterov=True,
                               fused=fused or None)
    cls = torch.optim.AdamW if r.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=r.lr, weight_decay=r.weight_decay, fused=fused or None)


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None,
    recipe: Recipe,
    *,
    teacher_logits: torch.Tensor | None = None,
    teacher: nn.Module | None = None,
    seed: int | None = None,
    on_step: Callable[[int], bool] | None = None,
    checkpoint: Path | None = None,
    checkpoint_every: int = 200,
) -> TrainResult:
    """Train ``model`` in place on ``(x, y)`` with ``recipe``.

    With ``teacher_logits`` (same rows as ``x``, precomputed once) the loss is the recipe's KD
    loss, without them plain cross-entropy. Feature or attention terms need ``teacher`` too;
    its features for all of ``x`` are computed once here. For per-token outputs
    ``teacher_logits`` is ``(N, L, V)`` and the loss is token-level KD over real tokens. Rows of
    ``y`` equal to ``IGNORE_INDEX`` have no label (semi-supervised): they are distilled only;
    ``recipe.labelled_fraction`` < 1 hides the labels of all but that fraction (per class).

    ``on_step(steps_done)`` is called after every optimiser step; if it returns True, training
    stops there (early stopping; ``TrainResult.steps`` says how many steps ran).
    ``checkpoint``: a file where the whole training state is saved every ``checkpoint_every``
    steps and at the end; if it exists, training resumes from it and ends exactly where an
    uninterrupted run would (same data order, same random state)."""
    device = next(model.parameters()).device
    seed = recipe.seed if seed is None else seed
    total = recipe.total_steps(len(x))
    gen = torch.Generator().manual_seed(seed)
    if y is not None and recipe.labelled_fraction < 1:
        y = hide_labels(y, recipe.labelled_fraction, seed)
    terms = LossTerms(recipe, model, teacher, x[:2].to(device), distil=teacher_logits is not None).to(device)
    opt = make_optimizer([p for p in [*model.parameters(), *terms.parameters()] if p.requires_grad], recipe)
    n, bs = len(x), min(recipe.batch_size, len(x))
    # Data, the teacher's soft targets and features go to the device once. With a constant
    # temperature the soft targets are computed once too, so a KD step costs one log_softmax
    # more than a CE step. For language modelling they are (N, L, V) floats for the whole
    # training set, held in memory: 4*N*L*V bytes, ~28 MB for the built-in text task. That
    # stops scaling at real vocabularies (V=32k, L=512: 64 MB per training sequence): there
    # the teacher must run per batch or keep only its top-k log-probs per position.
    x = x.to(device)
    y = y.to(device) if y is not None else None
    t_logits = teacher_logits.to(device).float() if teacher_logits is not None else None
    fixed_t = is_constant(recipe.temperature)
    heads = output_heads(model)  # multi-task: each task's block of outputs its own softmax
    soft = (log_softmax_heads(t_logits / value_at(recipe.temperature, 0, total), heads)
            if t_logits is not None and fixed_t else None)
    t_feats = terms.teacher_targets(teacher, x) if teacher is not None and terms.teacher_names else {}
    # the proxy's case (T = 1, output KD only, all labelled): one cross-entropy per step
    mixed = terms.mixed_targets(soft, y) if soft is not None and terms.fusable(y) else None
    order, pos, step = torch.randperm(n, generator=gen), 0, 0
    if checkpoint is not None and checkpoint.exists():
        step, order, pos = _load_state(checkpoint, recipe, model, terms, opt, gen)
    resumed_from = step
    model.train()
    t0 = time.perf_counter()
    loss, parts = torch.tensor(math.nan), {}
    curve = torch.empty(max(0, total - step), device=device)  # filled on the device: no sync per step
    while step < total:
        if pos + bs > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos:pos + bs].to(device)
        pos += bs
        for g in opt.param_groups:
            g["lr"] = recipe.lr * lr_factor(recipe.schedule, step, total, recipe.warmup_steps)
        if mixed is not None:
            out = model(x[idx])
            loss = mixed_kd_loss(out, mixed[0][idx], mixed[1][idx])
        else:
            loss, parts = terms(model, x[idx], y[idx] if y is not None else None,
                                _teacher_log_probs(t_logits, soft, idx, recipe, step, total, heads),
                                {k: v[idx] for k, v in t_feats.items()}, step, total)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        curve[step - resumed_from] = loss.detach()
        step += 1
        if checkpoint is not None and (step % checkpoint_every == 0 or step == total):
            _save_state(checkpoint, recipe, step, order, pos, model, terms, opt, gen)
        if on_step is not None and on_step(step):
            break
    if mixed is not None and step > resumed_from:  # the last step's terms apart, from its outputs (no new
        with torch.no_grad():                          # forward: it would move batch-norm statistics)
            r = recipe
            last = kd_loss(out.detach(), None, y[idx], teacher_log_probs=soft[idx], temperature=1.0,  # type: ignore[index]
                           alpha=value_at(r.alpha, 0, 1), beta=value_at(r.beta, 0, 1))
            parts = {"kd": last.kd, "ce": last.ce}
    loss_v = float(loss.detach())
    if not math.isfinite(loss_v) and step > resumed_from:
        raise DivergedError(f"training diverged: final loss {loss_v}")
    return TrainResult(step, time.perf_counter() - t0, loss_v, resumed_from,
                       {k: float(v) for k, v in parts.items()},
                       curve[: step - resumed_from].cpu().tolist())


def _teacher_log_probs(t_logits: torch.Tensor | None, soft: torch.Tensor | None, idx: torch.Tensor,
                       recipe: Recipe, step: int, total: int, heads: tuple[int, ...] = ()) -> torch.Tensor | None:
    """The batch's soft targets: precomputed at a constant temperature, else at this step's."""
    if t_logits is None:
        return None
    if soft is not None:
        return soft[idx]
    return log_softmax_heads(t_logits[idx] / value_at(recipe.temperature, step, total), heads)


def hide_labels(y: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """A copy of class labels ``y`` where all but ``fraction`` of each class (at least one) is
    ``IGNORE_INDEX``; which rows keep their label is fixed by ``seed``."""
    if y.dim() != 1:
        raise NasStudentError("labelled_fraction < 1 (semi-supervised) is for one classification task; "
                              "a language model's targets are its own inputs, and a multi-task student's "
                              "labels are one per task")
    out = torch.full_like(y, IGNORE_INDEX)
    gen = torch.Generator().manual_seed(seed + 7919)
    for c in torch.unique(y[y != IGNORE_INDEX]):
        rows = torch.nonzero(y == c).flatten()
        keep = rows[torch.randperm(len(rows), generator=gen)[:max(1, round(fraction * len(rows)))]]
        out[keep] = y[keep]
    return out


def _save_state(path: Path, recipe: Recipe, step: int, order: torch.Tensor, pos: int, model: nn.Module,
                terms: nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator) -> None:
    state = {"recipe": recipe.model_dump_json(), "step": step, "order": order, "pos": pos,
             "model": model.state_dict(), "terms": terms.state_dict(), "opt": opt.state_dict(),
             "gen": gen.get_state(), "rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a kill leaves the old checkpoint or the new one, never half of one


def _load_state(path: Path, recipe: Recipe, model: nn.Module, terms: nn.Module,
                opt: torch.optim.Optimizer, gen: torch.Generator) -> tuple[int, torch.Tensor, int]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise NasStudentError(f"{path}: not a readable training checkpoint ({type(e).__name__}); "
                              "delete it to start over") from None
    if state.get("recipe") != recipe.model_dump_json():
        raise NasStudentError(f"{path}: this checkpoint was written with another recipe; "
                              "delete it to start over, or use the same recipe")
    model.load_state_dict(state["model"])
    terms.load_state_dict(state["terms"])
    opt.load_state_dict(state["opt"])
    gen.set_state(state["gen"])
    torch.set_rng_state(state["rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["step"]), state["order"], int(state["pos"])


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits for all rows of ``x`` in eval mode, on CPU (an int8 model has no parameters: it runs on CPU)."""
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
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
    over the same positions; agreement and the KD loss are per real position too.

    Multi-task models (``output_heads``, labels ``(N, tasks)``): each task scored on its own
    block (``accuracy_<i>``, ``agreement_<i>``, by the task's index), and ``accuracy``,
    ``agreement`` and ``kd_loss`` are the means over the tasks."""
    return score(predict(model, x), y, teacher_logits, temperature, output_heads(model))


def score(logits: torch.Tensor, y: torch.Tensor, teacher_logits: torch.Tensor | None = None,
          temperature: float = 4.0, heads: tuple[int, ...] = ()) -> dict[str, float]:
    """:func:`evaluate`'s scores of outputs already computed (e.g. the teacher's, kept for
    distillation: no second pass over the split). ``heads``: a multi-task model's
    ``output_heads``."""
    if heads:
        return _evaluate_heads(logits, y, teacher_logits, temperature, heads)
    if logits.dim() > 2:
        return _evaluate_tokens(logits, y, teacher_logits, temperature)
    return _evaluate_logits(logits, y, teacher_logits, temperature)


def _evaluate_heads(logits: torch.Tensor, y: torch.Tensor, teacher_logits: torch.Tensor | None,
                    temperature: float, heads: tuple[int, ...]) -> dict[str, float]:
    if y.dim() != 2 or y.shape[1] != len(heads):
        raise NasStudentError(f"a model of {len(heads)} tasks needs labels of shape (N, {len(heads)}), "
                              f"got {list(y.shape)}")
    per = [_evaluate_logits(s, y[:, i], t, temperature)
           for i, (s, t) in enumerate(zip(split_heads(logits, heads), split_heads(teacher_logits, heads)))]
    out = {f"{k}_{i}": v for i, scores in enumerate(per) for k, v in scores.items() if k != "kd_loss"}
    out.update({k: sum(p[k] for p in per) / len(per) for k in per[0]})
    return out


def _evaluate_logits(logits: torch.Tensor, y: torch.Tensor, teacher_logits: torch.Tensor | None,
                     temperature: float) -> dict[str, float]:
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
