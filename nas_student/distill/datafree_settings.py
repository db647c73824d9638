"""The ``data_free`` block of a run file: how synthetic inputs are made (by
:mod:`nas_student.distill.datafree`) and what they replace. Plain settings, no torch, so a run
file is validated without loading it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DataFreeSettings(BaseModel):
    """The ``data_free`` block: how synthetic inputs are made and what they replace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    #: synthetic training inputs.
    samples: Annotated[int, Field(ge=1)] = 2000
    #: where the search validates: "real" = the task's validation split (the only real data
    #: then needed); "synthetic" = ``val_samples`` more synthetic inputs, made apart from the
    #: training ones, scored by agreement with the teacher (no real data at all).
    validation: Literal["real", "synthetic"] = "real"
    val_samples: Annotated[int, Field(ge=1)] = 500
    #: optimisation of continuous inputs (DeepInversion): Adam steps per batch, batch, rate.
    steps: Annotated[int, Field(ge=1)] = 40
    batch_size: Annotated[int, Field(ge=2)] = 250
    lr: Annotated[float, Field(gt=0)] = 0.2
    bn_weight: Annotated[float, Field(ge=0)] = 1.0
    #: extra factor on the first BatchNorm layer's term (DeepInversion's code uses 10: the
    #: statistics nearest the input say most about what inputs look like).
    first_bn_multiplier: Annotated[float, Field(ge=0)] = 10.0
    ce_weight: Annotated[float, Field(ge=0)] = 5.0
    tv_weight: Annotated[float, Field(ge=0)] = 1e-3
    l2_weight: Annotated[float, Field(ge=0)] = 0.0
    diversity_weight: Annotated[float, Field(ge=0)] = 0.1
    #: inputs start uniform in this range and are clamped to it after every step (e.g. [0, 1]
    #: for the built-in digits' pixels); None = start standard normal, unclamped.
    input_range: tuple[float, float] | None = None
    #: sampling temperature for token inputs (language models).
    temperature: Annotated[float, Field(gt=0)] = 1.0

    @model_validator(mode="after")
    def _range_ordered(self) -> DataFreeSettings:
        if self.input_range is not None and not self.input_range[0] < self.input_range[1]:
            raise ValueError(f"input_range must be [low, high] with low < high (got {list(self.input_range)})")
        return self
