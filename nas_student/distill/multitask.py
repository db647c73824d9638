"""One teacher per task, answering as one multi-task model: their logits side by side.

A multi-task student (a shared trunk and one head per task; :attr:`ModelIO.heads`) learns
from single-task teachers, each task's head from its own teacher, as in Clark et al. (2019,
"BAM! Born-Again Multi-Task Networks for Natural Language Understanding", ACL). The losses
and metrics split both models' outputs per task (:func:`nas_student.distill.losses.kd_loss`
with ``heads``); to the rest of the product the teachers are one model. Its cost as priced
by the search is the sum of its members' (running every teacher) or, when the run asks for
it (``price_against: largest``), the largest member's.
"""

from __future__ import annotations

import torch
from torch import nn

from nas_student.errors import NasStudentError


class TaskTeachers(nn.Module):
    """Teachers of several tasks on the same inputs: ``forward`` concatenates their logits, one
    block per task in order; ``output_heads`` holds the blocks' sizes."""

    def __init__(self, teachers: list[nn.Module], heads: tuple[int, ...]) -> None:
        super().__init__()
        if len(teachers) < 2 or len(teachers) != len(heads):
            raise NasStudentError(f"a multi-task teacher needs one teacher per task (2 or more): "
                                  f"{len(teachers)} teachers for {len(heads)} tasks")
        self.teachers = nn.ModuleList(teachers)
        self.output_heads = tuple(heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([t(x) for t in self.teachers], dim=-1)
