"""Wall-clock latency and stored size of a model."""

from __future__ import annotations

import copy
import statistics
import time
import warnings
from typing import Any, Literal

import torch
from torch import Tensor, nn

from nas_student.cost.types import CostError, as_inputs


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def measure_latency(
    model: nn.Module,
    example_input: Tensor | tuple[Tensor, ...],
    *,
    warmup: int = 5,
    repeats: int = 20,
    threads: int = 1,
    device: str | torch.device | None = None,
) -> float:
    """Median milliseconds of one ``model(*example_input)`` in eval mode under no_grad.

    ``device`` defaults to the model's device; if another device is given, a copy of the
    model runs there (the caller's model is not moved). Inputs are moved to the device.
    ``threads`` is applied with ``torch.set_num_threads`` (it matters on CPU); every
    module's training flag and the thread count are restored afterwards. On CUDA each
    timed call is bracketed by ``torch.cuda.synchronize``.
    """
    if warmup < 0 or repeats < 1 or threads < 1:
        raise CostError(
            f"need warmup >= 0, repeats >= 1, threads >= 1; got {warmup}, {repeats}, {threads}"
        )
    inputs = as_inputs(example_input)
    target = torch.device(device) if device is not None else _model_device(model)
    run = model
    if target != _model_device(model):
        run = copy.deepcopy(model).to(target)
    inputs = tuple(x.to(target) for x in inputs)
    sync = torch.cuda.synchronize if target.type == "cuda" else (lambda: None)

    flags = {m: m.training for m in run.modules()}
    old_threads = torch.get_num_threads()
    times: list[float] = []
    try:
        torch.set_num_threads(threads)
        run.eval()
        with torch.no_grad():
            for _ in range(warmup):
                run(*inputs)
            sync()
            for _ in range(repeats):
                start = time.perf_counter()
                run(*inputs)
                sync()
                times.append((time.perf_counter() - start) * 1000.0)
    finally:
        torch.set_num_threads(old_threads)
        for m, flag in flags.items():
            m.training = flag
    return statistics.median(times)


_QUANTISABLE = (nn.Linear, nn.LSTM, nn.GRU)


def _tensor_bytes(obj: Any, seen: dict[tuple, Tensor], fp32: bool) -> int:
    """Bytes of every tensor reachable from a state_dict value (tuples and packed params
    included); a storage reached twice (shared weights) counts once. A quantised tensor
    adds 8 bytes (fp32 scale + int32 zero point) per tensor or per channel."""
    if isinstance(obj, Tensor):
        # Keyed by storage, not id(): packed params hand out fresh tensor objects (whose
        # ids get reused once freed) that share storage with tensors already counted.
        key = (obj.data_ptr(), obj.numel(), str(obj.dtype)) if obj.numel() else (id(obj),)
        if key in seen:
            return 0
        seen[key] = obj  # keeps obj alive so its storage is not reused
        if obj.is_quantized:
            per_channel = obj.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
            n_qparams = obj.q_per_channel_scales().numel() if per_channel else 1
            return obj.numel() * obj.element_size() + 8 * n_qparams
        size = 4 if fp32 and obj.is_floating_point() else obj.element_size()
        return obj.numel() * size
    if isinstance(obj, (tuple, list)):
        return sum(_tensor_bytes(x, seen, fp32) for x in obj)
    if isinstance(obj, torch.ScriptObject) and hasattr(obj, "__getstate__"):
        return _tensor_bytes(obj.__getstate__(), seen, fp32)
    return 0


def _quantisable(module: nn.Module) -> bool:
    # torch.ao's dynamic LSTM does not support proj_size.
    return isinstance(module, _QUANTISABLE) and getattr(module, "proj_size", 0) == 0


def model_size_bytes(model: nn.Module, dtype: Literal["fp32", "int8"] = "fp32") -> int:
    """Bytes of the model's state_dict tensors when stored as ``dtype``.

    fp32: every floating tensor (parameters and buffers) at 4 bytes, integer buffers at
    their own size. int8: a CPU fp32 copy after ``torch.ao.quantization.quantize_dynamic``
    of its Linear/LSTM/GRU modules (qint8 weights at 1 byte plus scale/zero point;
    biases and all other tensors stay fp32). Without such modules the two are equal.
    """
    if dtype not in ("fp32", "int8"):
        raise CostError(f"dtype must be 'fp32' or 'int8', got {dtype!r}")
    if dtype == "fp32":
        state: Any = list(model.state_dict(keep_vars=True).values())
        return _tensor_bytes(state, {}, fp32=True)
    # Wrapped so that a quantisable root module (a bare nn.Linear) is swapped too.
    spec = {f"0.{n}".rstrip(".") for n, m in model.named_modules() if _quantisable(m)}
    work: nn.Module = nn.Sequential(copy.deepcopy(model).cpu().float().eval())
    if spec:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            work = torch.ao.quantization.quantize_dynamic(
                work,
                {name: torch.ao.quantization.default_dynamic_qconfig for name in spec},
                dtype=torch.qint8,
            )
    state = list(work.state_dict(keep_vars=True).values())
    return _tensor_bytes(state, {}, fp32=True)
