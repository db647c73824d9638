"""Which student of the front to recommend: a rule the user states (``--recommend``).

- ``within:X``: the cheapest student (on the first cost objective, then the others) whose
  quality (the first quality objective, e.g. accuracy) is within X points (percentage points,
  X/100 in accuracy) of the best on the front. "As good as the best, as cheap as that allows."
- ``knee``: the front point closest, in Euclidean distance, to the ideal point after
  normalising each objective over the front to [0, 1] (0 = the best value on the front, 1 =
  the worst); costs on a log10 scale, since halving a cost is worth the same at any size. An
  objective with a single value on the front counts 0 for every point. It weighs a point of
  accuracy against a factor of cost as the front's own spread does, so on a front spanning
  several decades of cost it tends to recommend small students.
- ``best``: the best quality on the front (ties: the cheapest).

Ties go to the lower cost, then the lower trial number (the front's order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nas_student.config import DEFAULT_RECOMMEND, OBJECTIVES, RECOMMEND_RULE


@dataclass(frozen=True)
class Rule:
    kind: str  # "within" | "knee" | "best"
    points: float = 0.0

    def explain(self, quality: str = "accuracy") -> str:
        if self.kind == "knee":
            return ("the knee: closest to the ideal point once each objective is scaled to [0, 1] over the "
                    "front (costs on a log scale)")
        if self.kind == "best":
            return f"the best {quality} on the front"
        return f"the cheapest student within {self.points:g} point{'s' if self.points != 1 else ''} of the front's best {quality}"

    def __str__(self) -> str:
        return f"within:{self.points:g}" if self.kind == "within" else self.kind


def parse_rule(text: str) -> Rule:
    """``within:X`` (X >= 0, points), ``knee`` or ``best``; ValueError names the valid forms."""
    text = str(text).strip()
    if not RECOMMEND_RULE.match(text):
        raise ValueError(f"a recommendation rule is within:X (X points of the best, e.g. within:1), knee or best; "
                         f"got {text!r}")
    kind, _, points = text.partition(":")
    return Rule(kind, float(points or 0))


def axes_for(objectives: Sequence[str]) -> tuple[str, str]:
    """(x, y): the first cost objective (default macs), the first quality one (default accuracy)."""
    x = next((o for o in objectives if OBJECTIVES[o] == "minimize"), "macs")
    y = next((o for o in objectives if OBJECTIVES[o] == "maximize"), "accuracy")
    return x, y


def recommend(front: pd.DataFrame, objectives: Sequence[str], rule: Rule | str = DEFAULT_RECOMMEND) -> int | None:
    """Trial number of the front point ``rule`` picks; None if the front is empty."""
    if front.empty:
        return None
    rule = parse_rule(rule) if isinstance(rule, str) else rule
    if rule.kind == "knee":
        return knee_point(front, objectives)
    costs = [o for o in objectives if OBJECTIVES[o] == "minimize"] or ["macs"]
    _, quality = axes_for(objectives)
    pool = front
    if rule.kind == "within":
        pool = front[front[quality] >= front[quality].max() - rule.points / 100 - 1e-12]
        order = pool.sort_values(costs, kind="stable")
    else:
        order = pool.sort_values([quality, *costs], ascending=[False, *[True] * len(costs)], kind="stable")
    return int(order["trial"].iloc[0])


def knee_point(front: pd.DataFrame, objectives: Sequence[str]) -> int | None:
    """Trial number of the knee (see the module docstring); None if empty."""
    if front.empty:
        return None
    cols = []
    for o in objectives:
        v = front[o].to_numpy(dtype=float)
        if OBJECTIVES[o] == "minimize":
            v = np.log10(np.maximum(v, 1e-12))
        else:
            v = -v
        span = v.max() - v.min()
        cols.append((v - v.min()) / span if span > 0 else np.zeros_like(v))
    dist = np.sqrt(np.sum(np.column_stack(cols) ** 2, axis=1))
    return int(front["trial"].iloc[int(np.argmin(dist))])


def best_quality(front: pd.DataFrame, objectives: Sequence[str]) -> int | None:
    """Trial number of the front's best point on the first quality objective (ties: the
    cheapest); None if empty."""
    return recommend(front, objectives, Rule("best"))
