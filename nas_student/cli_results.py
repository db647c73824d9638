"""Commands that read a finished (or running) search: pareto, and helpers to print results."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from nas_student.cli import _one_line_errors, app, out


@app.command()
@_one_line_errors
def pareto(run: str = typer.Argument(..., help="A run name (under --results-dir) or a run folder."),
           results_dir: Path = typer.Option(Path("results"), help="Folder that holds the run folders.")) -> None:
    """Print a run's Pareto front (works while the search is still running) and rewrite its CSVs."""
    from nas_student.search import write_tables
    from nas_student.search.optuna_backend import load_study

    run_dir = Path(run) if Path(run).is_dir() else results_dir / run
    study = load_study(run_dir)
    trials, front = write_tables(run_dir, study, study.user_attrs.get("objectives", ["accuracy", "macs", "params"]))
    print_front(front, study.user_attrs, run_dir)
    print_summary(trials, run_dir)


def print_front(front: Any, attrs: dict[str, Any], run_dir: Path) -> None:
    from nas_student.families.base import describe

    teacher = attrs.get("teacher", {})
    table = Table(title=f"Pareto front: {len(front)} students ({run_dir})")
    for col in ("trial", "val acc", "agree", "MACs", "params", "MACs %", "params %"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("architecture", overflow="fold")
    if teacher:
        table.add_row("teacher", f"{teacher.get('val_accuracy', math.nan):.4f}", "", f"{teacher['macs']:,}",
                      f"{teacher['params']:,}", "100", "100", "", style="dim")
    for r in front.itertuples():
        table.add_row(str(r.trial), f"{r.accuracy:.4f}", f"{r.agreement:.4f}", f"{int(r.macs):,}",
                      f"{int(r.params):,}", f"{100 * r.macs_ratio:.2f}", f"{100 * r.params_ratio:.2f}",
                      describe(json.loads(r.arch)))
    out.print(table)


def print_summary(trials: Any, run_dir: Path) -> None:
    n = len(trials)
    trained = int((trials["feasible"] & trials["duplicate_of"].isna()).sum())
    infeasible = int(((trials["state"] == "COMPLETE") & ~trials["feasible"]).sum())
    invalid = int((trials["state"] == "PRUNED").sum())
    dups = int(trials["duplicate_of"].notna().sum())
    failed = int((trials["state"] == "FAIL").sum())
    out.print(f"{n} trials: {trained} trained, {infeasible} over the cost bounds (not trained), "
              f"{invalid} breaking the space's rules, {dups} repeats (not retrained), {failed} failed.")
    out.print(f"Files: {run_dir / 'pareto.csv'}, {run_dir / 'trials.csv'}, {run_dir / 'study.db'}")
