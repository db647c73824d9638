"""1-D CNN students (cnn1d), inverted residual blocks, and sequence families on signals: their
shapes, their exact MACs against hand-written formulas, and the one-line refusals."""

import pytest
import torch

from nas_student.cost import profile
from nas_student.errors import NasStudentError
from nas_student.families import ModelIO, build

SIGNAL = ModelIO((1, 40), 10)
FLAT = ModelIO((40,), 10)
IMAGE = ModelIO((1, 8, 8), 10)


def cnn1d(*stages, stem=8, stem_kernel=3, residual=False, norm="batch", groups=1):
    return {"family": "cnn1d", "stem_width": stem, "stem_kernel": stem_kernel, "stages": list(stages),
            "residual": residual, "norm": norm, "groups": groups}


def macs(arch, io=SIGNAL):
    return profile(build(arch, io), io.example_input()).macs


def test_conv_blocks_macs_follow_the_formula():
    # stem: L*k*c_in*c_out; a conv block P*k*c_in*c_out/groups; head c*classes
    arch = cnn1d({"depth": 2, "width": 16, "kernel": 5, "downsample": "stride"}, stem=8, groups=2)
    expected = 40 * 3 * 1 * 8 + 20 * 5 * 8 * 16 // 2 + 20 * 5 * 16 * 16 // 2 + 16 * 10
    assert macs(arch) == expected == 960 + 6_400 + 12_800 + 160


def test_inverted_block_macs_follow_the_formula():
    # expand P_in*c_in*h, depthwise P*k*h, project P*h*c_out (h = expansion*c_in)
    stage = {"depth": 1, "width": 12, "kernel": 7, "downsample": "stride", "block": "inverted", "expansion": 4}
    h = 4 * 8
    expected = 40 * 3 * 8 + (40 * 8 * h + 20 * 7 * h + 20 * h * 12) + 12 * 10
    assert macs(cnn1d(stage)) == expected
    # expansion 1 leaves the expansion out: a depthwise-separable block
    sep = {**stage, "expansion": 1}
    assert macs(cnn1d(sep)) == 40 * 3 * 8 + 20 * 7 * 8 + 20 * 8 * 12 + 12 * 10


def test_pooling_and_projection_shortcut_macs():
    stage = {"depth": 1, "width": 16, "kernel": 3, "downsample": "maxpool"}
    # pooling first (no MACs), then the conv at L=20, and a 1x1 projection shortcut (8 -> 16)
    expected = 40 * 3 * 8 + 20 * 3 * 8 * 16 + 20 * 8 * 16 + 16 * 10
    assert macs(cnn1d(stage, residual=True)) == expected


def test_two_d_inverted_block_macs():
    stage = {"depth": 1, "width": 8, "kernel": 3, "downsample": "none", "block": "inverted", "expansion": 2}
    arch = {**cnn1d(stage, stem=4), "family": "cnn"}
    h, p = 8, 64  # 8x8 positions
    expected = p * 9 * 1 * 4 + (p * 4 * h + p * 9 * h + p * h * 8) + 8 * 10
    assert profile(build(arch, IMAGE), IMAGE.example_input()).macs == expected


def test_flat_inputs_are_one_channel_signals_and_taps_are_position_major():
    arch = cnn1d({"depth": 1, "width": 16, "downsample": "stride"})
    flat, chan = build(arch, FLAT), build(arch, SIGNAL)
    x = torch.randn(4, 40)
    y, feats = flat.forward_features(x)
    assert y.shape == (4, 10) and feats["stage1"].shape == (4, 20, 16) and feats["pooled"].shape == (4, 16)
    chan.load_state_dict(flat.state_dict())
    flat.eval(), chan.eval()
    assert torch.allclose(flat(x), chan(x[:, None]))
    assert macs(arch, FLAT) == macs(arch, SIGNAL)


@pytest.mark.parametrize("family", ["rnn", "transformer", "hybrid"])
def test_sequence_families_read_signals_step_by_step(family):
    arch = {"rnn": {"family": "rnn", "cell": "gru", "layers": 1, "hidden": 6, "embed_dim": 4},
            "transformer": {"family": "transformer", "layers": 1, "d_model": 8, "heads": 2, "ffn_ratio": 2.0},
            "hybrid": {"family": "hybrid", "cell": "lstm", "layers": 1, "width": 8}}[family]
    m = build(arch, ModelIO((3, 40), 10))
    y, feats = m.forward_features(torch.randn(2, 3, 40))
    assert y.shape == (2, 10) and feats["embed"].shape[:2] == (2, 40)


def test_signal_projection_macs_for_rnn_and_transformer():
    # GRU: per step 3*(e*h + h*h); the per-step projection L*C*e; the head h*classes
    gru = {"family": "rnn", "cell": "gru", "layers": 1, "hidden": 6, "embed_dim": 4}
    assert macs(gru) == 40 * 3 * (4 * 6 + 6 * 6) + 40 * 1 * 4 + 6 * 10
    d, f, L = 8, 16, 40
    tr = {"family": "transformer", "layers": 1, "d_model": d, "heads": 2, "ffn_ratio": 2.0}
    assert macs(tr) == L * 1 * d + L * (4 * d * d + 2 * d * f) + 2 * L * L * d + d * 10


@pytest.mark.parametrize("arch,io,needle", [
    (cnn1d({"depth": 1, "width": 8}), IMAGE, "family 'cnn1d' takes (channels, length) signals"),
    ({**cnn1d({"depth": 1, "width": 8}), "family": "cnn"}, SIGNAL, "family 'cnn' takes (channels, height, width)"),
    ({"family": "rnn", "layers": 1, "hidden": 4}, IMAGE, "takes token ids (length,) or signals"),
    (cnn1d({"depth": 1, "width": 8}), ModelIO((5,), 3, input_dtype="int64", vocab_size=9), "token ids"),
    (cnn1d({"depth": 1, "width": 8, "block": "conv", "expansion": 4}), SIGNAL, "expansion applies to inverted"),
])
def test_refusals_are_one_line(arch, io, needle):
    with pytest.raises(NasStudentError) as e:
        build(arch, io)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_downsampling_past_the_length_is_refused():
    stages = [{"depth": 1, "width": 8, "downsample": "stride"}] * 4  # 5 -> 3 -> 2 -> 1 -> (1)
    with pytest.raises(NasStudentError, match=r"stages\[3\] downsamples a feature map that is already 1 wide"):
        build(cnn1d(*stages), ModelIO((1, 5), 3))
    build(cnn1d(*stages[:3]), ModelIO((1, 5), 3))  # three fit


def test_feature_hints_between_1d_cnns_of_different_lengths():
    from nas_student.distill.feature_losses import Hint

    teacher = build(cnn1d({"depth": 1, "width": 32, "downsample": "stride"}), SIGNAL)
    student = build(cnn1d({"depth": 1, "width": 8, "downsample": "none"}), SIGNAL)
    x = torch.randn(3, 1, 40)
    f_t = teacher.forward_features(x)[1]["stage1"]  # (3, 20, 32)
    f_s = student.forward_features(x)[1]["stage1"]  # (3, 40, 8)
    hint = Hint(f_s.shape, f_t.shape)
    loss = hint(f_s, f_t)
    pooled = torch.nn.functional.avg_pool1d(hint.proj(f_s).transpose(1, 2), 2).transpose(1, 2)
    assert torch.allclose(loss, ((pooled - f_t) ** 2).mean())
