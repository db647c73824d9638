"""Which teacher feature teaches which student feature, and how to read features off a model.

The automatic rule (``features: {pairs: auto}``), over the *body* taps of both models
(``stage1..N`` of a CNN, ``layer1..N`` of an MLP, RNN or Transformer; the input, stem,
embedding and pooled taps are left out):

1. **Same resolution** (both are CNNs, features ``(B, C, H, W)``): for every spatial resolution
   that both models have, the student's *last* stage at that resolution learns from the
   teacher's *last* stage at that resolution (the deepest feature each has at that scale).
2. **Otherwise, by relative depth**: student tap ``i`` of ``n`` learns from teacher tap
   ``ceil(i * m / n)`` of ``m`` (the uniform strategy of TinyBERT, Jiao et al., 2020,
   arXiv:1909.10351); the last student tap always meets the last teacher tap. A CNN teacher's
   ``(B, C, H, W)`` feature meeting a flat student feature is averaged over space first.

``pairs: [{teacher: ..., student: ...}]`` overrides the rule; for a teacher that is not one of
our families, names are its sub-modules (``model.named_modules()``), read with forward hooks.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from nas_student.distill.recipe import FeaturePair
from nas_student.errors import NasStudentError

_BODY = re.compile(r"^(stage|layer)(\d+)$")


def body_taps(names: list[str]) -> list[str]:
    """The taps the automatic rule pairs, in depth order."""
    return sorted((n for n in names if _BODY.match(n)), key=lambda n: int(_BODY.match(n).group(2)))  # type: ignore[union-attr]


def auto_pairs(teacher: dict[str, torch.Size], student: dict[str, torch.Size]) -> list[FeaturePair]:
    """The rule of the module docstring, given each model's tap shapes (in forward order)."""
    t_taps, s_taps = body_taps(list(teacher)), body_taps(list(student))
    if not t_taps or not s_taps:
        raise NasStudentError("features: pairs: auto needs feature taps on both models "
                              f"(teacher has {list(teacher) or 'none'}, student {list(student) or 'none'}); "
                              "give `pairs` explicitly")
    if all(len(teacher[t]) == 4 for t in t_taps) and all(len(student[s]) == 4 for s in s_taps):
        last_t = {tuple(teacher[t][2:]): t for t in t_taps}  # later taps overwrite: the last one
        last_s = {tuple(student[s][2:]): s for s in s_taps}
        common = [r for r in last_s if r in last_t]
        if common:
            return [FeaturePair(teacher=last_t[r], student=last_s[r]) for r in common]
    m, n = len(t_taps), len(s_taps)
    return [FeaturePair(teacher=t_taps[math.ceil(i * m / n) - 1], student=s_taps[i - 1])
            for i in range(1, n + 1)]


def read_features(model: nn.Module, x: torch.Tensor, names: list[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(output, {name: feature})``: from the model's taps when it has them, else from forward
    hooks on the named sub-modules (tuple outputs, as from an RNN, give their first element)."""
    taps = getattr(model, "tap_names", ())
    if names and all(n in taps for n in names):
        out, feats = model.forward_features(x)  # type: ignore[operator]
        return out, {n: feats[n] for n in names}
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        valid = list(taps) or [n for n in modules if n]
        raise NasStudentError(f"features: no feature {missing[0]!r} in {type(model).__name__}; "
                              f"valid: {', '.join(valid[:30])}")
    feats: dict[str, torch.Tensor] = {}

    def hook(name: str):  # noqa: ANN202
        def fn(_m: nn.Module, _i: object, o: object) -> None:
            feats[name] = o[0] if isinstance(o, (tuple, list)) else o  # type: ignore[assignment]
        return fn

    handles = [modules[n].register_forward_hook(hook(n)) for n in names]
    try:
        out = model(x)
    finally:
        for h in handles:
            h.remove()
    return out, feats


def tap_shapes(model: nn.Module, example: torch.Tensor) -> dict[str, torch.Size]:
    """Each tap's feature shape for ``example`` (a model without taps has none)."""
    if not getattr(model, "tap_names", ()):
        return {}
    with torch.no_grad():
        _, feats = model.forward_features(example)  # type: ignore[operator]
    return {k: v.shape for k, v in feats.items()}


def resolve_pairs(spec: str | tuple[FeaturePair, ...], teacher: nn.Module, student: nn.Module,
                  example: torch.Tensor) -> list[FeaturePair]:
    if spec != "auto":
        return list(spec)  # type: ignore[arg-type]
    return auto_pairs(tap_shapes(teacher, example), tap_shapes(student, example))
