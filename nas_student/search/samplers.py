"""Samplers whose proposals depend only on the seed and the study's trials.

Optuna's samplers draw from one RNG per process, so a search resumed after a crash would
propose other architectures than an uninterrupted one. :class:`Reseeding` wraps a sampler
and, before each trial, reseeds every RNG inside it from (seed, a count of the study's
trials). The count takes:
* finished trials, and students that failed by themselves (else the next proposal would
  repeat the failing one);
* not interrupted trials, so a resumed search proposes what an uninterrupted one would have
  proposed, trial for trial;
* the other trials running: trials asked while others run (parallel workers, Ray) must not
  share a seed, or during the sampler's random start-up they would propose the same student.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.samplers._lazy_random_state import LazyRandomState
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from nas_student.trial_record import TrialRecord


def _counts(t: FrozenTrial) -> bool:
    """Finished trials count; so do failures of the student itself (else the next proposal
    would repeat the failing one). Interrupted trials do not: a resumed search must propose
    what an uninterrupted one would."""
    return TrialRecord.from_trial(t).counts_for_sampler


def _reseed(obj: Any, seed: int, seen: set[int]) -> None:
    """Seed every LazyRandomState reachable through the sampler's attributes."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    for value in vars(obj).values():
        if isinstance(value, LazyRandomState):
            value.rng.seed(seed)
        elif isinstance(value, BaseSampler):
            _reseed(value, seed + 1, seen)


class Reseeding(BaseSampler):
    def __init__(self, inner: BaseSampler, seed: int) -> None:
        self.inner, self.seed = inner, seed

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        # asks are serialised (the claim lock), and each adds one to this count for the next
        n = sum(_counts(t) or (t.state == TrialState.RUNNING and t.number != trial.number)
                for t in study.get_trials(deepcopy=False))
        _reseed(self.inner, (self.seed * 1_000_003 + n * 7_919) % 2**32, set())
        self.inner.before_trial(study, trial)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: list[float] | None) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


def make(name: str, seed: int) -> BaseSampler:
    """tpe (default), nsga2 or random, wrapped in :class:`Reseeding`."""
    if name == "nsga2":
        inner: BaseSampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=10)
    elif name == "random":
        inner = optuna.samplers.RandomSampler(seed=seed)
    else:
        inner = optuna.samplers.TPESampler(seed=seed, n_startup_trials=10, multivariate=True,
                                           constant_liar=True)
    return Reseeding(inner, seed)
