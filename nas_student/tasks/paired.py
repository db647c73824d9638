"""``mnist1d-from-digits``: cross-modal distillation (Gupta, Hoffman and Malik, "Cross Modal
Distillation for Supervision Transfer", CVPR 2016): the teacher sees one modality, the student
another, and the two are paired sample by sample.

The teacher is the built-in ``digits`` CNN, on 8x8 images. The student sees MNIST-1D signals
(the built-in ``mnist1d`` task's, 40 samples), the same ten digits drawn as 1-D signals. A
training or validation pair is an image and a signal of the same digit: for each class, the
split's k-th image goes with its k-th signal, so a split has as many pairs as the smaller
modality has samples of each class (the digits: about 108 training images per class). The
student trains on its signals with the teacher's soft targets on the paired images. The test
split is mnist1d's whole test split (4,000 signals: the student is scored on signals alone);
the teacher's test view pairs each test signal with a test image of its digit, in turn.

Its seed picks both tasks' splits and teachers, as for every built-in task.
"""

from __future__ import annotations

import torch

from nas_student.errors import NasStudentError
from nas_student.tasks import digits, mnist1d
from nas_student.tasks.base import Split, Task

NAME = "mnist1d-from-digits"
IO = mnist1d.IO


def pair(images: Split, signals: Split, *, cycle: bool = False) -> tuple[Split, torch.Tensor]:
    """The signals paired with images of their class, class by class in order. Without
    ``cycle``, as many pairs per class as the scarcer modality has; with it, every signal, its
    class's images reused in turn. Returns (the student's split, the teacher's inputs)."""
    keep, view = [], []
    for c in torch.unique(signals.y).tolist():
        sig = torch.nonzero(signals.y == c).flatten()
        img = torch.nonzero(images.y == c).flatten()
        if not len(img):
            raise NasStudentError(f"{NAME}: class {c} has signals but no image to pair them with; "
                                  "cross-modal distillation needs every sample paired")
        if not cycle:
            sig = sig[: len(img)]
        keep.append(sig)
        view.append(img[torch.arange(len(sig)) % len(img)])
    rows, imgs = torch.cat(keep), torch.cat(view)
    order = torch.argsort(rows)  # the signals in their split's order
    rows, imgs = rows[order], imgs[order]
    return Split(signals.x[rows], signals.y[rows]), images.x[imgs]


def load(seed: int = 0, device: str = "cpu") -> Task:
    teacher_task = digits.load(seed=seed, device=device)
    student_task = mnist1d.load(seed=seed, device=device)
    train, train_view = pair(teacher_task.train, student_task.train)
    val, val_view = pair(teacher_task.val, student_task.val)
    test, test_view = pair(teacher_task.test, student_task.test, cycle=True)
    info = {**teacher_task.teacher_info, "teacher_task": "digits", "student_task": "mnist1d",
            "pairs": {"train": len(train), "val": len(val), "test": len(test)}}
    return Task(NAME, IO, train, val, test, teacher_task.teacher, info,
                input_range=student_task.input_range,
                teacher_view={"train": train_view, "val": val_view, "test": test_view}, teacher_io=digits.IO)
