"""How a sequence family (``transformer``, ``rnn``, ``hybrid``) reads its input.

Token ids ``(B, L)`` go through an embedding table. Real-valued signals, ``(B, C, L)`` or a flat
``(B, L)`` (one channel), are read as ``L`` steps of ``C`` features each and mapped to the
model's width by a per-step linear projection (``L*C*d`` MACs per example), so a CNN teacher
on signals can be distilled into recurrent or attention students.
"""

from __future__ import annotations

import torch
from torch import nn

from nas_student.errors import NasStudentError
from nas_student.families.base import ModelIO


def sequence_shape(family: str, io: ModelIO) -> tuple[int, int | None]:
    """(length, channels) of the steps; channels is None for token ids. Refuses other inputs
    with one line."""
    shape = io.input_shape
    if io.tokens and len(shape) == 1:
        return shape[0], None
    if not io.tokens and len(shape) in (1, 2):
        return (shape[0], 1) if len(shape) == 1 else (shape[1], shape[0])
    raise NasStudentError(f"family {family!r} takes token ids (length,) or signals (channels, length), "
                          f"but this task's inputs have shape {tuple(shape)} ({io.input_dtype}); "
                          "for images search a 'cnn' space")


class SignalSteps(nn.Module):
    """``(B, C, L)`` or ``(B, L)`` signals to ``(B, L, d)`` steps: a linear map of each step."""

    def __init__(self, channels: int, d: int) -> None:
        super().__init__()
        self.proj = nn.Linear(channels, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        return self.proj(x.transpose(1, 2))


def input_layer(io: ModelIO, channels: int | None, d: int) -> nn.Module:
    """An embedding table for token ids, a per-step projection for signals."""
    if channels is None:
        return nn.Embedding(io.vocab_size, d)  # type: ignore[arg-type]
    return SignalSteps(channels, d)
