"""``cnn``: a stem conv, then stages of conv blocks, global average pooling, a linear head.

Each stage may first downsample (stride-2 first conv, or 2x2 max/avg pooling), then runs
``depth`` blocks of conv -> norm -> activation, optionally residual (1x1 projection where the
shape changes). Feature taps: ``stem``, ``stage1`` .. ``stageN``, ``pooled``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from nas_student.families import register
from nas_student.families.base import ACTIVATIONS, ArchModel, Family, ModelIO, TappedModel, refuse_tokens

Act = Literal["relu", "relu6", "gelu", "silu", "hardswish", "tanh"]


class CNNStage(ArchModel):
    depth: Annotated[int, Field(ge=1, le=32)]
    width: Annotated[int, Field(ge=1, le=4096)]
    kernel: Annotated[int, Field(ge=1, le=15)] = 3
    downsample: Literal["none", "stride", "maxpool", "avgpool"] = "none"


class CNNArch(ArchModel):
    family: Literal["cnn"]
    stem_width: Annotated[int, Field(ge=1, le=4096)]
    stem_kernel: Annotated[int, Field(ge=1, le=15)] = 3
    stages: Annotated[list[CNNStage], Field(min_length=1, max_length=16)]
    norm: Literal["batch", "group", "none"] = "batch"
    activation: Act = "relu"
    residual: bool = False
    groups: Annotated[int, Field(ge=1)] = 1
    head_dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0

    @model_validator(mode="after")
    def _groups_divide(self) -> "CNNArch":
        c_in = self.stem_width
        for i, s in enumerate(self.stages):
            if s.width % self.groups or c_in % self.groups:
                raise ValueError(f"stages[{i}]: groups={self.groups} must divide the input width "
                                 f"{c_in} and the stage width {s.width}")
            if s.kernel % 2 == 0:
                raise ValueError(f"stages[{i}]: kernel must be odd (got {s.kernel})")
            c_in = s.width
        return self


def _norm(kind: str, c: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(c)
    if kind == "group":
        return nn.GroupNorm(max(g for g in (1, 2, 4, 8) if c % g == 0), c)
    return nn.Identity()


class ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, stride: int, groups: int, norm: str,
                 act: str, residual: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=norm == "none")
        self.norm = _norm(norm, c_out)
        self.act = ACTIVATIONS[act]()
        self.shortcut: nn.Module | None = None
        if residual:
            same = c_in == c_out and stride == 1
            self.shortcut = nn.Identity() if same else nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.norm(self.conv(x)))
        return y + self.shortcut(x) if self.shortcut is not None else y


class CNN(TappedModel):
    def __init__(self, a: CNNArch, io: ModelIO) -> None:
        super().__init__()
        if len(io.input_shape) != 3:
            raise ValueError(f"cnn needs (channels, height, width) inputs, got {io.input_shape}")
        act = a.activation
        self.stem = nn.Sequential(
            nn.Conv2d(io.input_shape[0], a.stem_width, a.stem_kernel, 1, a.stem_kernel // 2,
                      bias=a.norm == "none"),
            _norm(a.norm, a.stem_width), ACTIVATIONS[act]())
        stages, c = [], a.stem_width
        for s in a.stages:
            layers: list[nn.Module] = []
            if s.downsample in ("maxpool", "avgpool"):
                pool = nn.MaxPool2d if s.downsample == "maxpool" else nn.AvgPool2d
                layers.append(pool(2, ceil_mode=True))
            for d in range(s.depth):
                stride = 2 if (d == 0 and s.downsample == "stride") else 1
                layers.append(ConvBlock(c, s.width, s.kernel, stride, a.groups, a.norm, act, a.residual))
                c = s.width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(a.head_dropout)
        self.head = nn.Linear(c, io.num_outputs)
        self.tap_names = ("stem", *(f"stage{i + 1}" for i in range(len(stages))), "pooled")

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        feats = {"stem": (x := self.stem(x))}
        for i, stage in enumerate(self.stages):
            feats[f"stage{i + 1}"] = (x := stage(x))
        feats["pooled"] = (x := self.pool(x).flatten(1))
        return self.head(self.dropout(x)), feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(self.dropout(self.pool(x).flatten(1)))


@register
class CNNFamily(Family):
    name = "cnn"
    arch_model = CNNArch

    def build(self, arch: dict[str, Any], io: ModelIO) -> TappedModel:
        refuse_tokens("cnn", io)
        return CNN(self.parse(arch), io)  # type: ignore[arg-type]
