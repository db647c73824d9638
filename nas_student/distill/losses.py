"""Output-level knowledge distillation (Hinton, Vinyals & Dean, 2015, "Distilling the
Knowledge in a Neural Network", arXiv:1503.02531).

    L = alpha * T^2 * KL(p_teacher^T || p_student^T) + beta * CE(y, p_student)

with ``p^T = softmax(z / T)``. The T^2 factor keeps the soft-target gradients on the same
scale as the hard-target ones when T changes (section 2 of the paper). Both distributions are
kept in log space (``log_softmax`` and ``kl_div(log_target=True)``), so a high temperature or a
very confident teacher never produces ``0 * log 0`` NaNs.

Generative (token-level) distillation: for per-position outputs ``(B, L, V)`` (language
modelling) the same loss is applied at every position, i.e. positions are flattened to rows of
``(B*L, V)``; positions whose target is ``ignore_index`` (padding), or that ``mask`` marks False,
are dropped first, so both terms are means over real tokens only (Kim & Rush, 2016,
"Sequence-Level Knowledge Distillation", word-level KD, arXiv:1606.07947). Classification
outputs ``(B, C)`` take exactly the original path.

Multi-task outputs (``heads``: one block of logits per task, labels ``(B, tasks)``) take the
same loss per task, each block its own softmax against its own teacher's block, averaged over
the tasks with equal weights: distilling single-task teachers into one multi-task student as
in Clark et al. (2019, "BAM! Born-Again Multi-Task Networks for Natural Language
Understanding", ACL), over the shared-trunk, task-specific-heads model of Caruana (1997,
"Multitask Learning").
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100  # target value of padding positions (PyTorch's cross_entropy default)


class KDLoss(NamedTuple):
    total: torch.Tensor
    kd: torch.Tensor  # T^2 * KL, before alpha
    ce: torch.Tensor  # hard-label cross-entropy, before beta


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    targets: torch.Tensor | None,
    *,
    temperature: float = 4.0,
    alpha: float = 0.9,
    beta: float = 0.1,
    teacher_log_probs: torch.Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
    mask: torch.Tensor | None = None,
    heads: tuple[int, ...] = (),
) -> KDLoss:
    """KD loss averaged over the batch. ``teacher_logits=None`` or ``alpha=0`` gives plain CE;
    ``targets=None`` or ``beta=0`` gives pure distillation (no labels needed).

    ``teacher_log_probs`` (``log_softmax(teacher_logits / T)``, precomputed once for a whole
    data set) may be given instead of ``teacher_logits``: the trainer does so, so a KD step
    costs about what a CE step costs.

    Per-token outputs ``(B, L, V)`` (teacher ``(B, L, V)``, targets ``(B, L)``): averaged over
    the positions that are real tokens: targets != ``ignore_index``, and ``mask`` (``(B, L)``
    bool, True = real) when given (needed to mask padding when ``targets`` is None).

    Multi-task (``heads``, the sizes of the output blocks; targets ``(B, tasks)``): the mean
    over tasks of each block's loss (``teacher_log_probs`` then hold each block's own
    log-softmax: :func:`log_softmax_heads`)."""
    if heads:
        return _heads_kd_loss(student_logits, teacher_logits, targets, heads, temperature=temperature,
                              alpha=alpha, beta=beta, teacher_log_probs=teacher_log_probs,
                              ignore_index=ignore_index)
    if student_logits.dim() > 2:
        return _token_kd_loss(student_logits, teacher_logits, targets, temperature=temperature,
                              alpha=alpha, beta=beta, teacher_log_probs=teacher_log_probs,
                              ignore_index=ignore_index, mask=mask)
    zero = student_logits.new_zeros(())
    kd = ce = zero
    log_p_s = None
    if (teacher_logits is not None or teacher_log_probs is not None) and alpha != 0:
        t = temperature
        log_p_s = F.log_softmax(student_logits if t == 1 else student_logits / t, dim=-1)
        log_p_t = (teacher_log_probs if teacher_log_probs is not None
                   else F.log_softmax(teacher_logits.detach() / t, dim=-1))  # type: ignore[union-attr]
        kd = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * (t * t)
    if targets is not None and beta != 0:
        # a mean over labelled rows only (semi-supervised batches hold ignore_index rows);
        # a batch without labels gives 0, not the NaN of an empty mean
        real = (targets != ignore_index).sum().clamp_min(1)
        if log_p_s is not None and temperature == 1:  # at T = 1 the KD term's log-softmax is CE's too
            ce = F.nll_loss(log_p_s, targets, ignore_index=ignore_index, reduction="sum") / real
        else:
            ce = F.cross_entropy(student_logits, targets, ignore_index=ignore_index, reduction="sum") / real
    return KDLoss(alpha * kd + beta * ce, kd, ce)


def mixed_targets(teacher_log_probs: torch.Tensor, targets: torch.Tensor, alpha: float, beta: float
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The KD loss at T = 1 with every row labelled, as one cross-entropy against a mixed target:

        alpha * KL(p_t || p_s) + beta * CE(y, p_s) = CE(p_s; q) + alpha * sum_c p_t log p_t,
        q = alpha * p_t + beta * onehot(y)

    (expand KL = sum p_t log p_t - sum p_t log p_s). ``q`` and the second term (constant in
    the student) are computed once for a whole data set; a step is then one
    ``cross_entropy(logits, q[idx]) + offset[idx].mean()`` (:func:`mixed_kd_loss`), what a CE
    step costs. Returns ``(q, offset)`` with one row per input."""
    p_t = teacher_log_probs.exp()
    q = alpha * p_t
    q[torch.arange(len(targets)), targets] += beta
    return q, alpha * (p_t * teacher_log_probs).sum(-1)


