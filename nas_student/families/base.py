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
    #: "float32" for real-valued inputs; "int64" for token ids (then ``vocab_size`` is needed).
    input_dtype: str = "float32"
    #: token inputs: ids are in ``range(vocab_size)``.
    vocab_size: int | None = None
    #: outputs per position, ``(B, L, num_outputs)``, instead of one per example ``(B, num_outputs)``.
    per_token: bool = False
    #: the output at position t may depend only on inputs at positions <= t (language modelling).
    causal: bool = False
    #: multi-task: the outputs are one block per task, in order (sizes summing to
    #: ``num_outputs``), each block a task's logits: the last layer is then one linear head per
    #: task on the shared trunk, and labels are ``(N, tasks)``. Empty: one task.
    heads: tuple[int, ...] = ()
    #: the tasks' names, one per head (reports say ``accuracy_<name>``)
    head_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.input_dtype not in ("float32", "int64"):
            raise ValueError(f"input_dtype must be 'float32' or 'int64', got {self.input_dtype!r}")
        if self.tokens and (self.vocab_size is None or self.vocab_size < 1):
            raise ValueError("token inputs (input_dtype='int64') need vocab_size >= 1")
        if self.heads and (sum(self.heads) != self.num_outputs or min(self.heads) < 1 or self.per_token):
            raise ValueError(f"heads {list(self.heads)} must be sizes >= 1 summing to num_outputs "
                             f"{self.num_outputs}, on one output per example")
        if self.head_names and len(self.head_names) != len(self.heads):
            raise ValueError(f"{len(self.head_names)} head names for {len(self.heads)} heads")

    @property
    def tokens(self) -> bool:
        """True when the input is a LongTensor of token ids, shape ``(B, *input_shape)``."""
        return self.input_dtype == "int64"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelIO":
        """Inverse of ``dataclasses.asdict`` (as stored in a study's ``io`` attribute)."""
        return cls(**{**d, "input_shape": tuple(d["input_shape"]), "heads": tuple(d.get("heads", ())),
                      "head_names": tuple(d.get("head_names", ()))})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (what a study and an export store); one task's store no ``heads``."""
        d: dict[str, Any] = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["input_shape"] = list(self.input_shape)
        if not self.heads:
            d.pop("heads")
            d.pop("head_names")
        else:
            d["heads"], d["head_names"] = list(self.heads), list(self.head_names)
        return d

    def example_input(self, batch: int = 1) -> torch.Tensor:
        if self.tokens:
            return torch.zeros(batch, *self.input_shape, dtype=torch.long)
        return torch.zeros(batch, *self.input_shape)


def output_heads(model: nn.Module) -> tuple[int, ...]:
    """The sizes of a multi-task model's output blocks (:attr:`ModelIO.heads`; ``()``: one task).
    :func:`nas_student.families.build` and multi-task teachers set ``output_heads``."""
    return tuple(getattr(model, "output_heads", ()))


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

    def depth(self, arch: dict[str, Any]) -> int | None:
        """The student's layers between its input and its head (CNN blocks, MLP hidden layers,
        RNN or Transformer layers): deeper students train longer in the proxy
        (``budget.depth_power``). None for a family that does not say: its students train
        ``budget.steps``."""
        return None

    def check_arch(self, arch: dict[str, Any]) -> tuple[tuple[Any, ...], str] | None:
        """None if ``arch`` is valid for this family, else (key path, rule) of the first error."""
        try:
            self.parse(arch)
        except ValidationError as err:
            errors = err.errors()  # a misspelt key is the error to name, not the key it leaves missing
            e = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
            rule = {"extra_forbidden": "unknown parameter",
                    "missing": "required parameter is missing"}.get(e["type"], e["msg"].removeprefix("Value error, "))
            if e["type"] not in ("missing", "extra_forbidden") and not isinstance(e.get("input"), (dict, list)):
                rule += f" (got {e.get('input')!r})"
            return tuple(e["loc"]), rule
        return None


def refuse_tokens(family: str, io: ModelIO) -> None:
    """Families of real-valued inputs refuse token-id tasks with one clear line."""
    if io.tokens:
        from nas_student.errors import NasStudentError

        raise NasStudentError(f"family {family!r} takes real-valued inputs, but this task's inputs are token ids: "
                              "search a sequence family (transformer or rnn; e.g. --space text-transformer)")


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "gelu": nn.GELU, "silu": nn.SiLU,
    "hardswish": nn.Hardswish, "tanh": nn.Tanh,
}


def describe(arch: dict[str, Any]) -> str:
    """A one-line human summary of an architecture (families may register a better one)."""
    fam = arch.get("family", "?")
    if fam in ("cnn", "cnn1d"):
        stages = ",".join(
            f"{s['depth']}x{s['width']}k{s.get('kernel', 3)}"
            + (f"ir{s.get('expansion', 1)}" if s.get("block") == "inverted" else "")
            + {"stride": "/s2", "maxpool": "/mp", "avgpool": "/ap"}.get(s.get("downsample", "none"), "")
            for s in arch.get("stages", []))
        extras = [arch.get("norm", "batch"), arch.get("activation", "relu")]
        if arch.get("residual"):
            extras.append("res")
        if arch.get("groups", 1) > 1:
            extras.append(f"g{arch['groups']}")
        return f"{fam} stem{arch.get('stem_width')} [{stages}] {' '.join(extras)}"
    if fam == "mlp":
        widths = "-".join(str(layer["width"]) for layer in arch.get("layers", [])) or "linear"
        return f"mlp [{widths}] {arch.get('norm', 'none')} {arch.get('activation', 'relu')}"
    if fam in ("transformer", "rnn", "hybrid"):
        cell = arch.get("cell", "transformer" if fam == "transformer" else "lstm")
        width = arch.get("d_model", arch.get("hidden", arch.get("width")))
        text = f"{fam if fam == cell else f'{fam} {cell}'} {arch.get('layers')}x{width}"
        if cell == "transformer":
            text += (f" h{arch.get('heads')} ffn{arch.get('ffn_ratio')} {arch.get('pos_encoding', 'learned')}"
                     f" {arch.get('norm_placement', 'pre')}-norm")
        elif arch.get("bidirectional"):
            text += " bidir"
        return text
    body = {k: v for k, v in arch.items() if k != "family"}
    return f"{fam} {body}"
