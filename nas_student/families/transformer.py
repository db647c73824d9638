"""``transformer``: an input layer (token embedding or per-step projection) + positions, ``layers`` Transformer blocks, a linear head.

For sequences: token ids, or real-valued signals ``(channels, length)`` read step by step
(:mod:`nas_student.families.sequence_input`). Each block is multi-head
self-attention (one fused qkv projection, ``scaled_dot_product_attention``, an output
projection) and a two-layer FFN of width ``round(ffn_ratio * d_model)``, with residuals and
LayerNorm before (``pre``) or after (``post``) each sub-layer. Positions are a learned table or
fixed sinusoids. ``dropout`` applies to the embedding, the FFN hidden layer and both residual
branches (not to attention probabilities: that costs a third of a CPU step). Causal attention when the task is (``ModelIO.causal``: language modelling);
then the output at position t depends only on tokens <= t. Per-token output ``(B, L, V)`` when
``ModelIO.per_token``, else the mean over positions goes to the head ``(B, classes)``.

MACs per block for B sequences of length L (what ``nas_student.cost.profile`` counts):
``B*L*(4*d^2 + 2*d*f) + 2*B*L^2*d`` (projections, FFN, QK^T and AV over the full score
matrix); the head adds ``B*L*d*V``; embedding lookups and positions are 0 MACs (a signal's per-step
projection adds ``B*L*C*d``).
Feature taps: ``embed`` (embedding + positions), ``layer1`` .. ``layerN``; with
:func:`keep_attention` also ``attn1`` .. ``attnN``, the attention probabilities
``(B, heads, L, L)`` (computed explicitly instead of by the fused kernel, so slower).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, ValidationInfo, field_validator
from torch import nn

from nas_student.families import register
from nas_student.families.base import ArchModel, Family, ModelIO, TappedModel
from nas_student.families.sequence_input import input_layer, sequence_shape


def valid_heads(d_model: int) -> list[int]:
    """Head counts that divide ``d_model`` (each head gets ``d_model // heads`` dims)."""
    return [h for h in range(1, d_model + 1) if d_model % h == 0]


class TransformerArch(ArchModel):
    family: Literal["transformer"]
    layers: Annotated[int, Field(ge=1, le=48)]
    d_model: Annotated[int, Field(ge=1, le=8192)]
    heads: Annotated[int, Field(ge=1, le=256)]
    ffn_ratio: Annotated[float, Field(gt=0, le=16)] = 4.0
    pos_encoding: Literal["learned", "sinusoidal"] = "learned"
    norm_placement: Literal["pre", "post"] = "pre"
    activation: Literal["relu", "gelu"] = "gelu"
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0

    @field_validator("heads")
    @classmethod
    def _heads_divide(cls, heads: int, info: ValidationInfo) -> int:
        d = info.data.get("d_model")
        if isinstance(d, int) and d % heads:
            raise ValueError(f"heads={heads} must divide d_model={d} "
                             f"(valid heads: {', '.join(map(str, valid_heads(d)[:12]))})")
        return heads


def sinusoids(length: int, d: int) -> torch.Tensor:
    """The fixed sinusoidal table of Vaswani et al. (2017), shape (1, length, d)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    half = (d + 1) // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) * 2 / max(d, 2))
    table = torch.zeros(length, 2 * half)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table[None, :, :d].contiguous()


class Block(nn.Module):
    def __init__(self, d: int, heads: int, ffn: int, activation: str, pre: bool, causal: bool,
                 dropout: float) -> None:
        super().__init__()
        self.heads, self.pre, self.causal = heads, pre, causal
        self.keep_attention, self.attn = False, None  # attention-map taps (distillation)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ff1 = nn.Linear(d, ffn)
        self.ff2 = nn.Linear(ffn, d)
        self.act = nn.GELU() if activation == "gelu" else nn.ReLU()
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape
        q, k, v = self.qkv(x).view(b, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if self.keep_attention:  # the explicit path, so the probabilities can be read
            scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
            if self.causal:
                future = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
                scores = scores.masked_fill(future, float("-inf"))
            self.attn = torch.softmax(scores, dim=-1)
            o = self.attn @ v
        else:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.proj(o.transpose(1, 2).reshape(b, length, d))

    def ffn(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff2(self.drop(self.act(self.ff1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre:
            x = x + self.drop(self.attention(self.norm1(x)))
            return x + self.drop(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.drop(self.attention(x)))
        return self.norm2(x + self.drop(self.ffn(x)))


class SeqTransformer(TappedModel):
    def __init__(self, a: TransformerArch, io: ModelIO) -> None:
        super().__init__()
        length, channels = sequence_shape("transformer", io)
        d, pre = a.d_model, a.norm_placement == "pre"
        self.per_token = io.per_token
        self.embed = input_layer(io, channels, d)
        if a.pos_encoding == "learned":
            self.pos = nn.Parameter(torch.randn(1, length, d) * 0.02)
        else:
            self.register_buffer("pos", sinusoids(length, d), persistent=False)
        self.embed_drop = nn.Dropout(a.dropout)
        ffn = max(1, round(a.ffn_ratio * d))
        self.layers = nn.ModuleList(Block(d, a.heads, ffn, a.activation, pre, io.causal, a.dropout)
                                    for _ in range(a.layers))
        self.norm = nn.LayerNorm(d) if pre else nn.Identity()
        self.head = nn.Linear(d, io.num_outputs)
        self.tap_names = ("embed", *(f"layer{i + 1}" for i in range(a.layers)))

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        h = self.embed(x)
        h = self.embed_drop(h + self.pos[:, : h.shape[1]])
        feats = {"embed": h}
        for i, layer in enumerate(self.layers):
            feats[f"layer{i + 1}"] = (h := layer(h))
            if layer.keep_attention:
                feats[f"attn{i + 1}"] = layer.attn
        h = self.norm(h)
        return self.head(h if self.per_token else h.mean(1)), feats


def keep_attention(model: nn.Module, on: bool = True) -> int:
    """Make every Transformer block of ``model`` expose its attention probabilities as
    ``attn<i>`` taps; returns the number of blocks found."""
    blocks = [m for m in model.modules() if isinstance(m, Block)]
    for b in blocks:
        b.keep_attention, b.attn = on, None
    for m in model.modules():
        if isinstance(m, SeqTransformer):
            base = tuple(n for n in m.tap_names if not n.startswith("attn"))
            m.tap_names = base + (tuple(f"attn{i + 1}" for i in range(len(m.layers))) if on else ())
    return len(blocks)


@register
class TransformerFamily(Family):
    name = "transformer"
    arch_model = TransformerArch

    def depth(self, arch: dict[str, Any]) -> int:
        return int(arch["layers"])

    def build(self, arch: dict[str, Any], io: ModelIO) -> TappedModel:
        return SeqTransformer(self.parse(arch), io)  # type: ignore[arg-type]
