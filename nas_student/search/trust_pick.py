"""Which students the trust report trains longer (``nas_student.search.trust``): the front's
spread and a few off it, as many as its ``budget`` allows, each at its own steps.

The report's longer runs cost what the students' proxy runs cost per step, times the steps they
add. With ``search.trust.budget`` (a share of the search's training time) the pick shrinks from
``max_front`` + ``off_front`` towards ``MIN_FRONT`` + ``MIN_OFF`` until that estimate fits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _spread(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """``k`` rows evenly spaced through ``frame`` (all when it has no more)."""
    if len(frame) <= k:
        return frame
    return frame.iloc[np.unique(np.linspace(0, len(frame) - 1, k).round().astype(int))]


def pick(trials: pd.DataFrame, front: pd.DataFrame, max_front: int, off_front: int) -> pd.DataFrame:
    """The students to re-train: up to ``max_front`` of the front (spread along its cost order)
    and ``off_front`` trained students off it (spread over proxy accuracy); column ``on_front``."""
    on = _spread(front, max_front).assign(on_front=True)
    trained = trials[trials["feasible"] & trials["duplicate_of"].isna() & trials["accuracy"].notna()]
    rest = trained[~trained["trial"].isin(front["trial"])].sort_values(["accuracy", "trial"])
    off = _spread(rest, off_front).assign(on_front=False)
    return pd.concat([on, off], ignore_index=True)


#: the smallest pick a budget may shrink to: tau over 5 students still tells an order from noise
MIN_FRONT, MIN_OFF = 4, 1


def pick_sizes(max_front: int, off_front: int) -> list[tuple[int, int]]:
    """(front, off-front) from the largest pick down to the smallest a budget may choose: the
    front shrinks first (to ``MIN_FRONT``), then the off-front students (to ``MIN_OFF``)."""
    sizes = [(max_front, off_front)]
    f, o = max_front, off_front
    while f > MIN_FRONT:
        f -= 1
        sizes.append((f, o))
    while o > MIN_OFF:
        o -= 1
        sizes.append((f, o))
    return sizes


def with_steps(frame: pd.DataFrame, proxy: Any, steps: int, families: Any) -> pd.DataFrame:
    """``frame`` with each student's own ``proxy_steps`` and ``long_steps``: the run's, or
    its own by its depth (``budget.depth_power``) and (in a space of several families) its family's
    ``budget.family_step_factor``."""
    if "arch" not in frame.columns:  # an empty front
        return frame
    archs = [json.loads(a) if isinstance(a, str) and a else None for a in frame["arch"]]  # "": no arch
    long = proxy.scaled(steps)
    return frame.assign(proxy_steps=[proxy.for_student(a, families).steps for a in archs],
                        long_steps=[long.for_student(a, families).steps for a in archs])


def steps_of(r: Any, proxy_steps: int, steps: int) -> tuple[int, int, int]:
    """A picked student's (proxy steps, steps its proxy run trained (fewer when it stopped
    early), longer-run steps): its own columns (:func:`with_steps`) or the run's."""
    own = int(getattr(r, "proxy_steps", proxy_steps))
    stopped = getattr(r, "stopped_early", None)
    done = int(stopped) if stopped is not None and not pd.isna(stopped) else own
    return own, done, int(getattr(r, "long_steps", steps))


def search_training_s(trials: pd.DataFrame) -> float | None:
    """The search's training time: its trained trials' summed proxy training seconds (None when
    the trials carry no timing)."""
    if "train_s" not in trials.columns:
        return None
    t = trials.loc[trials["feasible"].astype(bool) & trials["accuracy"].notna(), "train_s"].dropna()
    return float(t.sum()) if len(t) else None


def long_runs_s(picked: pd.DataFrame, start: str, proxy_steps: int, steps: int,
                weights_dir: Path | None = None) -> float:
    """The picked students' longer runs in seconds, estimated from each one's own proxy run: its
    time per step times the steps it adds (continued) or trains (from its initialisation: across
    families, without kept weights in ``weights_dir`` (None: assumed kept), or when its proxy
    run already trained as many steps), as the report's jobs do."""
    cont = continues(picked, start)
    total = 0.0
    for r in picked.itertuples():
        _, done, long = steps_of(r, proxy_steps, steps)
        per_step = float(r.train_s) / max(done, 1) if not pd.isna(r.train_s) else 0.0
        kept = weights_dir is None or (weights_dir / f"{r.arch_hash}.pt").exists()
        total += per_step * ((long - done) if cont and kept and done < long else long)
    return total


def pick_within(trials: pd.DataFrame, front: pd.DataFrame, s: Any, proxy_steps: int, steps: int,
                weights_dir: Path | None = None) -> pd.DataFrame:
    """The largest pick (:func:`pick_sizes` of ``s.max_front``, ``s.off_front``) whose longer runs
    take at most ``s.budget`` x the search's training time; the smallest when none does, every
    size when there is no budget or no timing. Fewer students cost less and judge more coarsely:
    on mnist1d's CNN pool (a median of 6 picked instead of 8) "high" stayed right in 99 % of
    virtual searches (96 % with 8), but the report told searches apart less (results/BENCHMARKS.md
    section 12)."""
    total = search_training_s(trials)
    picked = pick(trials, front, s.max_front, s.off_front)
    if s.budget is None or total is None:
        return picked
    for f, o in pick_sizes(s.max_front, s.off_front):
        picked = pick(trials, front, f, o)
        if long_runs_s(picked, s.start, proxy_steps, steps, weights_dir) <= s.budget * total:
            return picked
    return picked


def n_families(picked: pd.DataFrame) -> int:
    return len({json.loads(a).get("family") for a in picked["arch"]})


def continues(picked: pd.DataFrame, start: str) -> bool:
    """Whether the longer runs continue the proxy runs (``start``: "proxy", "init", or "auto":
    when every picked student is of one family). Across families a warm restart misleads: a
    GRU restarted at 150 steps gains 0.03-0.11 less than when trained 300 steps from the start,
    and that gain is what tells a slow starter apart (its projected ranking)."""
    if start != "auto":
        return start == "proxy"
    return n_families(picked) <= 1
