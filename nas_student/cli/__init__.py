"""The command line: thin commands over the package; errors become one line and exit code 2.

One module per group of commands (search, cost, results, train), all on the app of
:mod:`nas_student.cli.app`; importing this package registers them all.
"""

from __future__ import annotations

# registered in this order: the order of `nas-student --help`
from nas_student.cli import (  # noqa: F401,I001
    cost_commands,
    results_commands,
    search_commands,  # noqa: F401,I001
    train_commands,
)
from nas_student.cli.app import app, err, one_line_errors, out

# Typer's command list keeps the docstrings' line breaks in rich mode (the command's own --help
# does not): give each command its first paragraph on one line as its short help.
for _info in app.registered_commands:
    if _info.short_help is None and _info.callback is not None and _info.callback.__doc__:
        _info.short_help = " ".join(_info.callback.__doc__.strip().split("\n\n")[0].split())


def main() -> None:
    app()


__all__ = ["app", "err", "main", "one_line_errors", "out"]
