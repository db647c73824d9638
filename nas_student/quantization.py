"""int8 students: which int8 path a family has, quantization-aware training's model, the int8
model, its stored size, and an int8 ONNX file checked against PyTorch's int8 model.

All with PyTorch's own tooling (``torch.ao.quantization``, FX graph mode; the x86 backend):

- **static** (``cnn``, ``cnn1d``, ``mlp``): int8 weights (per channel) and activations (per
  tensor). Quantization-aware training (Jacob et al. 2018, arXiv:1712.05877) runs the student
  through fake-quantised weights and activations, so distillation (Hinton et al. 2015) trains
  the rounding it will ship with; :func:`post_training_int8` is the same conversion calibrated
  on data without training (the baseline QAT must beat).
- **weight-only** (``rnn``): every weight matrix int8 (one scale per output row), the
  arithmetic float (:mod:`nas_student.int8_weight_only`, which says why: dynamic int8 of
  recurrent cells lost 2 % agreement with the float student and cannot be repeated by an
  ONNX file). The distilled float student is converted.
- **dynamic** (``transformer``, ``hybrid``): int8 weights of Linear/GRU/LSTM layers, activations
  quantised on the fly. PyTorch has no static int8 kernels for these, so there is no
  quantization-aware training for them: the distilled float student is converted.
- a family registered by a user has no int8 path until it is listed here: one line.

The ONNX file of a static student is exported from its int8 model (int8 weights,
QuantizeLinear/DequantizeLinear around each layer, which onnxruntime runs as int8 kernels); a
weight-only student's holds its int8 weights behind DequantizeLinear; dynamic students have no
ONNX int8 file (see :func:`require_onnx_int8`).
"""

from __future__ import annotations

import copy
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Literal

import torch
from torch import nn

from nas_student.errors import NasStudentError
from nas_student.families.base import ModelIO

Path8 = Literal["static", "weight-only", "dynamic"]
STATIC = ("cnn", "cnn1d", "mlp")
WEIGHT_ONLY = ("rnn",)
DYNAMIC = ("transformer", "hybrid")
BACKEND = "x86"
#: the agreement an int8 ONNX file must reach with PyTorch's int8 model (top-1, test split)
MIN_AGREEMENT = 0.99


def int8_path(arch: dict[str, Any]) -> Path8:
    """``"static"``, ``"weight-only"`` or ``"dynamic"`` for a student of this architecture; a
    family without an int8 path is refused in one line."""
    family = arch.get("family")
    if family in STATIC:
        return "static"
    if family in WEIGHT_ONLY:
        return "weight-only"
    if family in DYNAMIC:
        return "dynamic"
    raise NasStudentError(
        f"family {family!r} has no int8 path: static int8 (with quantization-aware training) covers "
        f"{', '.join(STATIC)}, weight-only int8 {', '.join(WEIGHT_ONLY)}, dynamic int8 {', '.join(DYNAMIC)}; "
        "train this student in float, or quantize it yourself")


@contextmanager
def _quiet() -> Iterator[None]:
    # torch.ao.quantization warns on import and use that it moves to torchao; it still works
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _qconfig(qat: bool):  # noqa: ANN202 - a torch.ao QConfigMapping
    from torch.ao.quantization import get_default_qat_qconfig_mapping, get_default_qconfig_mapping

    # version 0: FakeQuantize modules (not the fused observer op), which export to ONNX as
    # QuantizeLinear/DequantizeLinear
    return get_default_qat_qconfig_mapping(BACKEND, version=0) if qat else get_default_qconfig_mapping(BACKEND)


def _example(io: ModelIO, batch: int = 2) -> torch.Tensor:
    return torch.zeros(batch, *io.input_shape)


def quantization_aware(model: nn.Module, io: ModelIO) -> nn.Module:
    """A copy of ``model`` (a float student of a static family) that trains through
    fake-quantised weights and activations; :func:`int8_model` converts it. The copy has the
    same structure every time, so its ``state_dict`` loads into another call's copy (resume)."""
    torch.backends.quantized.engine = BACKEND
    with _quiet():
        from torch.ao.quantization.quantize_fx import prepare_qat_fx

        try:
            return prepare_qat_fx(copy.deepcopy(model).cpu().train(), _qconfig(qat=True), (_example(io),))
        except Exception as e:  # FX cannot trace it: say so, do not crash
            raise NasStudentError(f"cannot prepare this student for int8 training: {type(e).__name__}: "
                                  f"{str(e).splitlines()[0] if str(e) else ''}") from None