def mixed_kd_loss(student_logits: torch.Tensor, q: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """:func:`kd_loss`'s total at T = 1 from :func:`mixed_targets`' rows for this batch."""
    return F.cross_entropy(student_logits, q) + offset.mean()


def _token_kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    targets: torch.Tensor | None,
    *,
    temperature: float,
    alpha: float,
    beta: float,
    teacher_log_probs: torch.Tensor | None,
    ignore_index: int,
    mask: torch.Tensor | None,
) -> KDLoss:
    """Flatten positions to rows, keep the real tokens, then the classification loss on them."""
    v = student_logits.shape[-1]
    keep = torch.ones(student_logits.shape[:-1], dtype=torch.bool, device=student_logits.device)
    if targets is not None:
        keep &= targets != ignore_index
    if mask is not None:
        keep &= mask.to(torch.bool)
    keep = keep.reshape(-1)
    if not bool(keep.any()):  # nothing to learn from: a zero that still has a graph
        zero = student_logits.sum() * 0.0
        return KDLoss(zero, zero.detach(), zero.detach())

    def rows(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.reshape(-1, v)[keep]

    return kd_loss(rows(student_logits), rows(teacher_logits),  # type: ignore[arg-type]
                   targets.reshape(-1)[keep] if targets is not None else None,
                   temperature=temperature, alpha=alpha, beta=beta,
                   teacher_log_probs=rows(teacher_log_probs))


def split_heads(z: torch.Tensor | None, heads: tuple[int, ...]) -> list[torch.Tensor | None]:
    """Each task's block of multi-task outputs ``(..., sum(heads))``, in order."""
    return [None] * len(heads) if z is None else list(torch.split(z, list(heads), dim=-1))


def log_softmax_heads(z: torch.Tensor, heads: tuple[int, ...] = ()) -> torch.Tensor:
    """``log_softmax`` over the last dimension, or over each task's block of it (``heads``)."""
    if not heads:
        return torch.log_softmax(z, dim=-1)
    return torch.cat([torch.log_softmax(b, dim=-1) for b in torch.split(z, list(heads), dim=-1)], dim=-1)


def _heads_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor | None, targets: torch.Tensor | None,
                   heads: tuple[int, ...], *, temperature: float, alpha: float, beta: float,
                   teacher_log_probs: torch.Tensor | None, ignore_index: int) -> KDLoss:
    """The mean over tasks of each output block's :func:`kd_loss`."""
    if targets is not None and (targets.dim() != 2 or targets.shape[1] != len(heads)):
        raise ValueError(f"multi-task targets must be (batch, {len(heads)}), got {list(targets.shape)}")
    losses = [kd_loss(s, t, targets[:, i] if targets is not None else None, temperature=temperature, alpha=alpha,
                      beta=beta, teacher_log_probs=lp, ignore_index=ignore_index)
              for i, (s, t, lp) in enumerate(zip(split_heads(student_logits, heads), split_heads(teacher_logits, heads),
                                                 split_heads(teacher_log_probs, heads)))]
    k = len(losses)
    return KDLoss(sum(x.total for x in losses) / k, sum(x.kd for x in losses) / k,  # type: ignore[arg-type]
                  sum(x.ce for x in losses) / k)  # type: ignore[arg-type]
