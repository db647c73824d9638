"""The command line: thin commands over the package; errors become one line and exit code 2."""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from nas_student.errors import NasStudentError

app = typer.Typer(
    help="nas-student: search the best small student for a trained teacher "
         "(architecture search + knowledge distillation, Pareto-optimal under a cost budget).",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def _one_line_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NasStudentError as e:
            err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
    return wrapper  # type: ignore[return-value]


@app.command()
@_one_line_errors
def search(
    space: str = typer.Option("digits-cnn", help="Search space: a built-in name (see `nas-student spaces`) or a YAML path."),
    task: str = typer.Option("digits", help="Built-in task (data + teacher)."),
    trials: int = typer.Option(40, min=1, help="Trials to finish (complete or pruned); a resumed run goes on up to this count."),
    run: Optional[str] = typer.Option(None, help="Run name: results go to RESULTS_DIR/RUN. Default: TASK-SPACE-sSEED."),
    seed: int = typer.Option(0, help="Seed of the sampler, the data split and the teacher."),
    sampler: str = typer.Option("tpe", help="tpe (default), nsga2 or random."),
    objectives: str = typer.Option("accuracy,macs,params", help="Comma-separated: accuracy, agreement, macs, params, latency_ms, size_mb."),
    steps: int = typer.Option(300, min=1, help="Proxy budget: optimiser steps per student."),
    batch_size: int = typer.Option(64, min=1, help="Proxy batch size."),
    lr: float = typer.Option(3e-3, min=0, help="Proxy learning rate (Adam, cosine decay)."),
    temperature: float = typer.Option(4.0, min=0, help="KD temperature T."),
    alpha: float = typer.Option(0.9, min=0, help="Weight of the soft-target term alpha*T^2*KL."),
    beta: float = typer.Option(0.1, min=0, help="Weight of the hard-label cross-entropy."),
    macs_ratio: float = typer.Option(0.1, min=0, help="Feasible only if MACs <= this x teacher's (0 disables)."),
    params_ratio: float = typer.Option(0.1, min=0, help="Feasible only if params <= this x teacher's (0 disables)."),
    max_macs: Optional[int] = typer.Option(None, min=1, help="Absolute bound on MACs (on top of the ratio)."),
    max_params: Optional[int] = typer.Option(None, min=1, help="Absolute bound on parameters."),
    latency_ratio: Optional[float] = typer.Option(None, min=0, help="Feasible only if measured latency <= this x teacher's."),
    max_latency_ms: Optional[float] = typer.Option(None, min=0, help="Absolute bound on latency (ms per forward, --latency-batch)."),
    size_ratio: Optional[float] = typer.Option(None, min=0, help="Feasible only if fp32 size <= this x teacher's."),
    max_size_mb: Optional[float] = typer.Option(None, min=0, help="Absolute bound on fp32 size in MB."),
    latency_batch: int = typer.Option(1, min=1, help="Batch size at which latency is measured."),
    latency_threads: int = typer.Option(1, min=1, help="CPU threads while measuring latency."),
    device: str = typer.Option("auto", help="auto (GPU when present), cpu, cuda or mps."),
    results_dir: Path = typer.Option(Path("results"), help="Folder that holds the run folders."),
) -> None:
    """Search students for a teacher; ends with the Pareto front (table, pareto.csv, trials.csv).

    Running the same command again resumes the run: finished trials are kept, a trial that was
    interrupted is marked failed, and the search goes on up to --trials.
    """
    from nas_student.config import RunConfig
    from nas_student.distill import Budget
    from nas_student.validation import config_error_from

    try:
        cfg = RunConfig(
            run=run, task=task, space=space, results_dir=str(results_dir), device=device,
            budget=Budget(steps=steps, batch_size=batch_size, lr=lr, temperature=temperature,
                          alpha=alpha, beta=beta),
            constraints={"macs_ratio": macs_ratio or None, "params_ratio": params_ratio or None,
                         "latency_ratio": latency_ratio or None, "size_ratio": size_ratio or None,
                         "max_macs": max_macs, "max_params": max_params,
                         "max_latency_ms": max_latency_ms, "max_size_mb": max_size_mb},
            latency={"batch_size": latency_batch, "threads": latency_threads},
            search={"trials": trials, "sampler": sampler, "seed": seed,
                    "objectives": tuple(o.strip() for o in objectives.split(",") if o.strip())},
        )
    except ValidationError as e:
        raise config_error_from(e, file="command line", lines={}) from None
    from nas_student.cli_progress import run_with_progress
    from nas_student.cli_results import print_front, print_summary

    outcome = run_with_progress(cfg, out)
    print_front(outcome.front, outcome.study.user_attrs, outcome.run_dir)
    print_summary(outcome.trials, outcome.run_dir)


@app.command()
@_one_line_errors
def spaces() -> None:
    """List the built-in search spaces with their size (number of distinct architectures)."""
    from nas_student.spaces import builtin_spaces, load_space

    table = Table(title="Built-in search spaces")
    for col in ("name", "family", "architectures", "description"):
        table.add_column(col, justify="right" if col == "architectures" else "left")
    for name, path in builtin_spaces().items():
        s = load_space(str(path))
        size = s.size
        size_s = "continuous" if size == math.inf else ("too many to count" if size is None else f"{size:,}")
        table.add_row(name, s.family, size_s, s.description)
    out.print(table)


from nas_student import cli_cost, cli_results  # noqa: E402,F401  (register their commands)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
