"""Attention, Transformer and recurrent counts: exact, and equal on fused and unfused paths."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas_student.cost import profile

E, HEADS, L, FF = 16, 4, 6, 32


def mha_macs(batch: int, lq: int, lk: int, e: int) -> int:
    """q/k/v projections + QK^T + AV + out projection (no bias terms)."""
    return batch * (lq * e * e + 2 * lk * e * e + 2 * lq * lk * e + lq * e * e)


class SelfAttn(nn.Module):
    def __init__(self, batch_first: bool, need_weights: bool, masked: bool = False) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(E, HEADS, batch_first=batch_first)
        self.need_weights, self.masked = need_weights, masked

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros(L, L) if self.masked else None
        return self.attn(x, x, x, need_weights=self.need_weights, attn_mask=mask)[0]


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_multihead_attention_all_paths(batch_first: bool, need_weights: bool, masked: bool) -> None:
    model = SelfAttn(batch_first, need_weights, masked)
    x = torch.randn(2, L, E) if batch_first else torch.randn(L, 2, E)
    expected = mha_macs(2, L, L, E)
    for mode in ("train", "eval"):  # eval + batch_first takes _native_multi_head_attention
        assert profile(model, x, mode=mode).macs == expected  # type: ignore[arg-type]
    fused = batch_first and not masked  # fast path: aten::_native_multi_head_attention
    assert ("attention" in profile(model, x).by_op) == fused


def test_cross_attention_different_lengths() -> None:
    class Cross(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(E, HEADS, batch_first=True)

        def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
            return self.attn(q, kv, kv, need_weights=False)[0]

    q, kv = torch.randn(1, 3, E), torch.randn(1, 9, E)
    for mode in ("train", "eval"):
        assert profile(Cross(), (q, kv), mode=mode).macs == mha_macs(1, 3, 9, E)  # type: ignore[arg-type]


def test_scaled_dot_product_attention() -> None:
    class Sdpa(nn.Module):
        def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return F.scaled_dot_product_attention(q, k, v, is_causal=False)

    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 4)
    cost = profile(Sdpa(), (q, k, v))
    assert cost.macs == 2 * 3 * 5 * 7 * (8 + 4)
    assert cost.by_op == {"scaled_dot_product_attention": cost.macs}


def encoder_macs(batch: int, layers: int) -> int:
    per_layer = mha_macs(batch, L, L, E) + batch * L * 2 * E * FF
    return layers * per_layer


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_train_eq_eval(batch_first: bool, norm_first: bool) -> None:
    layer = nn.TransformerEncoderLayer(E, HEADS, FF, batch_first=batch_first, norm_first=norm_first)
    model = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    x = torch.randn(2, L, E) if batch_first else torch.randn(L, 2, E)
    train, eval_ = profile(model, x, mode="train"), profile(model, x)
    assert train.macs == eval_.macs == encoder_macs(2, 2)
    assert train.params == eval_.params == sum(p.numel() for p in model.parameters())


class FusedLayer(nn.Module):
    """Calls the encoder fast-path kernel directly (fvcore's own hooks keep
    nn.TransformerEncoderLayer off it, so this is how the op reaches a trace)."""

    def __init__(self, layer: nn.TransformerEncoderLayer) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.layer
        return torch._transformer_encoder_layer_fwd(
            x, E, HEADS, m.self_attn.in_proj_weight, m.self_attn.in_proj_bias,
            m.self_attn.out_proj.weight, m.self_attn.out_proj.bias, False, m.norm_first,
            m.norm1.eps, m.norm1.weight, m.norm1.bias, m.norm2.weight, m.norm2.bias,
            m.linear1.weight, m.linear1.bias, m.linear2.weight, m.linear2.bias, None,
        )


def test_transformer_encoder_layer_fwd_op() -> None:
    layer = nn.TransformerEncoderLayer(E, HEADS, FF, batch_first=True).eval()
    fused = FusedLayer(layer)
    x = torch.randn(2, L, E)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), layer(x))  # same computation as the layer
    assert profile(fused, x).macs == encoder_macs(2, 1) == profile(layer, x).macs


def rnn_macs(gates: int, inp: int, hidden: int, layers: int, dirs: int, tokens: int) -> int:
    total, size = 0, inp
    for _ in range(layers):
        total += dirs * gates * (size * hidden + hidden * hidden)
        size = hidden * dirs
    return total * tokens


@pytest.mark.parametrize("kind,gates", [(nn.LSTM, 4), (nn.GRU, 3), (nn.RNN, 1)])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent(kind: type, gates: int, layers: int, bidirectional: bool) -> None:
    model = kind(8, 12, layers, bidirectional=bidirectional)
    expected = rnn_macs(gates, 8, 12, layers, 2 if bidirectional else 1, tokens=5 * 3)
    for mode in ("train", "eval"):
        cost = profile(model, torch.randn(5, 3, 8), mode=mode)  # type: ignore[arg-type]
        assert cost.macs == expected


def test_recurrent_layouts_and_relu() -> None:
    lstm = nn.LSTM(8, 12, batch_first=True)
    assert profile(lstm, torch.randn(3, 5, 8)).macs == rnn_macs(4, 8, 12, 1, 1, 15)
    assert profile(nn.LSTM(8, 12), torch.randn(5, 8)).macs == rnn_macs(4, 8, 12, 1, 1, 5)
    rnn = nn.RNN(8, 12, nonlinearity="relu")
    assert profile(rnn, torch.randn(5, 1, 8)).macs == rnn_macs(1, 8, 12, 1, 1, 5)


def test_lstm_proj_size() -> None:
    h, p = 12, 4
    model = nn.LSTM(8, h, 2, proj_size=p, bidirectional=True)
    layer0 = 4 * (8 * h + p * h) + p * h
    layer1 = 4 * (2 * p * h + p * h) + p * h
    assert profile(model, torch.randn(5, 1, 8)).macs == 5 * 2 * (layer0 + layer1)
