"""A space that searches the model family itself: one sub-space per family.

```yaml
name: mnist1d-mixed
families:
  cnn1d: {params: {...}, rules: [...]}
  rnn:   {params: {...}}
```

Sampling first draws ``family`` (a categorical), then that family's parameters under names
prefixed by it (``cnn1d.stem_width``, ``rnn.hidden``), so a sampler such as TPE sees each
family's parameters as their own (conditional) dimensions. The architecture is the family's
own: ``{"family": "rnn", "hidden": 16, ...}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nas_student.spaces.space import Arch, Space, Suggester


class _Prefixed:
    """A suggester that prefixes every parameter name with ``<family>.``."""

    def __init__(self, inner: Suggester, prefix: str) -> None:
        self.inner, self.prefix = inner, prefix

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return self.inner.suggest_int(self.prefix + name, low, high, step=step, log=log)

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return self.inner.suggest_float(self.prefix + name, low, high, step=step, log=log)

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return self.inner.suggest_categorical(self.prefix + name, choices)


@dataclass
class MixedSpace:
    name: str
    branches: dict[str, Space]
    description: str = ""
    source: str = ""

    @property
    def family(self) -> str:
        """The families searched, for display: ``cnn1d|mlp|rnn``."""
        return "|".join(self.branches)

    @property
    def families(self) -> list[str]:
        return list(self.branches)

    def sample(self, s: Suggester) -> Arch:
        family = s.suggest_categorical("family", list(self.branches))
        return self.branches[family].sample(_Prefixed(s, f"{family}."))

    def violations(self, arch: Arch) -> list[str]:
        branch = self.branches.get(arch.get("family"))  # type: ignore[arg-type]
        if branch is None:
            return [f"family {arch.get('family')!r} is not one of this space's: {', '.join(self.branches)}"]
        return branch.violations(arch)

    @property
    def size(self) -> int | float | None:
        """The sum of the families' sizes (None when one cannot be counted)."""
        sizes = [b.size for b in self.branches.values()]
        if any(s is None for s in sizes):
            return None
        return math.inf if any(s == math.inf for s in sizes) else sum(sizes)  # type: ignore[arg-type]
