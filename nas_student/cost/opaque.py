"""Pricing models that cannot be traced (TorchScript teachers): count at the dispatcher.

fvcore's tracer cannot enter a ``ScriptModule``. Every aten op a TorchScript model runs still
passes through the dispatcher, so a ``TorchDispatchMode`` sees it with real shapes. MACs come
from torch's own per-op formulas (``torch.utils.flop_counter``: FLOPs / 2); ops that are free or
not MACs (``handlers.FREE_OPS``, ``handlers.OTHER_OPS``) are accepted; any other op is refused
by name, never silently counted as 0. No per-module breakdown (the model is opaque).
"""

from __future__ import annotations

from collections import Counter

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from nas_student.cost.handlers import FREE_OPS, OTHER_OPS
from nas_student.cost.types import Cost, CostError, as_inputs, count_params

_OK = set(FREE_OPS) | set(OTHER_OPS) | {"_to_copy", "copy_", "t", "addmm", "mm", "bmm", "baddbmm",
                                        "convolution", "_convolution", "native_batch_norm",
                                        "_native_batch_norm_legit_no_training", "native_layer_norm",
                                        "max_pool2d_with_indices", "_adaptive_avg_pool2d", "mean",
                                        "detach", "alias", "_unsafe_view", "lift_fresh", "threshold_backward",
                                        "cudnn_batch_norm", "mkldnn_convolution", "linear", "matmul"}


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.macs: Counter[str] = Counter()
        self.other: Counter[str] = Counter()
        self.unpriced: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        name = packet.__name__.rstrip("_") if packet.__name__ not in ("__and__", "__or__") else packet.__name__
        if packet in flop_registry:
            flops = flop_registry[packet](*args, **kwargs, out_val=out)  # shapes taken inside
            self.macs[name] += int(flops) // 2
        elif name in OTHER_OPS or name.lstrip("_") in OTHER_OPS or "norm" in name or "pool" in name:
            self.other[name] += out.numel() if isinstance(out, Tensor) else 0
        elif name not in _OK and name.lstrip("_") not in _OK:
            self.unpriced.add(f"aten::{packet.__name__}")
        return out


def profile_opaque(model: nn.Module, example_input: Tensor | tuple[Tensor, ...]) -> Cost:
    """MACs and params of a model fvcore cannot trace (e.g. TorchScript)."""
    inputs = as_inputs(example_input)
    was = model.training
    model.eval()
    rec = _Recorder()
    try:
        with torch.no_grad(), rec:
            model(*inputs)
    finally:
        model.train(was)
    if rec.unpriced:
        raise CostError("cannot price these ops of an untraceable (TorchScript) model: "
                        + ", ".join(sorted(rec.unpriced)))
    return Cost(macs=sum(rec.macs.values()), params=count_params(model), by_module={},
                by_op=dict(rec.macs), other_ops=dict(rec.other))
