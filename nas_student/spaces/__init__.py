"""Search spaces: declared in YAML, usable by built-in name or by path."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from nas_student.errors import NasStudentError, UnknownNameError
from nas_student.spaces import auto
from nas_student.spaces.loader import load_space_file, parse_space
from nas_student.spaces.mixed import MixedSpace
from nas_student.spaces.space import Arch, RandomSuggester, Space, arch_hash

#: what a space file loads to: one family's space, or one that searches the family too
SearchSpace = Space | MixedSpace


def builtin_dir() -> Path:
    """Where the built-in spaces live: inside the installed package, or the repo's folder."""
    packaged = Path(str(resources.files("nas_student"))) / "search_spaces"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "search_spaces"


def builtin_spaces() -> dict[str, Path]:
    return {p.stem: p for p in sorted(builtin_dir().glob("*.yaml"))}


def resolve_space(name_or_path: str) -> Path:
    """A path if it looks like one (or exists), else a built-in name."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or "/" in name_or_path or p.is_file():
        return p
    spaces = builtin_spaces()
    if name_or_path not in spaces:
        raise UnknownNameError("space", name_or_path, list(spaces))
    return spaces[name_or_path]


def load_space(name_or_path: str, check: bool = True) -> SearchSpace:
    """A built-in space by name, or a space file; ``check=False``: see :func:`parse_space`."""
    if name_or_path == auto.AUTO:  # generated from a teacher by a search (objective.prepare)
        raise NasStudentError("space 'auto' is generated from the teacher when a search starts; "
                              "to see or keep it: nas-student spaces --auto")
    return load_space_file(resolve_space(name_or_path), check)


def fingerprint(space: SearchSpace) -> str:
    """A hash of what a space samples (families, parameters, rules; not its name, description
    or file), to tell whether a run's space changed under it."""
    branches = space.branches if isinstance(space, MixedSpace) else {space.family: space}
    what = sorted((f, repr(sorted(b.params.items())), repr(b.rules)) for f, b in branches.items())
    return hashlib.sha256(repr(what).encode()).hexdigest()[:16]


def load_run_space(space: str, run_dir: Path) -> SearchSpace:
    """The space a run searches: its setting, or the one it generated (``space: auto``)."""
    if space == auto.AUTO:
        path = run_dir / auto.FILE
        if not path.exists():
            raise NasStudentError(f"{run_dir}: no {auto.FILE}; the search that created the run writes it "
                                  "before its first trial")
        return load_space_file(path)
    return load_space(space)


__all__ = ["Arch", "auto", "load_space_file", "MixedSpace", "RandomSuggester", "SearchSpace", "Space", "arch_hash", "builtin_spaces", "fingerprint", "load_run_space", "load_space",
           "parse_space", "resolve_space"]
