"""The registry of model families. ``build(arch, io)`` is the single entry point."""

from __future__ import annotations

from typing import Any

from nas_student.errors import NasStudentError, UnknownNameError
from nas_student.families.base import Family, ModelIO, TappedModel

_FAMILIES: dict[str, Family] = {}


def register(cls: type[Family]) -> type[Family]:
    """Class decorator: add a family; a name registered twice is an error, not an overwrite."""
    if cls.name in _FAMILIES:
        raise ValueError(f"family {cls.name!r} is already registered")
    _FAMILIES[cls.name] = cls()
    return cls


def get_family(name: str) -> Family:
    if name not in _FAMILIES:
        raise UnknownNameError("family", name, list(_FAMILIES))
    return _FAMILIES[name]


def family_names() -> list[str]:
    return sorted(_FAMILIES)


def build(arch: dict[str, Any], io: ModelIO) -> TappedModel:
    """Build the ``nn.Module`` an architecture describes, fitted to the task's interface."""
    if not isinstance(arch, dict) or "family" not in arch:
        raise NasStudentError("an architecture is a mapping with a 'family' key")
    family = get_family(arch["family"])
    problem = family.check_arch(arch)
    if problem is not None:
        path, rule = problem
        where = ".".join(map(str, path))
        raise NasStudentError(f"architecture for family {arch['family']!r}: "
                              + (f"{where}: " if where else "") + rule)
    model = family.build(arch, io)
    if io.heads:  # multi-task: the losses and metrics split the outputs per task
        model.output_heads = io.heads
    return model


from nas_student.families import cnn, mlp, transformer, rnn, hybrid  # noqa: E402,F401  (registers the built-in families)

__all__ = ["Family", "ModelIO", "TappedModel", "build", "family_names", "get_family", "register"]
