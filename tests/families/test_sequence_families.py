"""The sequence families (transformer, rnn, hybrid): build, taps, causality, validation, exact MACs."""

import pytest
import torch

from nas_student.cost import profile
from nas_student.errors import NasStudentError
from nas_student.families import ModelIO, build
from nas_student.spaces import RandomSuggester, load_space

V, L = 13, 10
LM = ModelIO((L,), V, input_dtype="int64", vocab_size=V, per_token=True, causal=True)
CLS = ModelIO((L,), 3, input_dtype="int64", vocab_size=V)
TRANSFORMER = {"family": "transformer", "layers": 2, "d_model": 8, "heads": 2, "ffn_ratio": 2.0,
               "pos_encoding": "sinusoidal", "norm_placement": "post"}
LSTM = {"family": "rnn", "cell": "lstm", "layers": 2, "hidden": 8, "embed_dim": 6}


def tokens(b: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (b, L), generator=torch.Generator().manual_seed(seed))


def test_model_io_example_input_is_tokens_only_for_token_tasks():
    assert ModelIO((1, 8, 8), 10).example_input(2).dtype == torch.float32
    assert ModelIO((1, 8, 8), 10).example_input(2).shape == (2, 1, 8, 8)
    x = LM.example_input(2)
    assert x.dtype == torch.long and x.shape == (2, L) and not x.any()
    with pytest.raises(ValueError, match="vocab_size"):
        ModelIO((L,), V, input_dtype="int64")


@pytest.mark.parametrize("name", ["text-transformer", "text-rnn", "text-hybrid"])
def test_every_sampled_arch_of_the_text_spaces_builds_runs_and_taps(name):
    space, rng, built = load_space(name), RandomSuggester(7), 0
    for _ in range(200):
        arch = space.sample(rng)
        if space.violations(arch):
            continue
        model = build(arch, LM)
        y, feats = model.forward_features(tokens())
        assert y.shape == (3, L, V)
        n = arch["layers"]
        assert model.tap_names == ("embed", *(f"layer{i + 1}" for i in range(n)))
        assert set(feats) == set(model.tap_names)
        assert all(f.shape[:2] == (3, L) for f in feats.values())
        assert build(arch, CLS)(tokens()).shape == (3, 3)  # sequence classification: pooled
        built += 1
        if built == 12:
            break
    assert built == 12


@pytest.mark.parametrize("arch", [
    TRANSFORMER, {**TRANSFORMER, "pos_encoding": "learned", "norm_placement": "pre"}, LSTM,
    {"family": "rnn", "cell": "gru", "layers": 1, "hidden": 5},
    {"family": "hybrid", "cell": "transformer", "layers": 1, "width": 8, "heads": 4},
])
def test_causal_output_at_t_ignores_later_tokens(arch):
    torch.manual_seed(0)
    model = build(arch, LM).eval()
    x = tokens(2)
    for t in (0, 4, L - 2):
        changed = x.clone()
        changed[:, t + 1:] = (changed[:, t + 1:] + 5) % V
        a, b = model(x), model(changed)
        assert torch.allclose(a[:, :t + 1], b[:, :t + 1], atol=1e-6)
        assert not torch.allclose(a[:, t + 1:], b[:, t + 1:])


@pytest.mark.parametrize("bad,needle", [
    ({**TRANSFORMER, "heads": 3}, r"heads: heads=3 must divide d_model=8 \(valid heads: 1, 2, 4, 8\)"),
    ({**TRANSFORMER, "d_model": 12, "heads": 8}, "heads=8 must divide d_model=12"),
    ({**TRANSFORMER, "pos_encoding": "rotary"}, "pos_encoding"),
    ({**TRANSFORMER, "norm_placement": "sandwich"}, "norm_placement"),
    ({"family": "hybrid", "cell": "transformer", "layers": 1, "width": 10, "heads": 4}, "heads=4 must divide width=10"),
    ({**LSTM, "cell": "rnn_tanh"}, "cell"),
    ({**LSTM, "bidirectional": True}, "bidirectional: not allowed for a causal task"),
])
def test_invalid_architectures_are_refused_with_the_key(bad, needle):
    with pytest.raises(NasStudentError, match=needle):
        build(bad, LM)


def test_bidirectional_is_fine_where_the_task_is_not_causal():
    m = build({**LSTM, "bidirectional": True}, CLS)
    y, f = m.forward_features(tokens())
    assert y.shape == (3, 3) and f["layer1"].shape == (3, L, 16)


def test_sequence_families_refuse_image_inputs():
    with pytest.raises(NasStudentError, match="takes token ids .* or signals"):
        build(TRANSFORMER, ModelIO((1, 8, 8), 10))


def test_transformer_macs_equal_the_analytic_formula():
    d, f, n = 8, 16, 2  # d_model, FFN width (ratio 2), layers
    per_layer = L * (4 * d * d + 2 * d * f) + 2 * L * L * d  # projections + FFN + QK^T and AV
    expected = n * per_layer + L * d * V  # + head; embedding and positions are 0 MACs
    cost = profile(build(TRANSFORMER, LM), LM.example_input())
    assert cost.macs == expected == 14480
    params = V * d + n * (3 * d * d + 3 * d + d * d + d + d * f + f + f * d + d + 4 * d) + d * V + V
    assert cost.params == params


def test_lstm_macs_equal_the_analytic_formula():
    e, h = 6, 8
    expected = L * 4 * (e * h + h * h) + L * 4 * (h * h + h * h) + L * h * V
    cost = profile(build(LSTM, LM), LM.example_input())
    assert cost.macs == expected == 10640
    assert cost.by_op == {"linear": L * h * V, "lstm": expected - L * h * V}


def test_hybrid_builds_exactly_the_transformer_and_rnn_models():
    hy = {"family": "hybrid", "cell": "transformer", "layers": 2, "width": 8, "heads": 2,
          "ffn_ratio": 2.0, "pos_encoding": "sinusoidal", "norm_placement": "post"}
    a, b = profile(build(hy, LM), LM.example_input()), profile(build(TRANSFORMER, LM), LM.example_input())
    assert (a.macs, a.params) == (b.macs, b.params)
    gru = profile(build({"family": "hybrid", "cell": "gru", "layers": 1, "width": 8}, LM), LM.example_input())
    assert gru.macs == L * 3 * (8 * 8 + 8 * 8) + L * 8 * V
