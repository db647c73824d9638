import pytest
import torch

from nas_student.errors import NasStudentError, UnknownNameError
from nas_student.families import ModelIO, build, family_names, get_family

CNN = {"family": "cnn", "stem_width": 8, "groups": 2, "residual": True, "norm": "batch",
       "activation": "silu", "stages": [{"depth": 2, "width": 8, "kernel": 3, "downsample": "none"},
                                        {"depth": 1, "width": 16, "kernel": 5, "downsample": "stride"},
                                        {"depth": 1, "width": 16, "kernel": 1, "downsample": "maxpool"}]}


def test_registry_names_and_unknown_family_lists_valid_names():
    assert {"cnn", "mlp"} <= set(family_names())
    with pytest.raises(UnknownNameError, match=r"unknown family 'cn'; valid: cnn, .*mlp.*did you mean 'cnn'"):
        get_family("cn")


def test_cnn_taps_have_the_expected_shapes():
    m = build(CNN, ModelIO((1, 8, 8), 10))
    y, f = m.forward_features(torch.randn(2, 1, 8, 8))
    assert y.shape == (2, 10)
    assert m.tap_names == ("stem", "stage1", "stage2", "stage3", "pooled")
    assert f["stem"].shape == (2, 8, 8, 8)
    assert f["stage1"].shape == (2, 8, 8, 8)
    assert f["stage2"].shape == (2, 16, 4, 4)
    assert f["stage3"].shape == (2, 16, 2, 2)
    assert f["pooled"].shape == (2, 16)


def test_cnn_fits_any_image_shape_and_class_count():
    m = build(CNN, ModelIO((3, 32, 24), 7))
    assert m(torch.randn(1, 3, 32, 24)).shape == (1, 7)


def test_mlp_fits_the_task_interface():
    arch = {"family": "mlp", "layers": [{"width": 32}, {"width": 16, "dropout": 0.1}], "norm": "layer"}
    m = build(arch, ModelIO((1, 8, 8), 10))
    y, f = m.forward_features(torch.randn(4, 1, 8, 8))
    assert y.shape == (4, 10) and f["layer2"].shape == (4, 16) and f["input"].shape == (4, 64)


@pytest.mark.parametrize("bad,needle", [
    ({**CNN, "groups": 3}, "groups=3 must divide"),
    ({**CNN, "stem_width": 0}, "stem_width"),
    ({**CNN, "colour": 1}, "colour"),
    ({**CNN, "stages": []}, "stages"),
])
def test_invalid_architectures_are_refused_with_the_key(bad, needle):
    with pytest.raises(NasStudentError, match=needle):
        build(bad, ModelIO((1, 8, 8), 10))
