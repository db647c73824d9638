"""The training-free first stage: score many students cheaply, start the study with the best.

Before the first trial of a new study, :func:`prescreen` draws ``candidates`` distinct
students that keep the space's rules and the cost bounds (pricing is cheap: no training),
scores each at initialisation with one training-free score (:mod:`~nas_student.search.zero_cost`),
and enqueues the ``keep`` most promising as the study's first trials. The search is
multi-objective, so "most promising" is non-dominated sorting on (score, cost objectives):
the first front, then the second, ..., each by score, rather than the top scores alone,
which would all be the largest students. A resumed study (one with trials) is not touched.
"""

from __future__ import annotations

import numpy as np
import optuna
import torch

from nas_student import trial_record as rec
from nas_student.config import OBJECTIVES
from nas_student.errors import NasStudentError
from nas_student.families import build
from nas_student.results.pareto import non_dominated
from nas_student.search.candidates import Candidate, draw
from nas_student.search.context import SearchContext
from nas_student.search.zero_cost import score_fn
from nas_student.seeds import student_seed


def rank(cands: list[Candidate], score: str, costs: list[str]) -> list[Candidate]:
    """``cands`` ordered by non-dominated sorting on (``score`` maximised, ``costs``
    minimised): the first front, then the next; within a front, best score first."""
    left = list(cands)
    out: list[Candidate] = []
    while left:
        pts = np.array([[-c.scores[score], *(c.costs[k] for k in costs)] for c in left], dtype=float)
        pts = np.nan_to_num(pts, nan=np.inf, posinf=np.inf, neginf=-np.inf)
        mask = non_dominated(pts)
        front = [c for c, m in zip(left, mask) if m]
        out += sorted(front, key=lambda c: -c.scores[score])
        left = [c for c, m in zip(left, mask) if not m]
    return out


def prescreen(ctx: SearchContext, study: optuna.Study) -> list[Candidate]:
    """Enqueue the first stage's picks into a new ``study``; returns them (empty when off,
    or when the study already has trials)."""
    s = ctx.cfg.search.prescreen
    if not s.enabled or study.get_trials(deepcopy=False):
        return []
    seed = ctx.cfg.search.seed
    cands = draw(ctx.space, ctx.task.io, ctx.bounds, s.candidates, seed=seed, device=ctx.device)
    fn = score_fn(s.score)
    if s.score == "diswot" and ctx.task.cross_modal:
        raise NasStudentError(f"prescreen score 'diswot' compares the student's features with the teacher's on "
                              f"one input; task {ctx.task.name!r} is cross-modal: use synflow or naswot")
    x = ctx.task.train.x[: s.batch_size].to(ctx.device)
    for c in cands:
        torch.manual_seed(student_seed(c.hash, seed))
        c.scores[s.score] = fn(build(c.arch, ctx.task.io).to(ctx.device), x, ctx.task.teacher)
    costs = [o for o in ctx.cfg.search.objectives if OBJECTIVES[o] == "minimize" and o in ("macs", "params", "size_mb")]
    picks = rank(cands, s.score, costs)[: min(s.keep, ctx.cfg.search.trials)]  # never more than the search runs
    for c in picks:
        study.enqueue_trial(c.params, user_attrs={rec.PRESCREEN_SCORE: c.scores[s.score]})
    return picks
