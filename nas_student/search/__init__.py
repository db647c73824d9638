"""Run a search: prepare (space, task, teacher), optimise, write trials.csv and pareto.csv."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import FrozenTrial

from nas_student.config import DEFAULT_RECOMMEND, RunConfig
from nas_student.results import pareto_front, trials_frame
from nas_student.results.files import write_front_files
from nas_student.results.recommend import recommend
from nas_student.search import pool, worker
from nas_student.search.backend import backend_for
from nas_student.search.context import SearchContext, prepare
from nas_student.search.prescreen import prescreen
from nas_student.search.study import create_or_resume, n_finished, run_lock, write_run_info
from nas_student.search.trust import TrustReport, run_trust
from nas_student.spaces import auto
from nas_student.tasks.teacher_cache import atomic_write


@dataclass
class SearchOutcome:
    run_dir: Path
    study: optuna.Study
    trials: pd.DataFrame
    front: pd.DataFrame
    ctx: SearchContext
    trust: TrustReport | None = None


def write_tables(run_dir: Path, study: optuna.Study, objectives: list[str] | tuple[str, ...]
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(Re)write the run's front files from the study (``results.files``: trials.csv,
    pareto.csv / .parquet / .png / .html, the recommended student marked); return the trials
    and the front."""
    trials = trials_frame(study)
    front = pareto_front(trials, objectives)
    attrs = dict(study.user_attrs)
    rule = (attrs.get("config") or {}).get("search", {}).get("recommend", DEFAULT_RECOMMEND)
    write_front_files(run_dir, trials, front, attrs, recommend(front, list(objectives), rule))
    return trials, front


def run_search(cfg: RunConfig, *, on_ready: Callable[[SearchContext, int], None] | None = None,
               callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = (),
               on_trust: Callable[[], None] | None = None) -> SearchOutcome:
    """Search (or resume) the run ``cfg`` names, on the backend it names (local Optuna, or Ray
    Tune); ``on_ready(ctx, already_finished)`` is called once the teacher is ready, before the
    first trial (after the first stage, when it is on); ``on_trust()`` when the search is done
    and the trust report starts (when it is on). Other processes may join with
    :func:`nas_student.search.worker.join`."""
    ctx = prepare(cfg)
    run_dir = Path(cfg.results_dir) / cfg.run_name()
    new = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir):
        try:
            study = create_or_resume(cfg, ctx, run_dir)
        except BaseException:
            if new and {p.name for p in run_dir.iterdir()} <= {".lock"}:  # nothing of the run exists
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        write_run_info(run_dir, cfg)
        if ctx.space_yaml is not None and not (run_dir / auto.FILE).exists():
            atomic_write(run_dir / auto.FILE, lambda p: p.write_text(ctx.space_yaml))
        worker.save_teacher_outputs(run_dir, ctx)
        prescreen(ctx, study)
        left = cfg.search.trials - n_finished(study)
        n = min(pool.resolve(cfg.execution.workers, ctx.device, cfg.execution.backend), max(1, left))
        try:
            with pool.running(ctx, run_dir, n):  # helpers forked before any display thread starts
                if on_ready is not None:
                    on_ready(ctx, n_finished(study))
                backend_for(cfg.execution.backend).optimize(study, ctx, run_dir, list(callbacks))
        finally:
            trials, front = write_tables(run_dir, study, cfg.search.objectives)
        report = None
        if cfg.search.trust.enabled:
            if on_trust is not None:
                on_trust()
            report = run_trust(ctx, trials, front, run_dir)
    return SearchOutcome(run_dir, study, trials, front, ctx, report)


__all__ = ["SearchOutcome", "run_search", "write_tables"]
