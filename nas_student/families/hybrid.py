"""``hybrid``: one family whose block type is itself a parameter, so a single search space can
search over Transformer and recurrent students together.

``cell: transformer | lstm | gru``, ``layers``, ``width`` (d_model, or the LSTM/GRU hidden and
embedding size). ``heads``, ``ffn_ratio``, ``pos_encoding`` and ``norm_placement`` apply to
``cell: transformer`` only (``heads`` must divide ``width`` there); for lstm/gru they are
ignored, so a space should pin them for those cells with a rule (see ``text-hybrid.yaml``) or
the same model is sampled under several hashes. Builds exactly the ``transformer`` or ``rnn``
family's model: same taps (``embed``, ``layer1..N``), same MACs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from nas_student.families import register
from nas_student.families.base import ArchModel, Family, ModelIO, TappedModel
from nas_student.families.rnn import RNNArch, SeqRNN
from nas_student.families.transformer import SeqTransformer, TransformerArch, valid_heads


class HybridArch(ArchModel):
    family: Literal["hybrid"]
    cell: Literal["transformer", "lstm", "gru"]
    layers: Annotated[int, Field(ge=1, le=48)]
    width: Annotated[int, Field(ge=1, le=8192)]
    heads: Annotated[int, Field(ge=1, le=256)] = 1
    ffn_ratio: Annotated[float, Field(gt=0, le=16)] = 4.0
    pos_encoding: Literal["learned", "sinusoidal"] = "learned"
    norm_placement: Literal["pre", "post"] = "pre"
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0

    @model_validator(mode="after")
    def _heads_divide(self) -> "HybridArch":
        if self.cell == "transformer" and self.width % self.heads:
            raise ValueError(f"heads={self.heads} must divide width={self.width} for cell=transformer "
                             f"(valid heads: {', '.join(map(str, valid_heads(self.width)[:12]))})")
        return self


@register
class HybridFamily(Family):
    name = "hybrid"
    arch_model = HybridArch

    def depth(self, arch: dict[str, Any]) -> int:
        return int(arch["layers"])

    def build(self, arch: dict[str, Any], io: ModelIO) -> TappedModel:
        a: HybridArch = self.parse(arch)  # type: ignore[assignment]
        if a.cell == "transformer":
            return SeqTransformer(TransformerArch(
                family="transformer", layers=a.layers, d_model=a.width, heads=a.heads,
                ffn_ratio=a.ffn_ratio, pos_encoding=a.pos_encoding, norm_placement=a.norm_placement,
                dropout=a.dropout), io)
        return SeqRNN(RNNArch(family="rnn", cell=a.cell, layers=a.layers, hidden=a.width,
                              dropout=a.dropout), io)
