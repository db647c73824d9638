"""Weight-only int8 for recurrent students: every weight matrix stored as int8 (symmetric, one
scale per output row), dequantised on each forward; the arithmetic stays float.

Why not PyTorch's dynamic int8 for GRU/LSTM students: measured on mnist1d GRU and LSTM
students (hidden 32), dynamic int8 (activations quantised on the fly at every time step)
agreed with the float student on only 97.9-98.2 % of the test split, and no ONNX file can
repeat its arithmetic (onnxruntime keeps GRU cells in float and quantises LSTM cells its own
way: 89-97 % agreement with PyTorch's). Weight-only int8 agreed with the float student on
99.2-99.5 %, stores the same int8 weights, and its ONNX file (int8 initialisers behind
``DequantizeLinear``, which onnxruntime's GRU and LSTM kernels accept) computes exactly what
PyTorch computes. It saves storage, not arithmetic: recurrent cells are latency-bound on their
sequential steps, and PyTorch's dynamic int8 GRU was slower than float (results/BENCHMARKS.md
section 9).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

QMAX = 127
#: the inputs of ONNX ops that hold weight matrices (W and R of recurrent cells, B of products)
WEIGHT_INPUTS = {"GRU": (1, 2), "LSTM": (1, 2), "RNN": (1, 2), "MatMul": (1,), "Gemm": (1,)}


def quantize_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``w`` (rows = outputs) as int8 and one float scale per row: ``w ~ q * scale[:, None...]``."""
    scale = w.detach().abs().amax(dim=tuple(range(1, w.dim()))) / QMAX
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    shaped = scale.reshape(-1, *[1] * (w.dim() - 1))
    return torch.clamp(torch.round(w.detach() / shaped), -QMAX, QMAX).to(torch.int8), scale.float()


class WeightOnlyInt8(nn.Module):
    """``model`` with its weight matrices (every parameter of 2 or more dimensions) held as int8
    plus per-row scales; biases, norms and buffers as they were. Its ``state_dict`` is what is
    stored (int8 at 1 byte); ``forward`` runs the float model on the dequantised weights."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        body = copy.deepcopy(model).cpu().eval()
        object.__setattr__(self, "_body", body)  # not a submodule: its float weights are not stored
        self.names: list[str] = []
        for i, (name, p) in enumerate(body.named_parameters()):
            self.names.append(name)
            if p.dim() >= 2:
                q, s = quantize_rows(p)
                self.register_buffer(f"q{i}", q)
                self.register_buffer(f"s{i}", s)
            else:
                self.register_buffer(f"f{i}", p.detach().clone())
        self.buffer_names = [n for n, _ in body.named_buffers()]
        for j, (_, b) in enumerate(body.named_buffers()):
            self.register_buffer(f"b{j}", b.detach().clone())

    def tensors(self) -> dict[str, torch.Tensor]:
        """The float model's parameters and buffers, weights dequantised from int8."""
        out = {}
        for i, name in enumerate(self.names):
            if hasattr(self, f"q{i}"):
                q, s = getattr(self, f"q{i}"), getattr(self, f"s{i}")
                out[name] = q.float() * s.reshape(-1, *[1] * (q.dim() - 1))
            else:
                out[name] = getattr(self, f"f{i}")
        out.update({name: getattr(self, f"b{j}") for j, name in enumerate(self.buffer_names)})
        return out

    def dequantized(self) -> nn.Module:
        """A float copy of the model whose weights are exactly the dequantised int8 ones."""
        model = copy.deepcopy(self._body)
        model.load_state_dict(self.tensors())
        return model.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self._body, self.tensors(), (x,))


def int8_initializers(onnx_file: Path) -> int:
    """Rewrite the float ONNX file of a :meth:`WeightOnlyInt8.dequantized` model in place: each
    weight matrix (:data:`WEIGHT_INPUTS`) whose values lie on an int8 grid of one scale per row (of either its first or
    its last axis: exported layers may transpose) becomes an int8 initialiser behind a
    ``DequantizeLinear``. The values found are exactly the int8 model's, so the file computes
    what it computes. Returns how many matrices were converted."""
    import onnx
    from onnx import helper, numpy_helper

    graph = onnx.load(str(onnx_file))
    weights = {node.input[i] for node in graph.graph.node for i in WEIGHT_INPUTS.get(node.op_type, ())
               if i < len(node.input)}
    nodes, done = [], 0
    for init in list(graph.graph.initializer):
        w = numpy_helper.to_array(init)
        if init.name not in weights or w.dtype != np.float32 or w.ndim < 2:
            continue
        found = _on_grid(w)
        if found is None:
            continue
        q, scale, axis = found
        name = init.name
        graph.graph.initializer.remove(init)
        graph.graph.initializer.extend([numpy_helper.from_array(q, f"{name}_int8"),
                                        numpy_helper.from_array(scale, f"{name}_scale")])
        if q.shape == w.shape:
            nodes.append(helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale"], [name], axis=axis))
        else:  # a recurrent cell's (directions, rows, inputs), quantised as (directions * rows, inputs)
            graph.graph.initializer.append(numpy_helper.from_array(np.array(w.shape, dtype=np.int64), f"{name}_shape"))
            nodes += [helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale"], [f"{name}_rows"], axis=0),
                      helper.make_node("Reshape", [f"{name}_rows", f"{name}_shape"], [name])]
        done += 1
    old = list(graph.graph.node)
    del graph.graph.node[:]
    graph.graph.node.extend(nodes + old)
    onnx.save(graph, str(onnx_file))
    return done


def _on_grid(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(int8 values, scales, axis) when ``w`` is int8 values times one scale per index of ``axis``
    (tried: each axis of a matrix; a recurrent cell's (directions, rows, inputs) as
    (directions * rows, inputs), returned in that shape)."""
    if w.ndim == 3:
        w = w.reshape(-1, w.shape[-1])
    if w.ndim != 2:
        return None
    for axis in (0, 1):
        other = tuple(a for a in range(w.ndim) if a != axis)
        scale = (np.abs(w).max(axis=other) / QMAX).astype(np.float32)
        scale = np.where(scale > 0, scale, np.float32(1.0))
        shaped = np.expand_dims(scale, other)
        q = np.round(w / shaped)
        if np.abs(q).max() <= QMAX and np.allclose(q * shaped, w, rtol=0, atol=1e-6 * float(np.abs(w).max() + 1e-12)):
            return q.astype(np.int8), scale, axis
    return None
