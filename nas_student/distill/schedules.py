"""Values that change over training: the KD temperature, the loss weights, the learning rate.

A schedule goes from ``start`` (step 0) to ``end`` (the last step) along a ``kind`` of curve:

- ``constant``: ``start`` throughout (``end`` is ignored);
- ``linear``: ``start + (end - start) * p``;
- ``cosine``: ``end + (start - end) * (1 + cos(pi * p)) / 2``,

where ``p = step / (total - 1)`` is the progress in [0, 1] (0 for a single step). A temperature
curriculum from high to low T (soft, easy targets first, sharper ones later) is
``{kind: cosine, start: 8, end: 2}``; see Li et al., 2023, "Curriculum Temperature for
Knowledge Distillation" (AAAI, arXiv:2211.16231) and Jafari et al., 2021, "Annealing
Knowledge Distillation" (EACL, arXiv:2104.07163). In a recipe a plain number is a constant.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, model_validator


class Schedule(BaseModel):
    """A value over training progress (see the module docstring for the curves)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: Literal["constant", "linear", "cosine"] = "constant"
    start: float
    end: float | None = None

    @model_validator(mode="after")
    def _end(self) -> "Schedule":
        if self.kind != "constant" and self.end is None:
            raise ValueError(f"a {self.kind} schedule needs `end`")
        if not (math.isfinite(self.start) and (self.end is None or math.isfinite(self.end))):
            raise ValueError("start and end must be finite numbers")
        return self

    def at(self, step: int, total: int) -> float:
        """The value at ``step`` (0-based) of ``total`` steps."""
        if self.kind == "constant" or self.end is None:
            return self.start
        p = min(max(step / (total - 1), 0.0), 1.0) if total > 1 else 0.0
        if self.kind == "linear":
            return self.start + (self.end - self.start) * p
        return self.end + (self.start - self.end) * (1.0 + math.cos(math.pi * p)) / 2.0

    def bounds(self) -> tuple[float, float]:
        """The smallest and largest value the schedule takes."""
        ends = (self.start, self.start if self.end is None else self.end)
        return min(ends), max(ends)


def _kind(v: object) -> str:
    return "schedule" if isinstance(v, (dict, Schedule)) else "number"


#: A recipe value: a number (constant) or a schedule (a mapping); errors name the one meant.
Scheduled = Annotated[Union[Annotated[float, Tag("number")], Annotated[Schedule, Tag("schedule")]],
                      Discriminator(_kind)]


def value_at(v: Scheduled, step: int, total: int) -> float:
    return float(v) if not isinstance(v, Schedule) else v.at(step, total)


def is_constant(v: Scheduled) -> bool:
    return not isinstance(v, Schedule) or v.kind == "constant" or v.end == v.start


def lower_bound(v: Scheduled) -> float:
    return float(v) if not isinstance(v, Schedule) else v.bounds()[0]


def upper_bound(v: Scheduled) -> float:
    return float(v) if not isinstance(v, Schedule) else v.bounds()[1]


def lr_factor(kind: str, step: int, total: int, warmup: int = 0) -> float:
    """Multiplier of the base learning rate at ``step``: linear warm-up over ``warmup`` steps,
    then ``constant``, ``linear`` decay to 0, or ``cosine`` decay to 0 over the rest."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    rest = max(total - warmup, 1)
    p = min((step - warmup) / rest, 1.0)
    if kind == "linear":
        return 1.0 - p
    if kind == "cosine":
        return (1.0 + math.cos(math.pi * p)) / 2.0
    return 1.0

