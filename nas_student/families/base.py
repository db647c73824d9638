"""What every model family provides, and what every built model exposes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn


@dataclass(frozen=True)
class ModelIO:
    """The interface a model must fit, derived from the task: input shape (no batch) and outputs."""

    input_shape: tuple[int, ...]
    num_outputs: int

    def example_input(self, batch: int = 1) -> torch.Tensor:
        return torch.zeros(batch, *self.input_shape)


class ArchModel(BaseModel):
    """Base of each family's architecture schema: strict, unknown keys rejected."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class TappedModel(nn.Module):
    """A model whose intermediate features are reachable by name (for feature distillation).

    Subclasses implement :meth:`forward_features`; ``forward`` returns only the output.
    """

    tap_names: tuple[str, ...] = ()

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]


class Family:
    """A model family: a name, an architecture schema and a builder. Register with
    :func:`nas_student.families.register`."""

    name: ClassVar[str]
    arch_model: ClassVar[type[ArchModel]]

    def build(self, arch: dict[str, Any], io: ModelIO) -> TappedModel:
        raise NotImplementedError

    def parse(self, arch: dict[str, Any]) -> ArchModel:
        return self.arch_model.model_validate(arch)

    def check_arch(self, arch: dict[str, Any]) -> tuple[tuple[Any, ...], str] | None:
        """None if ``arch`` is valid for this family, else (key path, rule) of the first error."""
        try:
            self.parse(arch)
        except ValidationError as err:
            e = err.errors()[0]
            rule = {"extra_forbidden": "unknown parameter",
                    "missing": "required parameter is missing"}.get(e["type"], e["msg"].removeprefix("Value error, "))
            if e["type"] not in ("missing",) and not isinstance(e.get("input"), (dict, list)):
                rule += f" (got {e.get('input')!r})"
            return tuple(e["loc"]), rule
        return None


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "gelu": nn.GELU, "silu": nn.SiLU,
    "hardswish": nn.Hardswish, "tanh": nn.Tanh,
}


def describe(arch: dict[str, Any]) -> str:
    """A one-line human summary of an architecture (families may register a better one)."""
    fam = arch.get("family", "?")
    if fam == "cnn":
        stages = ",".join(
            f"{s['depth']}x{s['width']}k{s.get('kernel', 3)}"
            + {"stride": "/s2", "maxpool": "/mp", "avgpool": "/ap"}.get(s.get("downsample", "none"), "")
            for s in arch.get("stages", []))
        extras = [arch.get("norm", "batch"), arch.get("activation", "relu")]
        if arch.get("residual"):
            extras.append("res")
        if arch.get("groups", 1) > 1:
            extras.append(f"g{arch['groups']}")
        return f"cnn stem{arch.get('stem_width')} [{stages}] {' '.join(extras)}"
    if fam == "mlp":
        widths = "-".join(str(layer["width"]) for layer in arch.get("layers", [])) or "linear"
        return f"mlp [{widths}] {arch.get('norm', 'none')} {arch.get('activation', 'relu')}"
    body = {k: v for k, v in arch.items() if k != "family"}
    return f"{fam} {body}"
