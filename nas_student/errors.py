"""One exception hierarchy: the CLI prints any of these as one line and exits non-zero."""

from __future__ import annotations

from typing import Any


class NasStudentError(Exception):
    """Base of every error nas-student reports to users as one line."""


class ConfigError(NasStudentError):
    """A user file (space, run file) breaks a rule: names the file, line, key, rule and value."""

    def __init__(
        self,
        rule: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        value: Any = ...,
    ) -> None:
        self.rule, self.file, self.line, self.key, self.value = rule, file, line, key, value
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        what = f"{key}: " if key else ""
        got = "" if value is ... else f" (got {value!r})"
        super().__init__(f"{where}{what}{rule}{got}")


class UnknownNameError(NasStudentError):
    """A name (family, task, sampler, space) that is not registered; lists the valid ones."""

    def __init__(self, kind: str, name: str, valid: list[str]) -> None:
        import difflib

        close = difflib.get_close_matches(name, valid, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}{hint}")
