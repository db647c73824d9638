"""The Pareto front: the feasible students no other feasible student beats on every objective."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nas_student.config import OBJECTIVES


def non_dominated(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values`` (all objectives minimised).
    Duplicated points are all kept."""
    n = len(values)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        dominated_by = np.all(values <= values[i], axis=1) & np.any(values < values[i], axis=1)
        keep[i] = not dominated_by.any()
    return keep


def pareto_front(frame: pd.DataFrame, objectives: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """Rows of ``frame`` (from :func:`trials_frame`) on the front: feasible, trained, unique
    architectures; sorted by the first cost objective."""
    ok = frame[frame["feasible"] & frame["duplicate_of"].isna()].dropna(subset=list(objectives))
    if ok.empty:
        return ok
    signs = np.array([-1.0 if OBJECTIVES[o] == "maximize" else 1.0 for o in objectives])
    mask = non_dominated(ok[list(objectives)].to_numpy(dtype=float) * signs)
    front = ok[mask]
    cost_cols = [o for o in objectives if OBJECTIVES[o] == "minimize"] or list(objectives)
    return front.sort_values(cost_cols + ["trial"]).reset_index(drop=True)
