"""Born-again generations of ``nas-student train --generations N`` (self-distillation).

Furlanello et al. 2018, "Born-Again Neural Networks" (ICML): a student of the same
architecture, distilled from a trained copy of itself, can beat it. Generation 1 is the usual
distilled student (phase ``kd``, taught by the teacher); generation ``g`` >= 2 (phase ``ban<g>``)
starts from a fresh initialisation and is distilled, with the same recipe, from generation
``g - 1`` of the same seed (its soft targets, and its features when the recipe distils
features). Each generation is checkpointed like every phase, so a killed run resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from nas_student.distill import evaluate, predict, train
from nas_student.families import build
from nas_student.tasks import Task
from nas_student.tasks.base import freeze


def kinds(generations: int) -> list[str]:
    """The phases after ``kd``: ``ban2`` .. ``ban<generations>``."""
    return [f"ban{g}" for g in range(2, generations + 1)]


def weights_file(out: Path, kind: str, seed: int) -> Path:
    """Where a generation's weights are kept (``kd`` is generation 1)."""
    return out / f"{kind}-s{seed}.pt"


def teacher_of(kind: str) -> str:
    """The phase whose student teaches generation ``kind``."""
    g = int(kind[3:])
    return "kd" if g == 2 else f"ban{g - 1}"


def run_generation(kind: str, arch: dict[str, Any], recipe: Any, task: Task, out: Path, seed: int,
                   x: torch.Tensor, y: torch.Tensor, device: torch.device, checkpoint_every: int,
                   on_step: Callable[[int], bool] | None) -> dict[str, Any]:
    """Train generation ``kind`` of seed ``seed`` from the previous one; save its weights."""
    g = int(kind[3:])
    previous = build(arch, task.io).to(device)
    previous.load_state_dict(torch.load(weights_file(out, teacher_of(kind), seed), map_location=device,
                                        weights_only=True))
    previous = freeze(previous)
    torch.manual_seed(seed + 7919 * (g - 1))  # a fresh initialisation for every generation
    model = build(arch, task.io).to(device)
    res = train(model, x, y, recipe, seed=seed, teacher_logits=predict(previous, x), teacher=previous,
                checkpoint=out / f"{kind}-s{seed}.ckpt", checkpoint_every=checkpoint_every, on_step=on_step)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights_file(out, kind, seed))
    return {"kind": kind, "seed": seed, "generation": g, "steps": res.steps, "wall_s": res.wall_s,
            "resumed_from": res.resumed_from, **evaluate(model, task.test.x, task.test.y)}
