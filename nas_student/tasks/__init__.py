"""Built-in tasks by name (the user's own data and teacher come through the run file)."""

from __future__ import annotations

from collections.abc import Callable

from nas_student.errors import UnknownNameError
from nas_student.families.base import ModelIO
from nas_student.tasks import digits, text
from nas_student.tasks.base import Split, Task

_TASKS: dict[str, Callable[..., Task]] = {"digits": digits.load, "text": text.load}
_IO: dict[str, ModelIO] = {"digits": digits.IO, "text": text.IO}


def task_names() -> list[str]:
    return sorted(_TASKS)


def task_io(name: str) -> ModelIO:
    """The model interface of a built-in task, without loading its data or teacher."""
    if name not in _IO:
        raise UnknownNameError("task", name, list(_IO))
    return _IO[name]


def load_task(name: str, *, seed: int = 0, device: str = "cpu") -> Task:
    """Load a built-in task and its (cached) teacher."""
    if name not in _TASKS:
        raise UnknownNameError("task", name, list(_TASKS))
    return _TASKS[name](seed=seed, device=device)


__all__ = ["Split", "Task", "load_task", "task_io", "task_names"]
