"""The search-space file format: pydantic models, strict, unknown keys rejected.

```yaml
name: digits-cnn
family: cnn
params:
  width:  {type: int, low: 8, high: 64, step: 8}     # integers, optional step / log
  lr:     {type: float, low: 1.0e-4, high: 0.1, log: true}
  act:    {type: choice, values: [relu, gelu]}
  norm: batch                                        # a fixed value
  stages:                                            # per-layer parameters, repeated
    type: repeat
    count: {type: int, low: 1, high: 3}              # the sampled depth (or a fixed int)
    params: {width: {type: int, low: 8, high: 64, step: 8}}
    rules: ["width % groups == 0"]                   # per layer; may use top-level names
rules: ["stem_width <= 64"]                          # top-level; a repeat's name is its count
```
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

Scalar = Union[bool, int, float, str]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class IntParam(_Strict):
    type: Literal["int"]
    low: int
    high: int
    step: Annotated[int, Field(gt=0)] = 1
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> "IntParam":
        if self.low > self.high:
            raise ValueError(f"`low <= high` must hold, but got low={self.low}, high={self.high}")
        if (self.high - self.low) % self.step:
            raise ValueError(f"`high - low` must be a multiple of `step`, but got "
                             f"low={self.low}, high={self.high}, step={self.step}")
        if self.log and (self.step != 1 or self.low < 1):
            raise ValueError("`log: true` needs `step: 1` and `low >= 1`")
        return self

    def grid(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))


class FloatParam(_Strict):
    type: Literal["float"]
    low: float
    high: float
    step: Annotated[float, Field(gt=0)] | None = None
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> "FloatParam":
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError("`low` and `high` must be finite numbers")
        if self.low > self.high:
            raise ValueError(f"`low <= high` must hold, but got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"`log: true` needs `low > 0`, but got low={self.low}")
        if self.log and self.step is not None:
            raise ValueError("`log: true` and `step` cannot be used together")
        return self

    def grid(self) -> list[float] | None:
        """The finite set of values, or None for a continuous range."""
        if self.step is None:
            return [self.low] if self.low == self.high else None
        n = int(round((self.high - self.low) / self.step))
        return [self.low + i * self.step for i in range(n + 1)]


class ChoiceParam(_Strict):
    type: Literal["choice"]
    values: Annotated[list[Scalar], Field(min_length=1)]

    @model_validator(mode="after")
    def _check(self) -> "ChoiceParam":
        seen = [repr(v) for v in self.values]
        if len(set(seen)) != len(seen):
            raise ValueError("`values` must be distinct")
        return self

    def grid(self) -> list[Scalar]:
        return list(self.values)


Leaf = Union[IntParam, FloatParam, ChoiceParam]
LEAF_TYPES: dict[str, type[BaseModel]] = {"int": IntParam, "float": FloatParam, "choice": ChoiceParam}


class RepeatParam(_Strict):
    """Per-layer parameters repeated ``count`` times; layer params may be leaves or fixed values."""

    type: Literal["repeat"]
    count: Union[Annotated[int, Field(ge=0)], IntParam]
    params: dict[str, Any]
    rules: list[str] = []


class SpaceHeader(_Strict):
    """Top level of a space file. ``params`` is parsed by :mod:`nas_student.spaces.space`."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    family: str
    params: dict[str, Any]
    rules: list[str] = []
