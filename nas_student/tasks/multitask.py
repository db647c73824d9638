"""``mnist1d-multitask``: two tasks on the same MNIST-1D signals, one teacher each, for one
multi-task student (a shared trunk and a head per task; Caruana 1997, "Multitask Learning";
distilled from single-task teachers as in Clark et al. 2019, "BAM! Born-Again Multi-Task
Networks").

- ``digit``: the signal's digit (10 classes), the built-in ``mnist1d`` task and its teacher.
- ``shear``: the slope the generator added across the signal, in three equal bins of its
  range (rising, level, falling). The generator draws it independently of the digit
  (``mnist1d.dataset`` records it); its teacher is the same residual CNN as the digit's,
  trained on these labels (about 78 % test accuracy: the bins' edges are ambiguous, so this
  task has headroom for distillation).

Labels are ``(N, 2)``: digit, shear. The students' outputs are 13 logits, the digit's 10 then
the shear's 3 (:attr:`ModelIO.heads`). Splits are the ``mnist1d`` task's, row for row.
"""

from __future__ import annotations

import numpy as np

from nas_student.distill.multitask import TaskTeachers
from nas_student.families.base import ModelIO
from nas_student.tasks import mnist1d
from nas_student.tasks.base import Split, Task, freeze
from nas_student.tasks.teacher_cache import builtin_teacher

NAME = "mnist1d-multitask"
HEADS = {"digit": 10, "shear": 3}
IO = ModelIO(mnist1d.IO.input_shape, sum(HEADS.values()), heads=tuple(HEADS.values()), head_names=tuple(HEADS))
#: the shear coefficient's range (the generator's ``shear_scale`` 0.75 times a draw in [-0.5, 0.5))
#: cut in three equal bins
SHEAR_EDGES = (-0.125, 0.125)
#: the shear teacher's training: the digit teacher's
SHEAR_TEACHER_BUDGET = mnist1d.TEACHER_BUDGET


def shear_class(coeff: np.ndarray) -> np.ndarray:
    """0 rising, 1 level, 2 falling (the generator subtracts ``coeff`` times a ramp)."""
    return np.digitize(coeff, SHEAR_EDGES).astype(np.int64)


def _both(arrays: dict[str, np.ndarray], suffix: str) -> np.ndarray:
    return np.stack([arrays[f"y{suffix}"], shear_class(arrays[f"shear{suffix}"])], axis=1)


def _one(s: Split, column: int) -> Split:
    return Split(s.x, s.y[:, column].contiguous())


def load(seed: int = 0, device: str = "cpu") -> Task:
    train, val, test = mnist1d.mnist1d_splits(seed, labels=_both)
    digit = mnist1d.load(seed=seed, device=device)
    shear_teacher, meta = builtin_teacher("mnist1d-shear", ModelIO(IO.input_shape, HEADS["shear"]),
                                          _one(train, 1), _one(test, 1), mnist1d.TEACHER_ARCH,
                                          SHEAR_TEACHER_BUDGET, seed=seed, device=device)
    teacher = TaskTeachers([digit.teacher, freeze(shear_teacher)], IO.heads).eval()
    caches = {digit.teacher_info.get("cache", "?"), meta.get("cache", "?")}
    info = {"tasks": {"digit": digit.teacher_info, "shear": meta}, "data": digit.teacher_info.get("data"),
            "test_accuracy": (digit.teacher_info["test_accuracy"] + meta["test_accuracy"]) / 2,
            "cache": caches.pop() if len(caches) == 1 else f"digit {digit.teacher_info.get('cache')}, "
                                                           f"shear {meta.get('cache')}"}
    return Task(NAME, IO, train, val, test, teacher, info, input_range=digit.input_range)
