"""``mlp``: flatten, then hidden layers of linear -> norm -> activation -> dropout, a linear head.

Feature taps: ``input`` (flattened) and ``layer1`` .. ``layerN``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import torch
from pydantic import Field
from torch import nn

from nas_student.families import register
from nas_student.families.base import ACTIVATIONS, ArchModel, Family, ModelIO, TappedModel, refuse_tokens


class MLPLayer(ArchModel):
    width: Annotated[int, Field(ge=1, le=65536)]
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0


class MLPArch(ArchModel):
    family: Literal["mlp"]
    layers: Annotated[list[MLPLayer], Field(max_length=64)]
    activation: Literal["relu", "relu6", "gelu", "silu", "hardswish", "tanh"] = "relu"
    norm: Literal["none", "batch", "layer"] = "none"


class MLP(TappedModel):
    def __init__(self, a: MLPArch, io: ModelIO) -> None:
        super().__init__()
        c = math.prod(io.input_shape)
        blocks = []
        for layer in a.layers:
            norm = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}.get(a.norm)
            blocks.append(nn.Sequential(
                nn.Linear(c, layer.width),
                norm(layer.width) if norm else nn.Identity(),
                ACTIVATIONS[a.activation](),
                nn.Dropout(layer.dropout)))
            c = layer.width
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c, io.num_outputs)
        self.tap_names = ("input", *(f"layer{i + 1}" for i in range(len(blocks))))

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        feats = {"input": (x := x.flatten(1))}
        for i, block in enumerate(self.blocks):
            feats[f"layer{i + 1}"] = (x := block(x))
        return self.head(x), feats


@register
class MLPFamily(Family):
    name = "mlp"
    arch_model = MLPArch

    def depth(self, arch: dict[str, Any]) -> int:
        return max(1, len(arch["layers"]))

    def build(self, arch: dict[str, Any], io: ModelIO) -> TappedModel:
        refuse_tokens("mlp", io)
        return MLP(self.parse(arch), io)  # type: ignore[arg-type]
