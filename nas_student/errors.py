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


def is_disk_error(e: BaseException) -> bool:
    """Whether ``e`` says the disk is full, read-only or over quota (an OSError, or SQLite's own
    words through SQLAlchemy): a condition of the machine that stops a search, never a student's
    failure."""
    import errno

    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
        return True
    text = str(e).lower()
    return "database or disk is full" in text or "readonly database" in text or "no space left" in text


def disk_error_line(e: BaseException, where: str) -> str:
    """The one line that stops a search on a disk error: what, where, and how to go on."""
    what = (e.strerror or str(e)) if isinstance(e, OSError) else " ".join(str(e).split())[:200]
    path = getattr(e, "filename", None) or where
    return (f"{path}: {what.lower()}; the search stopped and its study is intact: free space (or make the "
            "folder writable) and run the same command again to resume")
