"""Draw feasible students from a space without training: sample, check the rules, price.

Used by the training-free first stage (:mod:`nas_student.search.prescreen`) and by the
benchmarks. Each candidate keeps the Optuna parameters that produced it (the names
:meth:`Space.sample` suggests), so it can be enqueued into a study as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from nas_student.cost.constraints import constraint_values, is_feasible
from nas_student.cost.price import price
from nas_student.families import build
from nas_student.families.base import ModelIO
from nas_student.spaces import SearchSpace, arch_hash
from nas_student.spaces.space import Arch, RandomSuggester


class RecordingSuggester(RandomSuggester):
    """A :class:`RandomSuggester` that remembers every suggestion by its parameter name."""

    def __init__(self, seed: int | np.random.Generator = 0) -> None:
        super().__init__(seed)
        self.params: dict[str, Any] = {}

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        self.params[name] = v = super().suggest_int(name, low, high, step=step, log=log)
        return v

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        self.params[name] = v = super().suggest_float(name, low, high, step=step, log=log)
        return v

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        self.params[name] = v = super().suggest_categorical(name, choices)
        return v


@dataclass
class Candidate:
    arch: Arch
    params: dict[str, Any]  # Optuna parameter name -> value
    hash: str
    costs: dict[str, float]  # macs, params, size_mb
    scores: dict[str, float] = field(default_factory=dict)


def draw(space: SearchSpace, io: ModelIO, bounds: dict[str, float], n: int, *, seed: int = 0,
         max_draws: int | None = None, device: torch.device | str = "cpu") -> list[Candidate]:
    """Up to ``n`` distinct students that keep the space's rules and the cost ``bounds``
    (latency is not measured: a latency bound is not checked here), drawn uniformly.
    Stops after ``max_draws`` samples (default ``50 * n``)."""
    rng = np.random.default_rng(seed)
    out: list[Candidate] = []
    seen: set[str] = set()
    bounds = {k: v for k, v in bounds.items() if k != "latency_ms"}
    for _ in range(max_draws or 50 * n):
        if len(out) >= n:
            break
        s = RecordingSuggester(rng)
        arch = space.sample(s)
        h = arch_hash(arch)
        if h in seen or space.violations(arch):
            continue
        seen.add(h)
        _, costs = price(build(arch, io), io, torch.device(device), None)
        if is_feasible(constraint_values(costs, bounds)):
            out.append(Candidate(arch, dict(s.params), h, costs))
    return out
