"""What every command shares: the Typer app, the output consoles and the handler that turns an
error into one line and exit code 2."""

from __future__ import annotations

import functools
import os
import sys
from typing import Any, Callable, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from nas_student.errors import NasStudentError, is_disk_error

app = typer.Typer(
    help="nas-student: search the best small student for a trained teacher "
         "(architecture search + knowledge distillation, Pareto-optimal under a cost budget).",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
# Piped to a file or a CI log (no terminal, no COLUMNS): rich would cut tables at 80 columns;
# a log has no width, so tables get room for every column.
out = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def one_line_errors(fn: F) -> F:
    """Run a command; a NasStudentError, a bad path or a full or read-only disk becomes
    ``error: ...`` and exit code 2."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NasStudentError as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except OSError as e:
            if not isinstance(e, (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
                                  PermissionError)) and not is_disk_error(e):
                raise
            # a path the user gave (or its folder) is not what it must be: say which, in one line
            where = f"{e.filename}: " if e.filename else ""
            err.print(f"[bold red]error:[/] {escape(where + (e.strerror or str(e)).lower())}", highlight=False,
                      soft_wrap=True)
            raise typer.Exit(2) from None
    return wrapper  # type: ignore[return-value]


