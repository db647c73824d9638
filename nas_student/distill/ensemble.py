"""Several teachers for one task, distilled as one: their soft targets combined per sample.

Hinton, Vinyals & Dean (2015, "Distilling the Knowledge in a Neural Network", section 3)
distil an ensemble by the arithmetic mean of its members' predicted distributions (``mean``).
``confidence`` weights each teacher per sample by how sure it is, ``1 - H(p_k) / log C``
(normalised over the teachers; a uniform distribution gets weight 0), in the spirit of
confidence-aware multi-teacher distillation (Zhang, Chen & Wang 2022, "Confidence-Aware
Multi-Teacher Knowledge Distillation", which weights by the cross-entropy to the label; here
no label is needed, so unlabelled and data-free inputs are weighted too).

:class:`TeacherEnsemble` is a module whose output is the *log* of the combined distribution:
for the rest of the product it is one teacher (``softmax`` of its output is the combined
distribution, so KD at temperature T sharpens or flattens that distribution). Its cost, as
priced by the search, is the sum of its members' (running every teacher).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from nas_student.errors import NasStudentError

Combine = Literal["mean", "confidence"]


def combine_probs(logits: list[torch.Tensor], how: Combine = "mean") -> torch.Tensor:
    """The combined distribution ``(..., C)`` of several teachers' logits (each ``(..., C)``)."""
    if not logits:
        raise NasStudentError("an ensemble needs at least one teacher")
    if not torch.jit.is_tracing():  # (under the cost model's trace, sizes are traced values)
        shapes = {tuple(int(d) for d in z.shape) for z in logits}
        if len(shapes) != 1:
            raise NasStudentError(f"teachers' outputs do not match: shapes {sorted(shapes)}")
    probs = torch.stack([torch.softmax(z.float(), dim=-1) for z in logits])  # (K, ..., C)
    if how == "mean":
        return probs.mean(0)
    if how != "confidence":
        raise NasStudentError(f"unknown way to combine teachers {how!r}: mean or confidence")
    c = probs.shape[-1]
    entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(-1)  # (K, ...)
    conf = (1 - entropy / math.log(c)).clamp_min(0) if c > 1 else torch.ones_like(entropy)
    weights = conf / conf.sum(0, keepdim=True).clamp_min(1e-12)
    weights = torch.where(conf.sum(0, keepdim=True) > 0, weights, torch.full_like(weights, 1 / len(logits)))
    return (weights.unsqueeze(-1) * probs).sum(0)


class TeacherEnsemble(nn.Module):
    """Teachers that answer as one: ``forward`` returns ``log`` of the combined distribution."""

    def __init__(self, teachers: list[nn.Module], how: Combine = "mean") -> None:
        super().__init__()
        if len(teachers) < 2:
            raise NasStudentError("an ensemble needs at least two teachers")
        self.teachers = nn.ModuleList(teachers)
        self.how = how

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(combine_probs([t(x) for t in self.teachers], self.how).clamp_min(1e-12))
