"""The mutual-learning phase of ``nas-student train --mutual K``: a cohort of K copies of the
student (different initialisations) trained together (:mod:`nas_student.distill.mutual`),
each from the teacher, the labels and the others; every member is scored and saved."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from nas_student.distill import evaluate
from nas_student.distill.mutual import train_mutual
from nas_student.families import build
from nas_student.tasks import Task

#: the weight of the peers' term against the recipe's KD + CE loss (Zhang et al. use 1)
PEER_WEIGHT = 1.0


def run_cohort(arch: dict[str, Any], recipe: Any, task: Task, out: Path, seed: int, size: int,
               x: torch.Tensor, y: torch.Tensor, teacher_logits: torch.Tensor, device: torch.device,
               checkpoint_every: int, on_step: Callable[[int], bool] | None) -> dict[str, Any]:
    models = []
    for i in range(size):
        torch.manual_seed(seed + 104729 * i)  # member 0 starts where the plain `kd` student does
        models.append(build(arch, task.io).to(device))
    res = train_mutual(models, x, y, recipe, teacher_logits=teacher_logits, peer_weight=PEER_WEIGHT, seed=seed,
                       checkpoint=out / f"mutual-s{seed}.ckpt", checkpoint_every=checkpoint_every, on_step=on_step)
    members = []
    for i, m in enumerate(models):
        torch.save({k: v.detach().cpu() for k, v in m.state_dict().items()}, out / f"mutual-s{seed}-{i}.pt")
        members.append(evaluate(m, task.test.x, task.test.y))
    acc = [m["accuracy"] for m in members]
    return {"kind": "mutual", "seed": seed, "cohort": size, "steps": res[0].steps, "wall_s": res[0].wall_s,
            "resumed_from": res[0].resumed_from, "members": members,
            "accuracy": statistics.mean(acc), "best_accuracy": max(acc)}
