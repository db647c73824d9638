"""``mnist1d``: MNIST-1D (Greydanus, "Scaling down deep learning", 2020, arXiv:2011.14439), 10
classes of 40-sample 1-D signals, a task small enough for a CPU on which architecture matters.

The data is made by the ``mnist1d`` package's own generator (``make_dataset``, never its
download path): 20,000 signals from the package's default arguments (generator seed 42), the
last 4,000 the test split (one test signal = 0.025 points), 2,000 of the rest cut as the
validation split by the run's seed (stratified). The generator reseeds numpy's and Python's
global random state; it runs with both saved and restored, so importing or loading the task
leaves a caller's random streams untouched. It also records, without changing a draw, the
shear it gave each signal (the slope added across the signal, ``shear``: the second task of
``mnist1d-multitask``; see :func:`_generate`). The arrays are cached under
``$NAS_STUDENT_CACHE/data`` by a hash of the generator's arguments and package version, with
their sha256 (a cache that does not match is made again).

The teacher is a residual 1-D CNN (the ``cnn1d`` family) trained here once and cached like
every built-in teacher.
"""

from __future__ import annotations

import hashlib
import json
import random
from importlib import metadata
from typing import Any, Callable

import numpy as np
import torch

from nas_student.distill.trainer import Recipe
from nas_student.errors import NasStudentError
from nas_student.families.base import ModelIO
from nas_student.tasks.base import Split, Task, freeze
from nas_student.tasks.splits import split_indices
from nas_student.tasks.teacher_cache import (
    atomic_write,
    builtin_teacher,
    cache_dir,
    cache_key,
    outputs_prefix,
    save_npz,
)

LENGTH = 40
SAMPLES = 20_000
VAL = 2_000
#: the generator's arguments that differ from the package's defaults
GENERATOR = {"num_samples": SAMPLES, "train_split": 0.8, "seed": 42}

IO = ModelIO((1, LENGTH), 10)
TEACHER_ARCH = {
    "family": "cnn1d", "stem_width": 32, "stem_kernel": 5, "norm": "batch", "activation": "relu",
    "residual": True,
    "stages": [
        {"depth": 2, "width": 32, "kernel": 5, "downsample": "none"},
        {"depth": 2, "width": 64, "kernel": 5, "downsample": "stride"},
        {"depth": 2, "width": 128, "kernel": 3, "downsample": "stride"},
    ],
}
TEACHER_BUDGET = Recipe(steps=1000, batch_size=128, lr=3e-3, weight_decay=1e-4, optimizer="adamw")


ARRAYS = ("x", "y", "x_test", "y_test", "shear", "shear_test")


def _generate() -> dict[str, np.ndarray]:
    """Run the package's generator with the global random state saved and restored.

    The shear of each signal is read by wrapping the package's ``shear`` step while it runs:
    the wrapper reads the uniform draw the step is about to make, puts the random state back,
    and calls the step, so every draw and every signal are the package's own. The generator
    then shuffles the signals with the next draw, ``permutation(N)``; replayed from the state
    after the last signal, it orders the shears like the signals (checked: it must order the
    class labels exactly as the generator returned them)."""
    import sys

    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:  # pragma: no cover - a dependency of this package
        raise NasStudentError(f"mnist1d task: the 'mnist1d' package is missing ({e}); pip install mnist1d") from None
    steps = sys.modules["mnist1d.transform"]  # (the package's __init__ shadows the module's name)
    args = get_dataset_args()
    for k, v in GENERATOR.items():
        setattr(args, k, v)
    shear, drawn, after = steps.shear, [], []

    def recorded(x: np.ndarray, scale: float = 10) -> np.ndarray:
        state = np.random.get_state()
        drawn.append(scale * (np.random.rand() - 0.5))  # what shear() computes from its draw
        np.random.set_state(state)
        out = shear(x, scale)
        after[:] = [np.random.get_state()]
        return out

    np_state, py_state = np.random.get_state(), random.getstate()
    steps.shear = recorded
    try:
        d = make_dataset(args)
        np.random.set_state(after[0])
        order = np.random.permutation(len(drawn))
    finally:
        steps.shear = shear
        np.random.set_state(np_state)
        random.setstate(py_state)
    per_class = len(drawn) // 10
    if not np.array_equal(np.repeat(np.arange(10), per_class)[order], np.concatenate([d["y"], d["y_test"]])):
        raise NasStudentError("mnist1d task: cannot follow this mnist1d version's generator to record the shears")
    coeff, cut = np.asarray(drawn, dtype=np.float32)[order], len(d["y"])
    return {"x": d["x"].astype(np.float32), "y": d["y"].astype(np.int64),
            "x_test": d["x_test"].astype(np.float32), "y_test": d["y_test"].astype(np.int64),
            "shear": coeff[:cut], "shear_test": coeff[cut:]}


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        h.update(k.encode() + str(arrays[k].shape).encode() + str(arrays[k].dtype).encode())
        h.update(np.ascontiguousarray(arrays[k]).tobytes())
    return h.hexdigest()


def dataset() -> dict[str, np.ndarray]:
    """The generated arrays (:data:`ARRAYS`), from the cache when it verifies."""
    version = metadata.version("mnist1d")
    key = cache_key({"generator": GENERATOR, "mnist1d": version, "arrays": ARRAYS})
    folder = cache_dir() / "data"
    path, meta = folder / f"mnist1d-{key}.npz", folder / f"mnist1d-{key}.json"
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ARRAYS}
        if _digest(arrays) == json.loads(meta.read_text())["sha256"]:
            return arrays
    except Exception:  # noqa: BLE001 - missing, unreadable or altered: generate again
        pass
    arrays = _generate()
    folder.mkdir(parents=True, exist_ok=True)
    # the checksum first: a reader that finds new arrays beside an old checksum makes them again
    atomic_write(meta, lambda p: p.write_text(json.dumps({"sha256": _digest(arrays), "generator": GENERATOR,
                                                          "mnist1d": version})))
    atomic_write(path, lambda p: save_npz(p, arrays))
    return arrays


def mnist1d_splits(seed: int = 0, labels: Callable[[dict[str, np.ndarray], str], np.ndarray] | None = None
                   ) -> tuple[Split, Split, Split]:
    """Train / validation (2,000, stratified by digit, by ``seed``) / test (the generator's last
    4,000). ``labels(arrays, suffix)`` gives other labels than the digit (suffix ``""`` for the
    training pool, ``"_test"`` for the test split), row for row with ``x``."""
    d = dataset()
    tr, va = split_indices(len(d["y"]), VAL, seed, stratify=d["y"])
    y, y_test = (d["y"], d["y_test"]) if labels is None else (labels(d, ""), labels(d, "_test"))

    def split(x: np.ndarray, y: np.ndarray) -> Split:
        return Split(torch.from_numpy(x.reshape(-1, 1, LENGTH).copy()), torch.from_numpy(y.copy()))

    return split(d["x"][tr], y[tr]), split(d["x"][va], y[va]), split(d["x_test"], y_test)


def load(seed: int = 0, device: str = "cpu") -> Task:
    train_s, val_s, test_s = mnist1d_splits(seed)
    teacher, meta = builtin_teacher("mnist1d", IO, train_s, test_s, TEACHER_ARCH, TEACHER_BUDGET,
                                    seed=seed, device=device)
    info: dict[str, Any] = {**meta, "data": {"generator": GENERATOR, "mnist1d": metadata.version("mnist1d")}}
    return Task("mnist1d", IO, train_s, val_s, test_s, freeze(teacher), info, outputs_cache=outputs_prefix(meta))
