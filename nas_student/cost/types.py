"""The values the cost modules share: a model's :class:`Cost`, its error, its inputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from torch import Tensor, nn

from nas_student.errors import NasStudentError


class CostError(NasStudentError):
    """A model's cost cannot be counted (an op we cannot price, a failed trace, bad input)."""


@dataclass(frozen=True)
class Cost:
    """The cost of one forward pass on the example input.

    ``by_module`` maps each top-level child (``model.named_children()``) to the MACs run
    inside it; MACs run directly in the root ``forward`` (functional calls) are under
    ``"(root)"``, present only when non-zero, so the values always sum to ``macs``.
    ``by_op`` maps op names ("conv", "linear", "matmul", "lstm", "attention", ...) to
    MACs and also sums to ``macs``; its keys name the kernel actually traced (a fused
    attention is "attention", the unfused one "bmm" or "scaled_dot_product_attention"),
    so compare ``macs`` across paths, not ``by_op``. ``other_ops`` maps non-MAC ops ("relu", "batch_norm",
    "add", ...) to the number of elements they output: a rough size of memory-bound work.
    """

    macs: int
    params: int
    by_module: dict[str, int] = field(default_factory=dict)
    by_op: dict[str, int] = field(default_factory=dict)
    other_ops: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (ints and str-keyed dicts only)."""
        return asdict(self)


def as_inputs(example_input: Tensor | tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """A model's example input as a tuple of tensors (one tensor or a tuple/list of them)."""
    if isinstance(example_input, Tensor):
        return (example_input,)
    if isinstance(example_input, (tuple, list)) and all(
        isinstance(x, Tensor) for x in example_input
    ):
        return tuple(example_input)
    raise CostError(
        f"example_input must be a Tensor or a tuple of Tensors, got {type(example_input).__name__}"
    )


def count_params(model: nn.Module) -> int:
    """Sum of numel over ``model.parameters()`` (which yields a shared parameter once)."""
    return sum(p.numel() for p in model.parameters())
