"""Data-free distillation: synthetic training inputs made from the teacher alone.

Where the training data cannot be shared, the student learns from inputs the teacher itself
produces; the teacher's soft outputs on them are the only targets (there are no labels: the
teacher's top-1 stands in where a label is needed).

Continuous inputs (images, feature vectors) follow DeepInversion (Yin et al., CVPR 2020,
"Dreaming to Distill: Data-free Knowledge Transfer via DeepInversion", arXiv:1912.08795):
a batch of inputs, randomly initialised, is optimised so that

- ``bn``: at every BatchNorm layer the batch's per-channel mean and variance match the
  layer's running statistics, i.e. the statistics of the data the teacher was trained on
  (their feature-distribution regulariser R_feature, eq. 4);
- ``ce``: the teacher assigns each input its target class (classes balanced over the batch);
- ``tv``, ``l2``: image priors, total variation and the l2 norm (their R_prior; from
  Mahendran & Vedaldi, 2015, "Understanding Deep Image Representations by Inverting Them");
- ``diversity``: inputs of the same class are pushed apart in the teacher's penultimate
  feature space (mean pairwise cosine similarity of same-class features). DeepInversion's
  own diversity term, Adaptive DeepInversion, needs a student trained alongside (a competition
  term); this one needs only the teacher, in the spirit of the mode-seeking terms of
  Mao et al. (CVPR 2019) and DAFL's information-entropy term (Chen et al., ICCV 2019).

A teacher without BatchNorm loses the term that carries most of the information about the
data; synthesis then warns and uses the class, prior and diversity terms only.

Token inputs of a causal language model: the teacher is a generative model, so data-free
inputs are its own samples (ancestral sampling with a temperature), the recipe of data-free
distillation for language models (e.g. Kim & Rush, 2016, "Sequence-Level Knowledge
Distillation", arXiv:1606.07947, who train on the teacher's generations). A token classifier
that is not causal has no such sampler and is refused.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nas_student.distill.datafree_settings import DataFreeSettings
from nas_student.errors import NasStudentError
from nas_student.families.base import ModelIO, TappedModel

Progress = Callable[[int, int], None]  # (samples done, samples in all)


# ---------------------------------------------------------------- loss terms (pure functions)

def bn_stat_loss(x: torch.Tensor, running_mean: torch.Tensor, running_var: torch.Tensor) -> torch.Tensor:
    """DeepInversion's R_feature for one BatchNorm layer's input ``x`` (N, C, ...):
    ``||mean(x) - running_mean||_2 + ||var(x) - running_var||_2`` over channels, with the
    batch statistics taken over every dimension but the channel one (biased variance, as
    BatchNorm normalises with)."""
    dims = [0, *range(2, x.dim())]
    mean = x.mean(dims)
    var = x.var(dims, unbiased=False)
    return torch.linalg.vector_norm(mean - running_mean) + torch.linalg.vector_norm(var - running_var)


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: the mean absolute difference of neighbours along each
    spatial axis of ``x`` (N, C, *spatial), summed over the axes. Zero for flat vectors (N, D)."""
    total = x.new_zeros(())
    for axis in range(2, x.dim()):
        if x.shape[axis] > 1:
            total = total + x.diff(dim=axis).abs().mean()
    return total


