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

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

Scalar = Union[bool, int, float, str]
#: Integers beyond 2**53 lose precision in samplers that work in floats (Optuna's TPE).
MAX_INT = 2**53
#: A discrete float range may hold at most this many values.
MAX_FLOAT_STEPS = 2**53
#: The most layers a repeat may have.
MAX_REPEAT = 256
BoundedInt = Annotated[int, Field(ge=-MAX_INT, le=MAX_INT)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class IntParam(_Strict):
    type: Literal["int"]
    low: BoundedInt
    high: BoundedInt
    step: Annotated[int, Field(gt=0, le=2 * MAX_INT)] = 1
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

    def n_values(self) -> int:
        return (self.high - self.low) // self.step + 1

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
        if not math.isfinite(self.high - self.low):
            raise ValueError(f"`high - low` must be a finite number, but got low={self.low}, "
                             f"high={self.high}")
        if self.log and self.step is not None:
            raise ValueError("`log: true` and `step` cannot be used together")
        if self.step is not None:
            n = (self.high - self.low) / self.step
            if not n <= MAX_FLOAT_STEPS:
                raise ValueError(f"`step` gives more than 2**53 values, but got low={self.low}, "
                                 f"high={self.high}, step={self.step}")
        return self

    def n_values(self) -> int | None:
        """How many values, or None for a continuous range."""
        if self.step is None:
            return 1 if self.low == self.high else None
        return int(round((self.high - self.low) / self.step)) + 1

    def grid(self) -> list[float] | None:
        """The finite set of values, or None for a continuous range."""
        n = self.n_values()
        if n is None:
            return None
        if self.step is None:
            return [self.low]
        return [self.low + i * self.step for i in range(n)]


class ChoiceParam(_Strict):
    type: Literal["choice"]
    values: Annotated[list[Scalar], Field(min_length=1)]

    @model_validator(mode="after")
    def _check(self) -> "ChoiceParam":
        seen = [repr(v) for v in self.values]
        if len(set(seen)) != len(seen):
            raise ValueError("`values` must be distinct")
        return self

    def n_values(self) -> int:
        return len(self.values)

    def grid(self) -> list[Scalar]:
        return list(self.values)


Leaf = Union[IntParam, FloatParam, ChoiceParam]
LEAF_TYPES: dict[str, type[BaseModel]] = {"int": IntParam, "float": FloatParam, "choice": ChoiceParam}


class RepeatParam(_Strict):
    """Per-layer parameters repeated ``count`` times; layer params may be leaves or fixed values."""

    type: Literal["repeat"]
    count: Annotated[
        Union[Annotated[Annotated[int, Field(ge=0, le=MAX_REPEAT)], Tag("fixed")],
              Annotated[IntParam, Tag("sampled")]],
        Discriminator(lambda v: "sampled" if isinstance(v, (dict, IntParam)) else "fixed"),
    ]
    params: dict[str, Any]
    rules: list[str] = []

    @model_validator(mode="after")
    def _check_count(self) -> "RepeatParam":
        if isinstance(self.count, IntParam) and not 0 <= self.count.low <= self.count.high <= MAX_REPEAT:
            raise ValueError(f"a sampled `count` must lie in 0..{MAX_REPEAT}, but got "
                             f"low={self.count.low}, high={self.count.high}")
        return self


class SpaceHeader(_Strict):
    """Top level of a space file. ``params`` is parsed by :mod:`nas_student.spaces.space`."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    family: str
    params: dict[str, Any]
    rules: list[str] = []


class BranchHeader(_Strict):
    """One family of a mixed space: its parameters and rules, as in a one-family space."""

    params: dict[str, Any]
    rules: list[str] = []


class MixedHeader(_Strict):
    """Top level of a space that searches the family itself: ``families`` maps each family
    name to its parameters and rules."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    families: Annotated[dict[str, Any], Field(min_length=1)]
