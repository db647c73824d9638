"""How trials run, behind one small interface: the search (``search.run_search``) holds the
stages; a backend only fills the study with evaluated trials.

- ``local`` (:mod:`nas_student.search.local`): this process claims and runs trials, beside any
  ``nas-student worker`` processes on the same study;
- ``ray`` (:mod:`nas_student.search.ray_backend`): Ray Tune runs them on a cluster.

Both evaluate a trial with the same :class:`~nas_student.search.objective.Objective` and claim
trials from the study the same way (:mod:`nas_student.search.study`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import optuna
from optuna.trial import FrozenTrial

from nas_student.search.context import SearchContext

Callback = Callable[[optuna.Study, FrozenTrial], None]


class Backend(Protocol):
    def optimize(self, study: optuna.Study, ctx: SearchContext, run_dir: Path,
                 callbacks: list[Callback] = ...) -> None:
        """Run trials until the study has ``ctx.cfg.search.trials`` complete ones (with any other
        processes on the study); ``callbacks`` see each trial this backend finished."""


def backend_for(name: str) -> Backend:
    """The backend of ``execution.backend`` (Ray is imported only when asked for)."""
    if name == "ray":
        from nas_student.search import ray_backend

        return ray_backend  # type: ignore[return-value]
    from nas_student.search import local

    return local  # type: ignore[return-value]
