"""The recipe's loss for one batch: output KD + hard CE + feature hints + attention maps.

    L = alpha(t) * T(t)^2 * KL(p_teacher^T || p_student^T) + beta(t) * CE
        + w_feat * mean_pairs L_hint + w_att * mean_layers L_att

(``t`` the step; see :mod:`nas_student.distill.losses`, :mod:`.feature_losses`,
:mod:`.schedules`). The teacher's side of every term (soft targets, features, attention maps)
is computed once for the whole training set by :meth:`LossTerms.teacher_targets`, so a step
runs the student only.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nas_student.distill.feature_losses import AttentionTransfer, Hint
from nas_student.distill.feature_map import read_features, resolve_pairs
from nas_student.distill.losses import IGNORE_INDEX, kd_loss, mixed_targets
from nas_student.distill.recipe import Recipe
from nas_student.distill.schedules import is_constant, value_at
from nas_student.errors import NasStudentError
from nas_student.families.base import output_heads

#: Above this, the teacher's features are not held for the whole training set.
MAX_TARGET_BYTES = 2 * 2**30


def _attention_pairs(teacher: nn.Module, student: nn.Module) -> list[tuple[str, str, int, int]]:
    """(teacher tap, student tap, teacher heads, student heads) by relative depth."""
    from nas_student.families.transformer import Block

    def heads(model: nn.Module) -> list[int]:
        return [m.heads for m in model.modules() if isinstance(m, Block)]

    th, sh = heads(teacher), heads(student)
    if not th or not sh:
        who = "teacher" if not th else "student"
        raise NasStudentError(f"attention distillation needs Transformer layers in both models; the {who} has none")
    m, n = len(th), len(sh)
    pairs = []
    for i in range(1, n + 1):
        j = math.ceil(i * m / n)
        pairs.append((f"attn{j}", f"attn{i}", th[j - 1], sh[i - 1]))
    return pairs


class LossTerms(nn.Module):
    """Holds the learned parts of the loss (hint projections, head mixtures) for one
    teacher-student pair under one recipe. ``distil=False`` (training without a teacher)
    keeps only the cross-entropy."""

    def __init__(self, recipe: Recipe, student: nn.Module, teacher: nn.Module | None,
                 example: torch.Tensor, distil: bool = True) -> None:
        super().__init__()
        self.recipe = recipe
        self.pairs: list[tuple[str, str]] = []
        self.att_pairs: list[tuple[str, str]] = []
        self.hints = nn.ModuleList()
        self.att = nn.ModuleList()
        if not (distil and recipe.uses_teacher_model):  # CE only: no teacher terms
            return
        if teacher is None:
            raise NasStudentError("this recipe distils features or attention maps: it needs the teacher model")
        if recipe.attention and recipe.attention.weight:
            from nas_student.families.transformer import keep_attention

            keep_attention(teacher)
            keep_attention(student)
            for t, s, th, sh in _attention_pairs(teacher, student):
                self.att_pairs.append((t, s))
                self.att.append(AttentionTransfer(sh, th, recipe.attention.adaptive_heads))
        if recipe.features and recipe.features.weight:
            pairs = resolve_pairs(recipe.features.pairs, teacher, student, example)
            self.pairs = [(p.teacher, p.student) for p in pairs]
            with torch.no_grad():
                _, tf = read_features(teacher, example, [t for t, _ in self.pairs])
                _, sf = read_features(student, example, [s for _, s in self.pairs])
            for t, s in self.pairs:
                self.hints.append(Hint(sf[s].shape, tf[t].shape))

    @property
    def teacher_names(self) -> list[str]:
        return list(dict.fromkeys([t for t, _ in self.pairs] + [t for t, _ in self.att_pairs]))

    @property
    def student_names(self) -> list[str]:
        return list(dict.fromkeys([s for _, s in self.pairs] + [s for _, s in self.att_pairs]))

    @torch.no_grad()
    def teacher_targets(self, teacher: nn.Module, x: torch.Tensor, batch_size: int = 256) -> dict[str, torch.Tensor]:
        """The teacher's features for every row of ``x`` (on ``x``'s device)."""
        names = self.teacher_names
        if not names:
            return {}
        chunks: dict[str, list[torch.Tensor]] = {n: [] for n in names}
        dev = next(teacher.parameters()).device
        for i in range(0, len(x), batch_size):
            _, feats = read_features(teacher, x[i:i + batch_size].to(dev), names)
            for n in names:
                chunks[n].append(feats[n].detach().to(x.device))
        out = {n: torch.cat(c) for n, c in chunks.items()}
        need = sum(t.numel() * t.element_size() for t in out.values())
        if need > MAX_TARGET_BYTES:
            raise NasStudentError(f"the teacher's features for the training set need {need / 2**30:.1f} GiB; "
                                  "distil fewer or smaller features (features: pairs)")
        return out

    def fusable(self, y: torch.Tensor | None) -> bool:
        """The loss is one cross-entropy against a mixed target (:func:`mixed_targets`): output KD
        alone at a constant T = 1, constant weights, every row labelled, one label per row."""
        r = self.recipe
        return (y is not None and y.dim() == 1 and not self.pairs and not self.att_pairs
                and all(is_constant(v) for v in (r.temperature, r.alpha, r.beta))
                and value_at(r.temperature, 0, 1) == 1 and bool((y != IGNORE_INDEX).all()))

    def mixed_targets(self, teacher_log_probs: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.recipe
        return mixed_targets(teacher_log_probs, y, value_at(r.alpha, 0, 1), value_at(r.beta, 0, 1))

    def forward(self, student: nn.Module, xb: torch.Tensor, yb: torch.Tensor | None,
                teacher_log_probs: torch.Tensor | None, teacher_feats: dict[str, torch.Tensor],
                step: int, total: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total loss of a batch and its parts (before weighting)."""
        r = self.recipe
        names = self.student_names
        if names:
            out, sf = read_features(student, xb, names)
        else:
            out, sf = student(xb), {}
        has_teacher = teacher_log_probs is not None
        alpha = value_at(r.alpha, step, total) if has_teacher else 0.0
        beta = value_at(r.beta, step, total) if has_teacher else 1.0
        temp = value_at(r.temperature, step, total)
        base = kd_loss(out, None, yb, teacher_log_probs=teacher_log_probs, temperature=temp,
                       alpha=alpha, beta=beta, heads=output_heads(student))
        total_loss, parts = base.total, {"kd": base.kd.detach(), "ce": base.ce.detach()}
        if self.pairs:
            hint = sum(h(sf[s], teacher_feats[t]) for h, (t, s) in zip(self.hints, self.pairs)) / len(self.pairs)
            total_loss = total_loss + r.features.weight * hint  # type: ignore[union-attr]
            parts["features"] = hint.detach()  # type: ignore[union-attr]
        if self.att_pairs:
            att = sum(a(sf[s], teacher_feats[t]) for a, (t, s) in zip(self.att, self.att_pairs)) / len(self.att_pairs)
            total_loss = total_loss + r.attention.weight * att  # type: ignore[union-attr]
            parts["attention"] = att.detach()  # type: ignore[union-attr]
        return total_loss, parts
