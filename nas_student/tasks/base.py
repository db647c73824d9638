"""A task: data splits, the model interface it implies, its teacher, and how to score."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas_student.families.base import ModelIO


@dataclass(frozen=True)
class Split:
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class Task:
    """What a search needs to know about the problem. ``teacher`` is frozen and in eval mode."""

    name: str
    io: ModelIO
    train: Split
    val: Split
    test: Split
    teacher: nn.Module
    teacher_info: dict[str, Any] = field(default_factory=dict)
    unlabelled: torch.Tensor | None = None  # inputs without labels (semi-supervised mode)
    #: "classification": ``y`` is (N,) labels, outputs (N, C). "lm": ``x`` is (N, L) token ids,
    #: ``y`` (N, L) next-token targets with padding = ``IGNORE_INDEX`` (-100), outputs (N, L, V);
    #: the trainer and ``evaluate`` then do token-level KD and report next-token ``accuracy``
    #: and ``perplexity`` (they recognise it by the output rank, so the search needs no switch).
    kind: str = "classification"
    #: the range real inputs lie in, when known (data-free synthesis keeps to it)
    input_range: tuple[float, float] | None = None
    #: cross-modal distillation: the teacher sees another modality than the student. Its own
    #: input for each split ("train", "val", "test"), row for row paired with the student's
    #: (the same sample, e.g. the same digit as an image and as a signal), and its interface.
    teacher_view: dict[str, torch.Tensor] | None = None
    teacher_io: ModelIO | None = None
    #: where the teacher's outputs are cached (a built-in teacher's: beside its weights, see
    #: ``teacher_cache.cached_outputs``); None computes them every time
    outputs_cache: Path | None = None

    @property
    def cross_modal(self) -> bool:
        return self.teacher_view is not None

    def teacher_inputs(self, split: str) -> torch.Tensor:
        """What the teacher sees of ``split`` ("train": the distillation set, unlabelled pool
        included; "val"; "test"): the student's inputs, or their paired other modality."""
        if self.teacher_view is not None:
            return self.teacher_view[split]
        return self.distillation_set()[0] if split == "train" else getattr(self, split).x

    def teacher_logits(self, split: str) -> torch.Tensor:
        """The teacher's outputs over ``split`` (see :meth:`teacher_inputs`), row for row with
        the student's inputs: the soft targets of every distillation mode."""
        from nas_student.distill.trainer import predict

        x = self.teacher_inputs(split)
        if self.outputs_cache is None:
            return predict(self.teacher, x)
        from nas_student.tasks.teacher_cache import cached_outputs

        first = next(self.teacher.parameters(), None)
        device = first.device.type if first is not None else "cpu"
        return cached_outputs(self.outputs_cache, x, device, lambda: predict(self.teacher, x))

    def teacher_interface(self) -> ModelIO:
        """The interface the teacher is priced and run on (its own modality's when cross-modal)."""
        return self.teacher_io or self.io

    def distillation_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and labels a student trains on: the training split, plus the unlabelled pool
        (labels ``IGNORE_INDEX`` = -100: distilled from the teacher only)."""
        x, y = self.train.x, self.train.y
        if self.unlabelled is None or not len(self.unlabelled):
            return x, y
        pool = self.unlabelled.to(x.dtype)
        return (torch.cat([x, pool]),
                torch.cat([y, torch.full((len(pool), *y.shape[1:]), -100, dtype=y.dtype)]))


def freeze(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
