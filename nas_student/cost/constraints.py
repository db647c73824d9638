"""Feasibility of a student against the teacher: one constraint value per bound.

A value is ``student / limit - 1``: <= 0 means within the bound, and the size of a positive
value says by how much (relative), so Optuna's samplers can rank infeasible students too.
"""

from __future__ import annotations

import math

from nas_student.config import COSTS, Constraints


def limits(c: Constraints, teacher: dict[str, float]) -> dict[str, float]:
    """The effective bound on each bounded cost (the tightest of relative and absolute)."""
    out: dict[str, float] = {}
    for name in COSTS:
        ratio, absolute = c.bound(name)
        bounds = [b for b in (ratio * teacher[name] if ratio else None, absolute) if b is not None]
        if bounds:
            out[name] = float(min(bounds))
    return out


def constraint_values(costs: dict[str, float], bounds: dict[str, float]) -> dict[str, float]:
    """``cost / bound - 1`` per bound; a missing or NaN cost counts as violated (1.0)."""
    out = {}
    for name, bound in bounds.items():
        v = costs.get(name, math.nan)
        out[name] = v / bound - 1.0 if math.isfinite(v) else 1.0
    return out


def is_feasible(values: dict[str, float]) -> bool:
    return all(v <= 0 for v in values.values())
