"""Output-level knowledge distillation (Hinton, Vinyals & Dean, 2015, "Distilling the
Knowledge in a Neural Network", arXiv:1503.02531).

    L = alpha * T^2 * KL(p_teacher^T || p_student^T) + beta * CE(y, p_student)

with ``p^T = softmax(z / T)``. The T^2 factor keeps the soft-target gradients on the same
scale as the hard-target ones when T changes (section 2 of the paper). Both distributions are
kept in log space (``log_softmax`` and ``kl_div(log_target=True)``), so a high temperature or a
very confident teacher never produces ``0 * log 0`` NaNs.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


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
) -> KDLoss:
    """KD loss averaged over the batch. ``teacher_logits=None`` or ``alpha=0`` gives plain CE;
    ``targets=None`` or ``beta=0`` gives pure distillation (no labels needed).

    ``teacher_log_probs`` (``log_softmax(teacher_logits / T)``, precomputed once for a whole
    data set) may be given instead of ``teacher_logits``: the trainer does so, so a KD step
    costs about what a CE step costs."""
    zero = student_logits.new_zeros(())
    kd = ce = zero
    if (teacher_logits is not None or teacher_log_probs is not None) and alpha != 0:
        t = temperature
        log_p_s = F.log_softmax(student_logits / t, dim=-1)
        log_p_t = (teacher_log_probs if teacher_log_probs is not None
                   else F.log_softmax(teacher_logits.detach() / t, dim=-1))  # type: ignore[union-attr]
        kd = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * (t * t)
    if targets is not None and beta != 0:
        ce = F.cross_entropy(student_logits, targets)
    return KDLoss(alpha * kd + beta * ce, kd, ce)
