"""A loaded search space: sample an architecture (from Optuna or a plain RNG), check rules, count.

An architecture ("arch") is plain JSON data: ``{"family": "cnn", "width": 32, "stages": [{...}]}``.
Optuna parameter names are the key paths: ``width``, ``stages.count``, ``stages.1.width``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from nas_student.spaces.rules import Rule
from nas_student.spaces.schema import FloatParam, IntParam, Leaf

Arch = dict[str, Any]
MAX_ENUMERATION = 200_000
#: Counting a space evaluates its rules on at most this many assignments; beyond, size is None.
MAX_COUNT_WORK = 1_000_000


class Suggester(Protocol):
    """What sampling needs; ``optuna.Trial`` is one, :class:`RandomSuggester` another."""

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float: ...
    def suggest_categorical(self, name: str, choices: list[Any]) -> Any: ...


class RandomSuggester:
    """Uniform sampling from a numpy Generator (log-uniform for ``log`` ranges)."""

    def __init__(self, seed: int | np.random.Generator = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        if log:
            return int(min(high, max(low, round(math.exp(self.rng.uniform(math.log(low), math.log(high + 1)) - 1e-12)))))
        return int(low + step * self.rng.integers(0, (high - low) // step + 1))

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        if step is not None:
            return float(low + step * self.rng.integers(0, int(round((high - low) / step)) + 1))
        if log:
            return float(math.exp(self.rng.uniform(math.log(low), math.log(high))))
        return float(self.rng.uniform(low, high))

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return choices[int(self.rng.integers(0, len(choices)))]


@dataclass(frozen=True)
class Fixed:
    value: Any


@dataclass(frozen=True)
class Repeat:
    count: int | IntParam
    params: dict[str, Leaf | Fixed]
    rules: tuple[Rule, ...] = ()

    @property
    def top_names(self) -> set[str]:
        """Names the layer rules read from outside the layer."""
        return {n for r in self.rules for n in r.names} - set(self.params) - {"index"}

    def counts(self) -> list[int]:
        return [self.count] if isinstance(self.count, int) else self.count.grid()

    def n_counts(self) -> int:
        return 1 if isinstance(self.count, int) else self.count.n_values()


Param = Leaf | Fixed | Repeat


def suggest(s: Suggester, name: str, p: Leaf | Fixed) -> Any:
    if isinstance(p, Fixed):
        return p.value
    if isinstance(p, IntParam):
        return s.suggest_int(name, p.low, p.high, step=p.step, log=p.log)
    if isinstance(p, FloatParam):
        return s.suggest_float(name, p.low, p.high, step=p.step, log=p.log)
    return s.suggest_categorical(name, list(p.values))


def _grid(p: Leaf | Fixed) -> list[Any] | None:
    return [p.value] if isinstance(p, Fixed) else p.grid()


def _n_values(p: Leaf | Fixed) -> int | None:
    """Size of ``_grid(p)`` without building it (None: continuous)."""
    return 1 if isinstance(p, Fixed) else p.n_values()


class _TooLarge(Exception):
    """Counting would take too long: the size is reported as None."""


def arch_hash(arch: Arch) -> str:
    """Stable 16-hex-digit hash of an architecture (canonical JSON)."""
    text = json.dumps(arch, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Space:
    name: str
    family: str
    params: dict[str, Param]
    rules: tuple[Rule, ...] = ()
    description: str = ""
    source: str = ""
    _size: int | float | None = field(default=-1, repr=False)

    @property
    def families(self) -> list[str]:
        return [self.family]

    # -- sampling ---------------------------------------------------------------------------
    def sample(self, s: Suggester) -> Arch:
        """Draw one architecture; rules are not checked here (see :meth:`violations`)."""
        arch: Arch = {"family": self.family}
        for name, p in self.params.items():
            if isinstance(p, Repeat):
                n = p.count if isinstance(p.count, int) else suggest(s, f"{name}.count", p.count)
                arch[name] = [
                    {k: suggest(s, f"{name}.{i}.{k}", q) for k, q in p.params.items()} for i in range(n)
                ]
            else:
                arch[name] = suggest(s, name, p)
        return arch

    def violations(self, arch: Arch) -> list[str]:
        """The rules ``arch`` breaks, as readable strings (empty when valid)."""
        top = self._top_scope(arch)
        out = [r.text for r in self.rules if not r.holds(top)]
        for name, p in self.params.items():
            if isinstance(p, Repeat):
                for i, layer in enumerate(arch.get(name, [])):
                    scope = {**top, **layer, "index": i}
                    out += [f"{name}[{i}]: {r.text}" for r in p.rules if not r.holds(scope)]
        return out

    def _top_scope(self, arch: Arch) -> dict[str, Any]:
        return {k: (len(v) if isinstance(self.params.get(k), Repeat) else v)
                for k, v in arch.items() if k != "family"}

    # -- size -------------------------------------------------------------------------------
    @property
    def size(self) -> int | float | None:
        """Number of distinct architectures that satisfy the rules; ``inf`` for continuous
        ranges; ``None`` when too large to enumerate the top level exactly."""
        if self._size == -1:
            self._size = self._count()
        return self._size

    def _count(self) -> int | float | None:
        try:
            return self._count_exactly()
        except _TooLarge:
            return None

    def _count_exactly(self) -> int | float:
        sizes = []
        for p in self.params.values():
            n = p.n_counts() if isinstance(p, Repeat) else _n_values(p)
            if n is None:
                return math.inf
            sizes.append(n)
        for p in self.params.values():
            if isinstance(p, Repeat) and any(_n_values(q) is None for q in p.params.values()):
                return math.inf
        if math.prod(sizes) > MAX_ENUMERATION:  # checked before any grid is built
            raise _TooLarge
        top_names = list(self.params)
        top_grids = [p.counts() if isinstance(p, Repeat) else _grid(p) for p in self.params.values()]
        work = [math.prod(sizes)]  # rule evaluations so far, bounded by MAX_COUNT_WORK
        total = 0
        cache: dict[tuple, list[int]] = {}
        for values in itertools.product(*top_grids):
            scope = dict(zip(top_names, values))
            if not all(r.holds(scope) for r in self.rules):
                continue
            n = 1
            for name, p in self.params.items():
                if isinstance(p, Repeat):
                    key = (name, scope[name], *(_key(scope.get(k)) for k in sorted(p.top_names)))
                    if key not in cache:
                        cache[key] = self._count_layers(p, scope, scope[name], work)
                    n *= math.prod(cache[key])
            total += n
        return total

    @staticmethod
    def _count_layers(p: Repeat, top: dict[str, Any], n: int, work: list[int]) -> list[int]:
        """Valid assignments of each of ``n`` layers given the top level."""
        names = list(p.params)
        per_layer = math.prod(_n_values(q) for q in p.params.values())  # type: ignore[misc]
        uses_index = any("index" in r.names for r in p.rules)
        work[0] += per_layer * (max(n, 1) if uses_index else 1)
        if per_layer > MAX_ENUMERATION or work[0] > MAX_COUNT_WORK:
            raise _TooLarge
        grids = [_grid(q) for q in p.params.values()]
        counts: list[int] = []
        for i in range(n):
            if i and not uses_index:
                counts.append(counts[0])
                continue
            counts.append(sum(
                all(r.holds({**top, **dict(zip(names, vals)), "index": i}) for r in p.rules)
                for vals in itertools.product(*grids)  # type: ignore[arg-type]
            ))
        return counts


def _key(value: Any) -> Any:
    """A hashable stand-in for a value in a cache key (fixed values may be lists)."""
    return repr(value) if isinstance(value, (list, dict)) else value
