"""Print which aten ops plain fvcore leaves unsupported for each model kind we price.

Run ``python -m nas_student.cost.trace_ops`` after a torch upgrade: an op name here that
``handlers.MAC_HANDLES`` does not know means a path that is counted as 0 by fvcore.
"""

from __future__ import annotations

import logging
import warnings

import torch
import torch.nn.functional as F
from fvcore.nn import FlopCountAnalysis
from torch import nn


class _Sdpa(nn.Module):
    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, q, q)


class _Mha(nn.Module):
    def __init__(self, batch_first: bool) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, batch_first=batch_first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


def _encoder(batch_first: bool) -> nn.Module:
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=batch_first)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)


def cases() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    return {
        "lstm": (nn.LSTM(8, 16, 2, bidirectional=True), torch.randn(5, 1, 8)),
        "gru": (nn.GRU(8, 16), torch.randn(5, 1, 8)),
        "rnn_tanh": (nn.RNN(8, 16), torch.randn(5, 1, 8)),
        "rnn_relu": (nn.RNN(8, 16, nonlinearity="relu"), torch.randn(5, 1, 8)),
        "sdpa": (_Sdpa(), torch.randn(1, 2, 5, 8)),
        "mha batch_first": (_Mha(True), torch.randn(1, 5, 16)),
        "mha seq_first": (_Mha(False), torch.randn(5, 1, 16)),
        "encoder batch_first": (_encoder(True), torch.randn(1, 5, 16)),
        "conv padding=same": (nn.Conv2d(3, 4, 3, padding="same"), torch.randn(1, 3, 8, 8)),
        "embedding": (nn.Embedding(10, 4), torch.tensor([[1, 2]])),
    }


def main() -> None:
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    print(f"torch {torch.__version__}")
    for name, (model, x) in cases().items():
        for mode in ("train", "eval"):
            model.train(mode == "train")
            with torch.no_grad():
                fa = FlopCountAnalysis(model, x).uncalled_modules_warnings(False)
                fa.unsupported_ops_warnings(False)
                total = fa.total()  # runs the trace; unsupported_ops() needs it first
                ops = dict(fa.unsupported_ops())
            print(f"{name:20s} {mode:5s} fvcore total={total:7d} unsupported={ops}")


if __name__ == "__main__":
    main()
