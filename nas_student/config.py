"""The run configuration: one validated value (pydantic, unknown keys rejected) for a search."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nas_student.distill.trainer import Budget

OBJECTIVES = {"accuracy": "maximize", "agreement": "maximize", "macs": "minimize",
              "params": "minimize"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Constraints(_Model):
    """A student is feasible when it stays within these bounds (relative to the teacher and
    optionally absolute). The default is the project's rule: <= 1/10 of the teacher on both."""

    macs_ratio: Annotated[float, Field(gt=0)] | None = 0.1
    params_ratio: Annotated[float, Field(gt=0)] | None = 0.1
    max_macs: Annotated[int, Field(gt=0)] | None = None
    max_params: Annotated[int, Field(gt=0)] | None = None


class SearchSettings(_Model):
    trials: Annotated[int, Field(ge=1)] = 40
    sampler: Literal["tpe", "nsga2", "random"] = "tpe"
    seed: int = 0
    objectives: tuple[str, ...] = ("accuracy", "macs", "params")

    @field_validator("objectives")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [o for o in v if o not in OBJECTIVES]
        if bad or not v or len(set(v)) != len(v):
            raise ValueError(f"objectives must be distinct names from {sorted(OBJECTIVES)}, got {list(v)}")
        return v


class RunConfig(_Model):
    run: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] | None = None
    task: str = "digits"
    space: str = "digits-cnn"
    results_dir: str = "results"
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    budget: Budget = Budget()
    constraints: Constraints = Constraints()
    search: SearchSettings = SearchSettings()

    def run_name(self) -> str:
        """The run folder's name: given, or derived from task, space and seed."""
        if self.run:
            return self.run
        space = re.sub(r"\.ya?ml$", "", self.space.rsplit("/", 1)[-1])
        return f"{self.task}-{space}-s{self.search.seed}"
