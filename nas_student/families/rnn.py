"""``rnn``: an input layer (token embedding or per-step projection), ``layers`` LSTM or GRU layers, a linear head.

For sequences: token ids, or real-valued signals ``(channels, length)`` read step by step
through a per-step linear projection (:mod:`nas_student.families.sequence_input`). Each layer is its own one-layer ``nn.LSTM``/``nn.GRU``
(so every layer's output is a feature tap), dropout between layers. ``bidirectional`` is
refused for causal tasks (language modelling: a backward pass would see the future).
Per-token output ``(B, L, V)`` when ``ModelIO.per_token``, else the mean over positions.

MACs for B sequences of length L (what ``nas_student.cost.profile`` counts): per layer and
direction ``B*L*g*(in*h + h*h)`` with g = 4 gates (LSTM) or 3 (GRU), ``in`` the embedding
width for layer 1 and ``h * directions`` after; the head adds ``B*L*h*directions*V`` (per
token) or ``B*h*directions*V``; a signal's per-step projection adds ``B*L*C*e``.
Feature taps: ``embed``, ``layer1`` .. ``layerN``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from pydantic import Field
from torch import nn

from nas_student.errors import NasStudentError
from nas_student.families import register
from nas_student.families.base import ArchModel, Family, ModelIO, TappedModel
from nas_student.families.sequence_input import input_layer, sequence_shape


class RNNArch(ArchModel):
    family: Literal["rnn"]
    cell: Literal["lstm", "gru"] = "lstm"
    layers: Annotated[int, Field(ge=1, le=16)]
    hidden: Annotated[int, Field(ge=1, le=8192)]
    embed_dim: Annotated[int, Field(ge=1, le=8192)] | None = None  # default: hidden
    bidirectional: bool = False
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0


class SeqRNN(TappedModel):
    def __init__(self, a: RNNArch, io: ModelIO) -> None:
        super().__init__()
        _, channels = sequence_shape("rnn", io)
        if a.bidirectional and io.causal:
            raise NasStudentError("architecture for family 'rnn': bidirectional: not allowed for a "
                                  "causal task (language modelling would see the future)")
        self.per_token = io.per_token
        e = a.embed_dim or a.hidden
        cls = nn.LSTM if a.cell == "lstm" else nn.GRU
        dirs = 2 if a.bidirectional else 1
        self.embed = input_layer(io, channels, e)
        self.layers = nn.ModuleList(
            cls(e if i == 0 else a.hidden * dirs, a.hidden, batch_first=True, bidirectional=a.bidirectional)
            for i in range(a.layers))
        self.drop = nn.Dropout(a.dropout)
        self.head = nn.Linear(a.hidden * dirs, io.num_outputs)
        self.tap_names = ("embed", *(f"layer{i + 1}" for i in range(a.layers)))

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        h = self.embed(x)
        feats = {"embed": h}
        for i, layer in enumerate(self.layers):
            h = layer(self.drop(h) if i else h)[0]
            feats[f"layer{i + 1}"] = h
        h = self.drop(h)
        return self.head(h if self.per_token else h.mean(1)), feats


@register
class RNNFamily(Family):
    name = "rnn"
    arch_model = RNNArch

    def depth(self, arch: dict[str, Any]) -> int:
        return int(arch["layers"])

    def build(self, arch: dict[str, Any], io: ModelIO) -> TappedModel:
        return SeqRNN(self.parse(arch), io)  # type: ignore[arg-type]
