"""Refuse, before any student is trained or anything is written, a space whose students cannot
meet the static cost bounds (MACs, params, size).

The cheapest student is looked for by pricing a few real builds: the space's lowest one (every
number at its low end, every choice at its first value), improved one parameter at a time
(each value of a choice, both ends of a number) while that lowers the cost, then some seeded
random samples. The first student within every bound ends the check (usually the first one
priced). Latency is not checked (it is measured, and noisy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from nas_student.config import Constraints
from nas_student.cost.price import price
from nas_student.errors import NasStudentError
from nas_student.families import ModelIO, build
from nas_student.spaces import RandomSuggester, SearchSpace, arch_hash

STATIC = ("macs", "params", "size_mb")
PASSES = 2
RANDOM_SAMPLES = 16
BUILD_CHECKS = 16
MAX_PRICED = 64


class _Pick:
    """A suggester that takes ``overrides[name]``, else the low end / the first choice, and
    notes every name it was asked for with the values worth trying."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides, self.options = overrides, {}

    def _pick(self, name: str, options: list[Any]) -> Any:
        self.options[name] = options
        return self.overrides.get(name, options[0])

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return self._pick(name, [low, low + (high - low) // step * step])

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return self._pick(name, [low, high])

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return self._pick(name, list(choices))


@dataclass
class _Priced:
    score: float  # the largest cost / bound; <= 1 is within every bound
    costs: dict[str, float]
    arch: dict[str, Any]


class _Pricer:
    def __init__(self, space: SearchSpace, io: ModelIO, bounds: dict[str, float]) -> None:
        self.space, self.io, self.bounds = space, io, bounds
        self.seen: dict[str, _Priced | None] = {}

    def __call__(self, arch: dict[str, Any]) -> _Priced | None:
        """Price ``arch`` (None when it breaks the space's rules or cannot be built)."""
        h = arch_hash(arch)
        if h not in self.seen:
            self.seen[h] = None if self.space.violations(arch) else self._price(arch)
        return self.seen[h]

    def _price(self, arch: dict[str, Any]) -> _Priced | None:
        try:
            _, costs = price(build(arch, self.io), self.io, torch.device("cpu"), None)
        except Exception:  # noqa: BLE001 - not buildable or priceable: its trial will say why
            return None
        return _Priced(max(costs[k] / b for k, b in self.bounds.items()), costs, arch)


def cheapest(space: SearchSpace, io: ModelIO, bounds: dict[str, float]) -> tuple[_Priced | None, int]:
    """The cheapest student found (relative to ``bounds``), stopping at the first within them;
    and how many students were priced."""
    pricer = _Pricer(space, io, bounds)
    best: _Priced | None = None

    def improves(arch: dict[str, Any]) -> bool:
        nonlocal best
        p = pricer(arch)
        if p is None or (best is not None and p.score >= best.score):
            return False
        best = p
        return True

    def done() -> bool:
        return (best is not None and best.score <= 1) or len(pricer.seen) >= MAX_PRICED

    pick = _Pick({})
    improves(space.sample(pick))
    for _ in range(PASSES):
        changed = False
        for name, options in list(pick.options.items()):
            for value in options:
                if done():
                    return best, len(pricer.seen)
                trial = _Pick({**pick.overrides, name: value})
                if improves(space.sample(trial)):
                    pick, changed = trial, True
        if not changed:
            break
    rng = RandomSuggester(0)
    for _ in range(RANDOM_SAMPLES):
        if done():
            break
        improves(space.sample(rng))
    return best, len(pricer.seen)


def _origin(name: str, bound: float, constraints: Constraints) -> str:
    ratio, absolute = constraints.bound(name)
    if absolute is not None and float(absolute) == bound:
        return f"max_{name}"
    return f"{name.split('_')[0]}_ratio {ratio:g} x the teacher's"


def check_buildable(space: SearchSpace, io: ModelIO) -> None:
    """Raise a one-line NasStudentError when the space samples students that cannot serve the
    task at all (an MLP on token ids, a 2-D CNN on signals, more downsampling than the input's
    length allows), instead of failing their trials. Builds (on the meta device: nothing is
    allocated) up to ``BUILD_CHECKS`` valid samples, and at least one of every family."""
    rng = RandomSuggester(0)
    seen: set[str] = set()
    for i in range(BUILD_CHECKS * 4):
        arch = space.sample(rng)
        if space.violations(arch):
            continue
        try:
            with torch.device("meta"):
                build(arch, io)
        except NasStudentError as e:
            where = space.source or space.name
            raise NasStudentError(f"{where}: space {space.name!r} cannot serve this task: {e}") from None
        except Exception:  # noqa: BLE001 - e.g. a user family that cannot build on the meta device:
            pass  # its trials build it for real and say what is wrong
        seen.add(arch["family"])
        if i >= BUILD_CHECKS and seen >= set(space.families):
            return


def check(space: SearchSpace, io: ModelIO, bounds: dict[str, float], constraints: Constraints) -> None:
    """Raise a one-line NasStudentError when no student of ``space`` is found within the static
    bounds (nothing to check when only latency is bounded)."""
    static = {k: v for k, v in bounds.items() if k in STATIC}
    if not static:
        return
    best, n = cheapest(space, io, static)
    if best is None or best.score <= 1:
        return  # within the bounds, or nothing could be priced here (the trials will say why)
    over = [k for k, b in static.items() if best.costs[k] > b]
    said = "; ".join(f"{k} {best.costs[k]:,.4g} > {static[k]:,.4g} ({_origin(k, static[k], constraints)})"
                     for k in over)
    raise NasStudentError(
        f"{space.source or space.name}: no student of space {space.name!r} can meet the cost bounds: the cheapest of "
        f"{n} priced has {said}; loosen the bounds or allow smaller students in the space")