def diversity_loss(features: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity over pairs of distinct rows of ``features`` (N, D) that share a
    class: 1 when every input of a class looks the same to the teacher, lower when diverse."""
    f = F.normalize(features.flatten(1), dim=1)
    sim = f @ f.T
    same = (classes[:, None] == classes[None, :]) & ~torch.eye(len(f), dtype=torch.bool, device=f.device)
    if not bool(same.any()):
        return sim.new_zeros(())
    return sim[same].mean()


# ---------------------------------------------------------------- continuous inputs

class _BNStats:
    """Forward hooks on every BatchNorm layer; ``loss`` is the sum of :func:`bn_stat_loss`."""

    def __init__(self, model: nn.Module, first_multiplier: float = 1.0) -> None:
        self.first_multiplier = first_multiplier
        self.layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                       and m.running_mean is not None]
        self.terms: list[torch.Tensor] = []
        self.handles = [m.register_forward_hook(self._hook) for m in self.layers]

    def _hook(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        self.terms.append(bn_stat_loss(inputs[0], module.running_mean, module.running_var))  # type: ignore[arg-type]

    def pop(self) -> torch.Tensor:
        if not self.terms:
            return torch.zeros(())
        loss = self.first_multiplier * self.terms[0] + sum(self.terms[1:], torch.zeros(()))
        self.terms = []
        return loss

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _forward(teacher: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the features the diversity term compares: the last feature tap of a
    TappedModel (the penultimate features), else the inputs themselves."""
    if isinstance(teacher, TappedModel) and teacher.tap_names:
        logits, feats = teacher.forward_features(x)
        return logits, feats[teacher.tap_names[-1]]
    return teacher(x), x


def synthesis_loss(teacher: nn.Module, x: torch.Tensor, classes: torch.Tensor, bn: _BNStats,
                   s: DataFreeSettings) -> dict[str, torch.Tensor]:
    """Every term on the batch ``x`` and the weighted ``total``."""
    logits, feats = _forward(teacher, x)
    terms = {"bn": bn.pop(), "ce": F.cross_entropy(logits, classes), "tv": tv_loss(x),
             "l2": x.flatten(1).norm(dim=1).mean(), "diversity": diversity_loss(feats, classes)}
    weights = {"bn": s.bn_weight, "ce": s.ce_weight, "tv": s.tv_weight, "l2": s.l2_weight,
               "diversity": s.diversity_weight}
    terms["total"] = sum(weights[k] * v for k, v in terms.items())  # type: ignore[assignment]
    return terms


def _init(n: int, io: ModelIO, s: DataFreeSettings, gen: torch.Generator) -> torch.Tensor:
    if s.input_range is None:
        return torch.randn(n, *io.input_shape, generator=gen)
    lo, hi = s.input_range
    return lo + (hi - lo) * torch.rand(n, *io.input_shape, generator=gen)


def _invert(teacher: nn.Module, io: ModelIO, n: int, s: DataFreeSettings, gen: torch.Generator,
            device: torch.device, progress: Progress | None) -> torch.Tensor:
    bn = _BNStats(teacher, s.first_bn_multiplier)
    if not bn.layers:
        warnings.warn("data-free synthesis: the teacher has no BatchNorm layers, so there are no "
                      "data statistics to match; using the class, prior and diversity terms only "
                      "(expect less natural inputs)", stacklevel=3)
    # near-equal batches (no tiny last batch: the BN statistics of a few inputs mean little)
    chunks = -(-n // s.batch_size)
    sizes = [n // chunks + (i < n % chunks) for i in range(chunks)]
    out, start = [], 0
    try:
        for b in sizes:
            classes = (torch.arange(start, start + b) % io.num_outputs).to(device)
            x = _init(b, io, s, gen).to(device).requires_grad_(True)
            opt = torch.optim.Adam([x], lr=s.lr)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, s.steps)
            for _ in range(s.steps):
                loss = synthesis_loss(teacher, x, classes, bn, s)["total"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                if s.input_range is not None:
                    with torch.no_grad():
                        x.clamp_(*s.input_range)
            out.append(x.detach().cpu())
            start += b
            if progress is not None:
                progress(start, n)
    finally:
        bn.close()
    return torch.cat(out)


# ---------------------------------------------------------------- token inputs

@torch.no_grad()
def _sample_tokens(teacher: nn.Module, io: ModelIO, n: int, s: DataFreeSettings,
                   gen: torch.Generator, device: torch.device, progress: Progress | None) -> torch.Tensor:
    """Ancestral sampling. A random first token seeds each sequence and is then dropped, so
    every kept token is drawn from the teacher (``length + 1`` tokens made, ``length`` kept)."""
    if not (io.causal and io.per_token):
        raise NasStudentError(
            "data_free: token inputs are supported only for a causal language-model teacher "
            f"(per_token and causal); this task has per_token={io.per_token}, causal={io.causal}")
    length, out = io.input_shape[0], []
    for start in range(0, n, s.batch_size):
        b = min(s.batch_size, n - start)
        seq = torch.empty(b, length + 1, dtype=torch.long)
        seq[:, 0] = torch.randint(io.vocab_size, (b,), generator=gen)  # type: ignore[arg-type]
        for t in range(1, length + 1):
            logits = teacher(seq[:, :t].to(device))[:, -1].float().cpu()
            probs = torch.softmax(logits / s.temperature, dim=-1)
            seq[:, t] = torch.multinomial(probs, 1, generator=gen).squeeze(1)
        out.append(seq[:, 1:])
        if progress is not None:
            progress(start + b, n)
    return torch.cat(out)


# ---------------------------------------------------------------- entry point

def synthesize(teacher: nn.Module, io: ModelIO, n: int, settings: DataFreeSettings | None = None, *,
               seed: int = 0, device: str | torch.device = "cpu",
               progress: Progress | None = None) -> torch.Tensor:
    """``n`` synthetic inputs shaped like the task's ``x`` (on CPU), the same for the same
    seed, settings and device: optimised by DeepInversion for continuous inputs, sampled from
    the teacher for a causal language model. ``teacher`` must be in eval mode (as a Task's is);
    its parameters are left untouched."""
    s = settings or DataFreeSettings()
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    teacher = teacher.to(device)
    was = teacher.training
    teacher.eval()
    grads = [p.requires_grad for p in teacher.parameters()]
    for p in teacher.parameters():
        p.requires_grad_(False)
    try:
        if io.tokens:
            return _sample_tokens(teacher, io, n, s, gen, device, progress)
        return _invert(teacher, io, n, s, gen, device, progress)
    finally:
        teacher.train(was)
        for p, g in zip(teacher.parameters(), grads, strict=True):
            p.requires_grad_(g)
