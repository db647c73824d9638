"""profile(): MACs, params and a breakdown of one forward pass, via fvcore's tracer.

Conventions (the ones torchvision and fvcore publish numbers in):

* one fused multiply-add = 1 MAC; biases, residual adds, norms, activations and pooling
  are not MACs (they are in ``other_ops``, counted as output elements);
* MACs are for the example input as given (callers pass batch 1);
* the model is traced in eval mode under ``torch.no_grad()`` by default, so the result
  never depends on the mode the caller left the model in; ``mode="train"`` traces the
  training path instead (same MACs; it exists to check exactly that). Either way every
  module's training flag, the buffers (BatchNorm running stats) and the RNG state are
  restored afterwards.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from typing import Literal

import torch
from torch import Tensor, nn

with warnings.catch_warnings():  # fvcore.nn calls the deprecated torch.jit.script on import
    warnings.simplefilter("ignore", DeprecationWarning)
    from fvcore.nn import FlopCountAnalysis

from nas_student.cost.handlers import ShapeUnknown, build_handles
from nas_student.cost.types import Cost, CostError, as_inputs, count_params

ROOT = "(root)"


def _rng_devices(model: nn.Module) -> list[int]:
    return sorted(
        {t.device.index or 0 for t in model.parameters() if t.device.type == "cuda"}
    )


def _analyse(model: nn.Module, inputs: tuple[Tensor, ...]) -> FlopCountAnalysis:
    handles, ignored = build_handles()
    analysis = (
        FlopCountAnalysis(model, inputs)
        .clear_op_handles()
        .set_op_handle(**handles)
        .set_op_handle(**{op: None for op in ignored})
        .unsupported_ops_warnings(False)
        .uncalled_modules_warnings(False)
        .tracer_warnings("none")
    )
    fv_logger = logging.getLogger("fvcore")
    level = fv_logger.level
    fv_logger.setLevel(logging.ERROR)
    try:
        analysis.total()  # runs the trace once; results are cached
    except ShapeUnknown as exc:
        raise CostError(f"cannot count {type(model).__name__}: {exc}") from exc
    except CostError:
        raise
    except Exception as exc:  # tracing runs user code: report it as one line
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CostError(
            f"tracing {type(model).__name__} failed: {type(exc).__name__}: {msg}"
        ) from exc
    finally:
        fv_logger.setLevel(level)
    return analysis


def _split(counter: Counter) -> tuple[dict[str, int], dict[str, int]]:
    macs: dict[str, int] = {}
    other: dict[str, int] = {}
    for key, value in counter.items():
        kind, _, name = key.partition(":")
        target = macs if kind == "mac" else other
        target[name] = target.get(name, 0) + int(value)
    return macs, other


def profile(
    model: nn.Module,
    example_input: Tensor | tuple[Tensor, ...],
    *,
    mode: Literal["eval", "train"] = "eval",
) -> Cost:
    """Count MACs and params of ``model(*example_input)``; see the module docstring.

    Raises CostError naming every op that may carry compute but has no price (e.g.
    ``aten::fft_fft``), instead of silently counting it as 0.
    """
    if mode not in ("eval", "train"):
        raise CostError(f"mode must be 'eval' or 'train', got {mode!r}")
    if any(isinstance(m, torch.jit.ScriptModule) for m in model.modules()):
        from nas_student.cost.opaque import (
            profile_opaque,  # fvcore cannot trace into TorchScript
        )

        return profile_opaque(model, example_input)
    inputs = as_inputs(example_input)
    flags = {m: m.training for m in model.modules()}
    saved = {k: b.detach().clone() for k, b in model.named_buffers()} if mode == "train" else {}
    try:
        model.train(mode == "train")
        with torch.no_grad(), torch.random.fork_rng(devices=_rng_devices(model)):
            analysis = _analyse(model, inputs)
            unsupported = analysis.unsupported_ops()
            per_module = analysis.by_module_and_operator()
    finally:
        for m, flag in flags.items():
            m.training = flag
        if saved:
            with torch.no_grad():
                for k, b in model.named_buffers():
                    if k in saved:
                        b.copy_(saved[k])
    if unsupported:
        ops = ", ".join(f"{op} (x{n})" for op, n in sorted(unsupported.items()))
        raise CostError(f"cannot price op(s) in {type(model).__name__}: {ops}")

    by_op, other_ops = _split(per_module[""])
    macs = sum(by_op.values())
    by_module: dict[str, int] = {}
    seen: set[int] = set()
    for name, child in model.named_children():
        if id(child) in seen:
            continue
        seen.add(id(child))
        canonical = analysis.canonical_module_name(name)
        by_module[name] = sum(_split(per_module.get(canonical, Counter()))[0].values())
    own = macs - sum(by_module.values())
    if own:
        by_module[ROOT] = own
    return Cost(
        macs=macs,
        params=count_params(model),
        by_module=by_module,
        by_op=dict(sorted(by_op.items())),
        other_ops=dict(sorted(other_ops.items())),
    )


def macs_by_path(model: nn.Module, example_input: Tensor | tuple[Tensor, ...]) -> dict[str, int]:
    """MACs run inside every named sub-module, nested ones too (``"layers.0.attn"``), in eval
    mode: what :func:`profile` counts, per module (for layer tables)."""
    inputs = as_inputs(example_input)
    flags = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=_rng_devices(model)):
            analysis = _analyse(model, inputs)
            per_module = analysis.by_module_and_operator()
    finally:
        for m, flag in flags.items():
            m.training = flag
    return {name: sum(_split(per_module.get(analysis.canonical_module_name(name), Counter()))[0].values())
            for name, _ in model.named_modules() if name}
