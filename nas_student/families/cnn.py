"""``cnn`` (images, ``(channels, height, width)``) and ``cnn1d`` (signals, ``(channels, length)``;
a flat ``(length,)`` input is a one-channel signal): a stem conv, then stages of blocks, global
average pooling, a linear head. One implementation, built with 2-D or 1-D layers.

Each stage may first downsample (stride 2 on its first block, or 2x max/avg pooling), then runs
``depth`` blocks of one of two kinds:

- ``block: conv``: conv ``kernel`` -> norm -> activation (``groups`` applies here).
- ``block: inverted``: the inverted residual of MobileNetV2 (Sandler et al., 2018,
  arXiv:1801.04381): a 1x1 expansion to ``expansion`` x the input width (left out when
  ``expansion`` is 1), a depthwise ``kernel`` conv, then a linear 1x1 projection (norm, no
  activation).

With ``residual: true`` every block adds its input (a 1x1 projection where the shape changes).
A stage may not downsample a feature map that is already 1 wide: such a student is refused
when it is built (one line), since the stride would only waste its layers.

MACs per example (what ``nas_student.cost.profile`` counts; P positions of the block's output,
P = H*W or L): a conv block ``P*k^d*c_in*c_out/groups``; an inverted block
``P_in*c_in*h + P*k^d*h + P*h*c_out`` with ``h = expansion*c_in`` (no first term when
``expansion`` is 1); a projection shortcut ``P*c_in*c_out``; the head ``c*classes``.
Feature taps: ``stem``, ``stage1`` .. ``stageN``, ``pooled``. A 1-D model's feature maps are
exposed position-major, ``(B, L, C)``, the layout of sequence models' features, so any 1-D
student meets any sequence teacher in feature distillation.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from nas_student.errors import NasStudentError
from nas_student.families import register
from nas_student.families.base import ACTIVATIONS, ArchModel, Family, ModelIO, TappedModel, refuse_tokens

Act = Literal["relu", "relu6", "gelu", "silu", "hardswish", "tanh"]


class CNNStage(ArchModel):
    depth: Annotated[int, Field(ge=1, le=32)]
    width: Annotated[int, Field(ge=1, le=4096)]
    kernel: Annotated[int, Field(ge=1, le=15)] = 3
    downsample: Literal["none", "stride", "maxpool", "avgpool"] = "none"
    block: Literal["conv", "inverted"] = "conv"
    expansion: Annotated[int, Field(ge=1, le=8)] = 1


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
    def _check_stages(self) -> "CNNArch":
        c_in = self.stem_width
        for i, s in enumerate(self.stages):
            if s.block == "conv" and (s.width % self.groups or c_in % self.groups):
                raise ValueError(f"stages[{i}]: groups={self.groups} must divide the input width "
                                 f"{c_in} and the stage width {s.width}")
            if s.kernel % 2 == 0:
                raise ValueError(f"stages[{i}]: kernel must be odd (got {s.kernel})")
            if s.block == "conv" and s.expansion != 1:
                raise ValueError(f"stages[{i}]: expansion applies to inverted blocks only "
                                 f"(got expansion={s.expansion} with block='conv'; pin it with a rule)")
            c_in = s.width
        return self


class CNN1DArch(CNNArch):
    family: Literal["cnn1d"]  # type: ignore[assignment]


class _Layers:
    """The torch layers of one dimensionality (1: signals, 2: images)."""

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self.conv = nn.Conv1d if dims == 1 else nn.Conv2d
        self.batch_norm = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        self.max_pool = nn.MaxPool1d if dims == 1 else nn.MaxPool2d
        self.avg_pool = nn.AvgPool1d if dims == 1 else nn.AvgPool2d
        self.global_pool = nn.AdaptiveAvgPool1d if dims == 1 else nn.AdaptiveAvgPool2d

    def norm(self, kind: str, c: int) -> nn.Module:
        if kind == "batch":
            return self.batch_norm(c)
        if kind == "group":
            return nn.GroupNorm(max(g for g in (1, 2, 4, 8) if c % g == 0), c)
        return nn.Identity()


def _shortcut(nd: _Layers, c_in: int, c_out: int, stride: int, residual: bool) -> nn.Module | None:
    if not residual:
        return None
    return nn.Identity() if c_in == c_out and stride == 1 else nd.conv(c_in, c_out, 1, stride, bias=False)


class ConvBlock(nn.Module):
    def __init__(self, nd: _Layers, c_in: int, c_out: int, k: int, stride: int, groups: int, norm: str,
                 act: str, residual: bool) -> None:
        super().__init__()
        self.conv = nd.conv(c_in, c_out, k, stride, k // 2, groups=groups, bias=norm == "none")
        self.norm = nd.norm(norm, c_out)
        self.act = ACTIVATIONS[act]()
        self.shortcut = _shortcut(nd, c_in, c_out, stride, residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.norm(self.conv(x)))
        return y + self.shortcut(x) if self.shortcut is not None else y


class InvertedBlock(nn.Module):
    """MobileNetV2's inverted residual: expand (1x1), depthwise (k), project linearly (1x1)."""

    def __init__(self, nd: _Layers, c_in: int, c_out: int, k: int, stride: int, expansion: int,
                 norm: str, act: str, residual: bool) -> None:
        super().__init__()
        hidden, bias = c_in * expansion, norm == "none"
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [nd.conv(c_in, hidden, 1, bias=bias), nd.norm(norm, hidden), ACTIVATIONS[act]()]
        layers += [nd.conv(hidden, hidden, k, stride, k // 2, groups=hidden, bias=bias),
                   nd.norm(norm, hidden), ACTIVATIONS[act](),
                   nd.conv(hidden, c_out, 1, bias=bias), nd.norm(norm, c_out)]
        self.body = nn.Sequential(*layers)
        self.shortcut = _shortcut(nd, c_in, c_out, stride, residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return y + self.shortcut(x) if self.shortcut is not None else y


def _input_shape(family: str, io: ModelIO, dims: int) -> tuple[int, ...]:
    """(channels, *spatial) of the task's inputs, or one line saying which family fits."""
    shape = io.input_shape
    if dims == 1 and len(shape) == 1:
        return (1, shape[0])  # a flat vector is a one-channel signal
    if len(shape) != dims + 1:
        want = "(channels, length) signals" if dims == 1 else "(channels, height, width) images"
        other = ("for images search the 2-D family 'cnn' (e.g. --space digits-cnn)" if dims == 1
                 else "for 1-D signals search the family 'cnn1d' (e.g. --space mnist1d-cnn)")
        raise NasStudentError(f"family {family!r} takes {want}, but this task's inputs have shape "
                              f"{tuple(shape)}; {other}")
    return tuple(shape)


class CNN(TappedModel):
    def __init__(self, a: CNNArch, io: ModelIO, dims: int) -> None:
        super().__init__()
        shape = _input_shape(a.family, io, dims)
        self.flat_input = len(io.input_shape) == 1
        nd, act = _Layers(dims), a.activation
        self.stem = nn.Sequential(
            nd.conv(shape[0], a.stem_width, a.stem_kernel, 1, a.stem_kernel // 2, bias=a.norm == "none"),
            nd.norm(a.norm, a.stem_width), ACTIVATIONS[act]())
        stages, c, size = [], a.stem_width, min(shape[1:])
        for i, s in enumerate(a.stages):
            if s.downsample != "none":
                if size < 2:
                    raise NasStudentError(
                        f"architecture for family {a.family!r}: stages[{i}] downsamples a feature map "
                        f"that is already 1 wide (inputs {tuple(io.input_shape)} allow "
                        f"{_halvings(min(shape[1:]))} downsamplings); limit downsampling with a rule")
                size = (size + 1) // 2
            layers: list[nn.Module] = []
            if s.downsample in ("maxpool", "avgpool"):
                pool = nd.max_pool if s.downsample == "maxpool" else nd.avg_pool
                layers.append(pool(2, ceil_mode=True))
            for d in range(s.depth):
                stride = 2 if (d == 0 and s.downsample == "stride") else 1
                if s.block == "inverted":
                    layers.append(InvertedBlock(nd, c, s.width, s.kernel, stride, s.expansion, a.norm, act,
                                                a.residual))
                else:
                    layers.append(ConvBlock(nd, c, s.width, s.kernel, stride, a.groups, a.norm, act, a.residual))
                c = s.width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.pool = nd.global_pool(1)
        self.dropout = nn.Dropout(a.head_dropout)
        self.head = nn.Linear(c, io.num_outputs)
        self.position_major = dims == 1
        self.tap_names = ("stem", *(f"stage{i + 1}" for i in range(len(stages))), "pooled")

    def _tap(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2) if self.position_major else x

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.flat_input:
            x = x.unsqueeze(1)
        x = self.stem(x)
        feats = {"stem": self._tap(x)}
        for i, stage in enumerate(self.stages):
            x = stage(x)
            feats[f"stage{i + 1}"] = self._tap(x)
        feats["pooled"] = (x := self.pool(x).flatten(1))
        return self.head(self.dropout(x)), feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.flat_input:
            x = x.unsqueeze(1)
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(self.dropout(self.pool(x).flatten(1)))


def _halvings(size: int) -> int:
    n = 0
    while size >= 2:
        size, n = (size + 1) // 2, n + 1
    return n


class _ConvFamily(Family):
    """``cnn`` and ``cnn1d``: one builder, told the dimensionality."""

    dims: ClassVar[int]

    def build(self, arch: dict[str, Any], io: ModelIO) -> TappedModel:
        refuse_tokens(self.name, io)
        return CNN(self.parse(arch), io, dims=self.dims)  # type: ignore[arg-type]

    def depth(self, arch: dict[str, Any]) -> int:
        return sum(int(s["depth"]) for s in arch["stages"])


@register
class CNNFamily(_ConvFamily):
    name, arch_model, dims = "cnn", CNNArch, 2


@register
class CNN1DFamily(_ConvFamily):
    name, arch_model, dims = "cnn1d", CNN1DArch, 1
