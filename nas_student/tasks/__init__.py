"""Built-in tasks by name (the user's own data and teacher come through the run file)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nas_student.errors import UnknownNameError
from nas_student.families.base import ModelIO
from nas_student.tasks import digits, mnist1d, multitask, paired, text
from nas_student.tasks.base import Split, Task

if TYPE_CHECKING:
    from nas_student.config import RunConfig

_TASKS: dict[str, Callable[..., Task]] = {"digits": digits.load, "mnist1d": mnist1d.load, "text": text.load,
                                          paired.NAME: paired.load, multitask.NAME: multitask.load}
_IO: dict[str, ModelIO] = {"digits": digits.IO, "mnist1d": mnist1d.IO, "text": text.IO, paired.NAME: paired.IO,
                           multitask.NAME: multitask.IO}


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


def task_for_config(cfg: "RunConfig", device: str = "cpu") -> Task:
    """The task a run configuration names: a built-in one, or the user's teacher and data;
    with ``data_free.enabled`` its training inputs are synthesised from the teacher."""
    if cfg.custom_task:
        import torch

        from nas_student.tasks.user import load_user_task

        task = load_user_task(cfg, torch.device(device))
    else:
        task = load_task(cfg.task, seed=cfg.search.seed, device=device)
    if task.io.heads:
        _check_multi_task(cfg, task)
    if cfg.data_free.enabled:  # train on inputs synthesised from the teacher alone
        from nas_student.tasks.datafree import data_free_task

        settings = cfg.data_free
        if settings.input_range is None and task.input_range is not None:
            settings = settings.model_copy(update={"input_range": task.input_range})
        task = data_free_task(task, settings, seed=cfg.search.seed, device=device)
    return task


def _check_multi_task(cfg: "RunConfig", task: Task) -> None:
    """A multi-task student learns from each task's teacher on real, labelled inputs, outputs only."""
    from nas_student.errors import NasStudentError

    refused = [what for what, on in (("data_free (inputs synthesised from one teacher)", cfg.data_free.enabled),
                                     ("budget.labelled_fraction < 1", cfg.budget.labelled_fraction < 1),
                                     ("budget.features / budget.attention", cfg.budget.uses_teacher_model)) if on]
    if refused:
        raise NasStudentError(f"task {task.name!r} is multi-task ({', '.join(task.io.head_names)}): it distils each "
                              f"task's outputs from its teacher on labelled data; {refused[0]} is for one task")


__all__ = ["Split", "Task", "load_task", "task_for_config", "task_io", "task_names"]
