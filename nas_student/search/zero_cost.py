"""Training-free scores of an untrained student: one forward (and at most one backward) pass.

Higher is better for every score. Each is a function ``(model, x, teacher) -> float`` of a
freshly initialised model and one batch of training inputs; :func:`scores` builds the model
from its architecture (one fresh copy per score: synflow changes the weights) and runs them
all. ``SCORES`` maps names to functions; :func:`score_fn` looks one up by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas_student.errors import UnknownNameError
from nas_student.families import build
from nas_student.families.base import ACTIVATIONS, ModelIO

ScoreFn = Callable[[nn.Module, torch.Tensor, nn.Module | None], float]
_ACTIVATION_TYPES = tuple(ACTIVATIONS.values())


def _features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The last feature tap of a :class:`TappedModel` (e.g. pooled features), else the output;
    flattened to one row per example."""
    names = getattr(model, "tap_names", ())
    if names:
        _, feats = model.forward_features(x)
        f = feats[names[-1]]
    else:
        f = model(x)
    return f.reshape(len(x), -1).float()


@torch.no_grad()
def naswot(model: nn.Module, x: torch.Tensor, teacher: nn.Module | None = None) -> float:
    """NASWOT: how differently the untrained network's activations partition the inputs.

    Mellor, Turner, Storkey, Crowley, "Neural Architecture Search without Training", ICML 2021.
    Each input gets a binary code: for every unit in front of an activation, 1 if its
    pre-activation is > 0 (the ReLU "on" pattern; for GELU/SiLU/... the same sign test).
    With ``N_A`` units, ``K[i, j] = N_A - hamming(c_i, c_j)`` and the score is
    ``log |det K|``. A model with no activation modules (LSTM/GRU) uses the sign pattern of
    its last feature tap instead."""
    codes: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, inp, _o: codes.append((inp[0] > 0).reshape(len(x), -1)))
             for m in model.modules() if isinstance(m, _ACTIVATION_TYPES)]
    try:
        model.train()
        feats = _features(model, x)
    finally:
        for h in hooks:
            h.remove()
    c = (torch.cat(codes, 1) if codes else feats > 0).double()
    k = c @ c.T + (1 - c) @ (1 - c).T
    return float(torch.linalg.slogdet(k).logabsdet)


def synflow(model: nn.Module, x: torch.Tensor, teacher: nn.Module | None = None) -> float:
    """SynFlow: the data-free "synaptic flow" through the network, log-scaled.

    Tanaka, Kunin, Yamins, Ganguli, "Pruning neural networks without any data by iteratively
    conserving synaptic flow", NeurIPS 2020; used as a zero-cost NAS proxy by Abdelfattah,
    Mehrotra, Dudziak, Lane, "Zero-Cost Proxies for Lightweight NAS", ICLR 2021.
    Every weight is replaced by its absolute value, an all-ones input (token models: the
    first example's ids) goes forward in double precision with norms in eval mode,
    ``R = sum(output)``, and the score is ``log sum |theta * dR/dtheta|``. Changes ``model``'s
    weights: pass a copy."""
    model = model.double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    model.zero_grad(set_to_none=True)
    inp = x[:1] if not torch.is_floating_point(x) else torch.ones_like(x[:1], dtype=torch.double)
    model(inp).sum().backward()
    total = sum(float((p.detach() * p.grad).abs().sum()) for p in model.parameters() if p.grad is not None)
    return float(torch.log(torch.tensor(total, dtype=torch.double))) if total > 0 else float("-inf")


def _relation(f: torch.Tensor) -> torch.Tensor:
    """Row-normalised inter-example similarity matrix ``normalize(F F^T)``."""
    return F.normalize(f @ f.T, dim=1)


@torch.no_grad()
def diswot(model: nn.Module, x: torch.Tensor, teacher: nn.Module | None = None) -> float:
    """DisWOT-style relation similarity between the untrained student and the teacher.

    Dong, Li, Wei, Tao, "DisWOT: Student Architecture Search for Distillation WithOut
    Training", CVPR 2023 (its relation-similarity term). On one batch, ``G = normalize(F F^T)``
    (inter-example similarity of the last features, each row L2-normalised) for the student
    and for the teacher; the score is ``-||G_teacher - G_student||_F``: a student whose
    features already relate the examples as the teacher's do scores higher. The dimensions of
    the two feature spaces need not match."""
    if teacher is None:
        raise ValueError("diswot needs the teacher")
    model.train()
    gs = _relation(_features(model, x))
    gt = _relation(_features(teacher, x))
    return -float(torch.linalg.matrix_norm(gt - gs))


SCORES: dict[str, ScoreFn] = {"naswot": naswot, "synflow": synflow, "diswot": diswot}


def score_fn(name: str) -> ScoreFn:
    if name not in SCORES:
        raise UnknownNameError("training-free score", name, list(SCORES))
    return SCORES[name]


def scores(arch: dict[str, Any], io: ModelIO, teacher: nn.Module | None, x: torch.Tensor, *,
           seed: int = 0, names: tuple[str, ...] | None = None) -> dict[str, float]:
    """Every score in ``names`` (default: all) for ``arch`` at its initialisation from ``seed``."""
    out = {}
    for name in names or tuple(SCORES):
        torch.manual_seed(seed)
        model = build(arch, io).to(x.device)
        out[name] = SCORES[name](model, x, teacher)
    return out
