"""The run configuration: one validated value (pydantic, unknown keys rejected) for a search."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nas_student.distill.trainer import Budget

OBJECTIVES = {"accuracy": "maximize", "agreement": "maximize", "macs": "minimize",
              "params": "minimize", "latency_ms": "minimize", "size_mb": "minimize"}
COSTS = ("macs", "params", "latency_ms", "size_mb")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Constraints(_Model):
    """A student is feasible when it stays within these bounds, relative to the teacher
    (``*_ratio``) and/or absolute (``max_*``). The default is the project's rule: <= 1/10 of
    the teacher on params and MACs. Latency is measured only when bounded or an objective."""

    macs_ratio: Annotated[float, Field(gt=0)] | None = 0.1
    params_ratio: Annotated[float, Field(gt=0)] | None = 0.1
    latency_ratio: Annotated[float, Field(gt=0)] | None = None
    size_ratio: Annotated[float, Field(gt=0)] | None = None
    max_macs: Annotated[int, Field(gt=0)] | None = None
    max_params: Annotated[int, Field(gt=0)] | None = None
    max_latency_ms: Annotated[float, Field(gt=0)] | None = None
    max_size_mb: Annotated[float, Field(gt=0)] | None = None

    def bound(self, cost: str) -> tuple[float | None, float | None]:
        """(ratio to the teacher, absolute bound) for ``cost`` in :data:`COSTS`."""
        return getattr(self, f"{cost.split('_')[0]}_ratio"), getattr(self, f"max_{cost}")


class LatencySettings(_Model):
    """How latency is measured (on the search device): batch, threads, warm-up, repeats."""

    batch_size: Annotated[int, Field(ge=1)] = 1
    threads: Annotated[int, Field(ge=1)] = 1
    warmup: Annotated[int, Field(ge=0)] = 3
    repeats: Annotated[int, Field(ge=1)] = 10


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
    latency: LatencySettings = LatencySettings()
    search: SearchSettings = SearchSettings()

    def needs_latency(self) -> bool:
        c = self.constraints
        return ("latency_ms" in self.search.objectives or c.latency_ratio is not None
                or c.max_latency_ms is not None)

    def run_name(self) -> str:
        """The run folder's name: given, or derived from task, space and seed."""
        if self.run:
            return self.run
        space = re.sub(r"\.ya?ml$", "", self.space.rsplit("/", 1)[-1])
        return f"{self.task}-{space}-s{self.search.seed}"