def int8_model(trained: nn.Module, path: Path8) -> nn.Module:
    """The int8 model (eval mode, CPU): ``trained`` is the quantization-aware model for
    ``static``, the float student otherwise. ``trained`` is left as it was."""
    if path == "weight-only":
        from nas_student.int8_weight_only import WeightOnlyInt8

        return WeightOnlyInt8(trained)
    torch.backends.quantized.engine = BACKEND
    with _quiet():
        work = copy.deepcopy(trained).cpu().eval()
        if path == "static":
            from torch.ao.quantization.quantize_fx import convert_fx

            return convert_fx(work)
        return torch.ao.quantization.quantize_dynamic(work, {nn.Linear, nn.GRU, nn.LSTM}, dtype=torch.qint8)


def post_training_int8(model: nn.Module, io: ModelIO, path: Path8, calibration: torch.Tensor,
                       batch_size: int = 256) -> nn.Module:
    """``model`` (float) converted to int8 without training: static students calibrated on
    ``calibration`` inputs (activation ranges observed in eval mode), the others as they are."""
    if path != "static":
        return int8_model(model, path)
    torch.backends.quantized.engine = BACKEND
    with _quiet():
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        prepared = prepare_fx(copy.deepcopy(model).cpu().eval(), _qconfig(qat=False), (_example(io),))
        with torch.no_grad():
            for i in range(0, len(calibration), batch_size):
                prepared(calibration[i:i + batch_size].cpu())
        return convert_fx(prepared)


def int8_twin(model: nn.Module, io: ModelIO, path: Path8) -> nn.Module:
    """``model``'s int8 version as it stands, for pricing (size, latency): static students are
    calibrated on one random batch, so the weights are int8 but the accuracy means nothing."""
    if path == "static":
        return post_training_int8(model, io, path, torch.randn(8, *io.input_shape))
    return int8_model(model, path)  # weights as they are: the same size and kernels as trained ones


def stored_bytes(model: nn.Module) -> int:
    """Bytes of the model's weights as stored: int8 tensors at 1 byte plus their scales and zero
    points, float tensors at 4 (:func:`nas_student.cost.latency.model_size_bytes`)."""
    from nas_student.cost.latency import model_size_bytes

    return model_size_bytes(model, "fp32")


def require_onnx_int8(arch: dict[str, Any]) -> None:
    """Refuse in one line a student that has no int8 ONNX file: dynamic students (onnxruntime's
    own dynamic int8 does not repeat PyTorch's arithmetic: on recurrent students it agreed with
    PyTorch's on only 89-97 % of inputs, short of :data:`MIN_AGREEMENT`) and families without an
    int8 path."""
    if int8_path(arch) == "dynamic":
        raise NasStudentError(
            f"an int8 ONNX file is written for {', '.join(STATIC + WEIGHT_ONLY)} students; a {arch.get('family')} "
            "student's int8 (dynamic) runs in PyTorch: `train --quantize int8` reports it")


def export_onnx(int8: nn.Module, io: ModelIO, out: Path) -> Path:
    """Write the int8 ONNX file of a static or weight-only student (``int8``: :func:`int8_model`'s
    result) to ``out``. Static: int8 weights with QuantizeLinear/DequantizeLinear around each
    layer, which onnxruntime runs as int8 kernels. Weight-only: its int8 weights behind
    DequantizeLinear, float arithmetic. Input ``input``, output ``logits``, batch dimension free."""
    from nas_student.int8_weight_only import WeightOnlyInt8, int8_initializers

    weight_only = isinstance(int8, WeightOnlyInt8)
    model = int8.dequantized() if weight_only else copy.deepcopy(int8).cpu().eval()
    with _quiet(), torch.no_grad():
        torch.onnx.export(model, (io.example_input(),), str(out), dynamo=False,
                          opset_version=17, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    if weight_only and not int8_initializers(out):
        raise NasStudentError("the weight-only int8 ONNX file holds no int8 weights: the export changed them")
    return out


def onnx_agreement(onnx_file: Path, int8: nn.Module, x: torch.Tensor, batch_size: int = 512) -> float:
    """Top-1 agreement between the ONNX file (onnxruntime) and PyTorch's int8 model on ``x``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    same = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].cpu()
            got = sess.run(None, {"input": xb.numpy()})[0].argmax(-1)
            same += int((torch.from_numpy(got) == int8(xb).argmax(-1)).sum())
    return same / len(x)
