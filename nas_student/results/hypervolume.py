"""Hypervolume of a front, on normalised objectives (pure functions).

Normalisation (:func:`normalise`), chosen so that every feasible student lies in [0, 1]^d,
0 is best and the reference point is (1, ..., 1):

* a quality objective (``accuracy``, ``agreement``, in [0, 1]) becomes ``1 - value``: the
  reference is a student that is always wrong;
* a cost objective (``macs``, ``params``) becomes ``value / scale``, where ``scale`` is the
  run's feasibility bound on that cost (by default 1/10 of the teacher's); without a bound,
  the teacher's cost. The reference is a student exactly at the bound.

The hypervolume is then the volume of the region of [0, 1]^d dominated by the front: 1.0 is
a free, perfect student; 0.0 is an empty front. Two runs are comparable only on the same
objectives and the same scales (``compare`` normalises both with one set of scales).

:func:`hypervolume` is exact (recursive slicing over the last objective), fine for the front
sizes a search produces (tens of points, 2-4 objectives).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from nas_student.config import OBJECTIVES
from nas_student.errors import NasStudentError

REFERENCE = 1.0


def hypervolume(points: np.ndarray | Sequence[Sequence[float]],
                reference: Sequence[float] | None = None) -> float:
    """Exact volume dominated by ``points`` (all objectives minimised) and bounded by
    ``reference`` (default: all ones). Points not strictly better than the reference on
    every objective add nothing."""
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or len(pts) == 0:
        return 0.0
    ref = np.full(pts.shape[1], REFERENCE) if reference is None else np.asarray(reference, float)
    pts = pts[np.all(pts < ref, axis=1)]
    return float(_hv(pts, ref)) if len(pts) else 0.0


def _hv(pts: np.ndarray, ref: np.ndarray) -> float:
    if len(pts) == 0:
        return 0.0
    if pts.shape[1] == 1:
        return float(ref[0] - pts[:, 0].min())
    if pts.shape[1] == 2:  # sweep: sort by x, keep the running minimum of y
        order = np.lexsort((pts[:, 1], pts[:, 0]))
        total, best_y = 0.0, ref[1]
        xs, ys = pts[order, 0], pts[order, 1]
        for i, (x, y) in enumerate(zip(xs, ys)):
            if y < best_y:
                # the slab from x to the next x (or ref) has height ref_y - best_y after update
                best_y = y
            nxt = xs[i + 1] if i + 1 < len(xs) else ref[0]
            total += (nxt - x) * (ref[1] - best_y)
        return total
    order = np.argsort(pts[:, -1], kind="stable")
    pts = pts[order]
    total = 0.0
    for i in range(len(pts)):
        nxt = pts[i + 1, -1] if i + 1 < len(pts) else ref[-1]
        depth = nxt - pts[i, -1]
        if depth > 0:
            total += depth * _hv(pts[: i + 1, :-1], ref[:-1])
    return total


def scales(objectives: Sequence[str], attrs: Mapping) -> dict[str, float]:
    """Scale of each cost objective for one run: its bound, else the teacher's cost."""
    bounds, teacher = attrs.get("bounds", {}) or {}, attrs.get("teacher", {}) or {}
    out = {}
    for o in objectives:
        if OBJECTIVES[o] == "minimize":
            s = bounds.get(o) or teacher.get(o)
            if not s:
                raise NasStudentError(f"no bound and no teacher value to scale objective {o!r} by")
            out[o] = float(s)
    return out


def normalise(frame: pd.DataFrame, objectives: Sequence[str], scale: Mapping[str, float]) -> np.ndarray:
    """Rows of ``frame`` as points in the normalised, minimised space described above."""
    cols = []
    for o in objectives:
        v = frame[o].to_numpy(dtype=float)
        cols.append(1.0 - v if OBJECTIVES[o] == "maximize" else v / scale[o])
    return np.column_stack(cols) if cols else np.empty((len(frame), 0))


def front_hypervolume(front: pd.DataFrame, objectives: Sequence[str], scale: Mapping[str, float]) -> float:
    """Hypervolume of a front (from :func:`~nas_student.results.pareto_front`), normalised."""
    if front.empty:
        return 0.0
    return hypervolume(normalise(front, objectives, scale))
