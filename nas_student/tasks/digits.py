"""``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes).

Split 60/20/20 (train/val/test), stratified, by seed. Pixels scaled to [0, 1]. The teacher is
a residual CNN (the ``cnn`` family) trained here once and cached.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from nas_student.distill.trainer import Recipe
from nas_student.errors import NasStudentError
from nas_student.families.base import ModelIO
from nas_student.tasks.base import Split, Task, freeze
from nas_student.tasks.splits import split_indices
from nas_student.tasks.teacher_cache import builtin_teacher, outputs_prefix

IO = ModelIO((1, 8, 8), 10)
TEACHER_ARCH = {
    "family": "cnn", "stem_width": 32, "norm": "batch", "activation": "relu", "residual": True,
    "stages": [
        {"depth": 2, "width": 64, "kernel": 3, "downsample": "none"},
        {"depth": 2, "width": 128, "kernel": 3, "downsample": "stride"},
        {"depth": 2, "width": 192, "kernel": 3, "downsample": "stride"},
    ],
}
TEACHER_BUDGET = Recipe(steps=800, batch_size=64, lr=2e-3, weight_decay=1e-4, optimizer="adamw")


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """``sklearn.datasets.load_digits(return_X_y=True)``: the same file, read the same way, without
    importing scikit-learn (2 s) into every process that loads the task."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise NasStudentError("the digits task needs scikit-learn (its bundled digits); pip install scikit-learn")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    try:
        with gzip.open(path) as f:
            data = np.loadtxt(f, delimiter=",")
    except OSError as e:
        raise NasStudentError(f"the digits task: cannot read scikit-learn's bundled digits ({path}: {e})") from None
    return data[:, :-1], data[:, -1].astype(int)


def digits_splits(seed: int = 0) -> tuple[Split, Split, Split]:
    """Stratified 60/20/20 split of the digits, fixed by ``seed``."""
    x, y = load_digits()
    x = (x.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    tr, rest = split_indices(len(y), 0.4, seed, stratify=y)
    va, te = (rest[i] for i in split_indices(len(rest), 0.5, seed, stratify=y[rest]))

    def split(i: np.ndarray) -> Split:
        return Split(torch.from_numpy(x[i]), torch.from_numpy(y[i]).long())

    return split(tr), split(va), split(te)


def load(seed: int = 0, device: str = "cpu") -> Task:
    train_s, val_s, test_s = digits_splits(seed)
    teacher, meta = builtin_teacher("digits", IO, train_s, test_s, TEACHER_ARCH, TEACHER_BUDGET,
                                    seed=seed, device=device)
    return Task("digits", IO, train_s, val_s, test_s, freeze(teacher), meta, input_range=(0.0, 1.0),
                outputs_cache=outputs_prefix(meta))
