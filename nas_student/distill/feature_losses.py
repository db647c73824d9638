"""Losses on intermediate representations: feature hints and attention maps.

Both hold learned parameters (a projection, head-mixing weights) that are trained with the
student and thrown away afterwards; the student itself is unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-12


def _channels(shape: torch.Size | tuple[int, ...]) -> int:
    return shape[1] if len(shape) == 4 else shape[-1]


def align_ranks(s: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bring a student and a teacher feature to the same rank: a ``(B, C, H, W)`` map meeting a
    flat feature is averaged over space; a sequence ``(B, L, D)`` meeting a flat ``(B, D)`` one
    is averaged over positions."""
    def flat(a: torch.Tensor) -> torch.Tensor:
        return a.mean((2, 3)) if a.dim() == 4 else a.mean(1)
    if s.dim() != t.dim():
        if s.dim() > 2 and t.dim() == 2:
            s = flat(s)
        elif t.dim() > 2 and s.dim() == 2:
            t = flat(t)
        else:  # (B, C, H, W) against (B, L, D): compare the pooled vectors
            s, t = flat(s), flat(t)
    return s, t


class Hint(nn.Module):
    """FitNets hint (Romero et al., 2015, "FitNets: Hints for Thin Deep Nets", ICLR,
    arXiv:1412.6550): a learned regressor maps the student's feature to the teacher's width
    (a 1x1 convolution for feature maps, a linear map otherwise) and the loss is the mean
    squared error to the teacher's feature:

        L_hint = mean((r(f_s) - f_t)^2)

    Feature maps of different resolution, and position-major sequences ``(B, L, C)`` of
    different lengths (1-D CNN stages), are average-pooled to the smaller one first."""

    def __init__(self, student_shape: torch.Size, teacher_shape: torch.Size) -> None:
        super().__init__()
        s = torch.zeros((1, *student_shape[1:]))
        t = torch.zeros((1, *teacher_shape[1:]))
        s, t = align_ranks(s, t)
        cs, ct = _channels(s.shape), _channels(t.shape)
        self.proj: nn.Module = (nn.Conv2d(cs, ct, 1, bias=False) if s.dim() == 4
                                else nn.Linear(cs, ct, bias=False))

    def forward(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s, t = align_ranks(s, t)
        p = self.proj(s)
        if p.dim() == 4 and p.shape[2:] != t.shape[2:]:
            size = (min(p.shape[2], t.shape[2]), min(p.shape[3], t.shape[3]))
            p, t = F.adaptive_avg_pool2d(p, size), F.adaptive_avg_pool2d(t, size)
        elif p.dim() == 3 and p.shape[1] != t.shape[1]:  # (B, L, C) sequences of different lengths
            n = min(p.shape[1], t.shape[1])
            p, t = (F.adaptive_avg_pool1d(a.transpose(1, 2), n).transpose(1, 2) for a in (p, t))
        return F.mse_loss(p, t)


class AttentionTransfer(nn.Module):
    """Attention-map distillation for Transformer layers, after MiniLM (Wang et al., 2020,
    "MiniLM: Deep Self-Attention Distillation for Task-Agnostic Compression of Pre-Trained
    Transformers", arXiv:2002.10957) and TinyBERT (Jiao et al., 2020, arXiv:1909.10351): the
    student's attention distribution of each query, ``A_s[b, h, i, :]``, is pulled towards the
    teacher's by KL divergence, averaged over examples, heads and queries.

    Student and teacher may have different head counts. With ``adaptive`` head weights each
    student head ``h`` learns from a mixture of the teacher's heads, ``sum_k w[h, k] A_t[k]``
    with ``w = softmax(logits)`` over teacher heads, learned with the student (so a head is
    matched to the teacher heads it can imitate; initialised to the identity when the counts
    are equal, else uniform). Without it the counts must be equal and heads are matched 1:1.

        L_att = mean_{b,h,i} KL(sum_k w[h,k] A_t[b,k,i,:] || A_s[b,h,i,:])
    """

    def __init__(self, student_heads: int, teacher_heads: int, adaptive: bool = True) -> None:
        super().__init__()
        if not adaptive and student_heads != teacher_heads:
            raise ValueError(f"attention: {student_heads} student heads vs {teacher_heads} teacher heads "
                             "needs adaptive_heads: true")
        init = torch.zeros(student_heads, teacher_heads)
        if student_heads == teacher_heads:
            init += torch.eye(student_heads) * 4.0
        self.logits = nn.Parameter(init, requires_grad=adaptive)

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=-1)

    def forward(self, a_s: torch.Tensor, a_t: torch.Tensor) -> torch.Tensor:
        mix = torch.einsum("sk,bkij->bsij", self.weights(), a_t)
        kl = (mix * (torch.log(mix.clamp_min(EPS)) - torch.log(a_s.clamp_min(EPS)))).sum(-1)
        return kl.mean()
