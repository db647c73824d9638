"""A data-free view of a task: synthetic inputs (:mod:`nas_student.distill.datafree`) stand in
for the training split, so a search or a training run needs no training data.

What is real and what is synthetic in the view:

- ``train``: synthetic inputs; labels are the teacher's top-1 (there are none). The KD loss
  takes its soft targets from the teacher on these inputs, as it does on real ones.
- ``val`` (where the search scores students): with ``validation: real`` the task's own
  validation split, the only real data the search then needs; with ``validation: synthetic``
  held-out synthetic inputs made apart from the training ones (another seed), labelled by the
  teacher, so the search's ``accuracy`` is agreement with the teacher and no real data is used.
- ``test``: left as it is (the real test split, for the final report only; a search never
  reads it).
"""

from __future__ import annotations

import dataclasses
import time

import torch
from torch import nn

from nas_student.distill.datafree import DataFreeSettings, Progress, synthesize
from nas_student.distill.trainer import predict
from nas_student.errors import NasStudentError
from nas_student.tasks.base import Split, Task

#: offset between the seeds of the training and the held-out validation inputs.
VAL_SEED_OFFSET = 1_000_003


def teacher_split(teacher: nn.Module, x: torch.Tensor) -> Split:
    """``x`` labelled by the teacher's top-1 (per position for a language model)."""
    return Split(x, predict(teacher, x).argmax(-1))


def data_free_task(task: Task, settings: DataFreeSettings, *, seed: int = 0,
                   device: str | torch.device = "cpu", progress: Progress | None = None) -> Task:
    """``task`` with a synthetic training split (and validation split, if the settings say
    so); the teacher and the test split are the task's own. ``teacher_info["data_free"]``
    records the synthesis: sample counts, wall seconds, the teacher's mean confidence."""
    if task.cross_modal:
        raise NasStudentError(f"task {task.name!r} is cross-modal: inputs synthesised from its teacher would be "
                              "of the teacher's modality, not the student's; --data-free needs one modality")
    t0 = time.perf_counter()
    x = synthesize(task.teacher, task.io, settings.samples, settings, seed=seed, device=device,
                   progress=progress)
    train_s = teacher_split(task.teacher, x)
    val_s = task.val
    if settings.validation == "synthetic":
        xv = synthesize(task.teacher, task.io, settings.val_samples, settings,
                        seed=seed + VAL_SEED_OFFSET, device=device)
        val_s = teacher_split(task.teacher, xv)
    probs = predict(task.teacher, x).softmax(-1)
    info = {
        "samples": settings.samples,
        "validation": settings.validation,
        "val_samples": len(val_s) if settings.validation == "synthetic" else 0,
        "synthesis_s": time.perf_counter() - t0,
        "teacher_confidence": float(probs.max(-1).values.mean()),
    }
    return dataclasses.replace(task, train=train_s, val=val_s, unlabelled=None,
                               teacher_info={**task.teacher_info, "data_free": info})
