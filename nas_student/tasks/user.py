"""A task from the user's own teacher and data (the run file's ``teacher`` and ``data``).

Everything is checked before any training: the files, the splits, that the teacher runs on
the inputs, and that its outputs match the number of classes in the labels.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from nas_student.config import RunConfig
from nas_student.distill.trainer import evaluate
from nas_student.families.base import ModelIO
from nas_student.tasks.base import Split, Task
from nas_student.tasks.data_files import DataError, from_factory, read_split
from nas_student.tasks.user_teacher import TeacherError, load_teacher


def _cut(train: Split, frac: float, seed: int) -> tuple[Split, Split]:
    """Cut ``frac`` of ``train`` off, stratified when every class has 2+ examples."""
    idx = np.arange(len(train))
    y = train.y.numpy()
    strat = y if len(np.unique(y)) > 1 and np.bincount(y).min(initial=2) >= 2 else None
    try:
        keep, cut = train_test_split(idx, test_size=frac, stratify=strat, random_state=seed)
    except ValueError:
        keep, cut = train_test_split(idx, test_size=frac, random_state=seed)
    return Split(train.x[keep], train.y[keep]), Split(train.x[cut], train.y[cut])


def _splits(cfg: RunConfig) -> dict[str, Split]:
    spec = cfg.data
    assert spec is not None  # noqa: S101 - guaranteed by RunConfig's validator
    if spec.factory:
        splits = from_factory(spec, cfg.trust_code)
    else:
        train, classes = read_split(spec.train or "", spec)
        splits = {"train": train}
        for name in ("val", "test"):
            path = getattr(spec, name)
            if path:
                splits[name] = read_split(path, spec, classes=classes)[0]
    fr_train, fr_val, fr_test = spec.split
    seed = cfg.search.seed
    if "test" not in splits:
        share = fr_test / (fr_train + fr_val + fr_test) if "val" not in splits else fr_test / (fr_train + fr_test)
        splits["train"], splits["test"] = _cut(splits["train"], share, seed)
    if "val" not in splits:
        splits["train"], splits["val"] = _cut(splits["train"], fr_val / (fr_train + fr_val), seed + 1)
    shapes = {n: tuple(s.x.shape[1:]) for n, s in splits.items()}
    if len(set(shapes.values())) != 1:
        raise DataError("splits have different input shapes: "
                        + ", ".join(f"{n} {list(v)}" for n, v in shapes.items()))
    for n, s in splits.items():
        if int(s.y.min()) < 0:
            raise DataError(f"data {n}: labels must be class indices >= 0 (got {int(s.y.min())})")
    return splits


def load_user_task(cfg: RunConfig, device: torch.device) -> Task:
    splits = _splits(cfg)
    train = splits["train"]
    n_classes = 1 + max(int(s.y.max()) for s in splits.values())
    teacher = load_teacher(cfg.teacher, trust=cfg.trust_code, device=device)  # type: ignore[arg-type]
    probe = train.x[:2].to(device)
    try:
        with torch.no_grad():
            out = teacher(probe)
    except TeacherError:
        raise
    except Exception as e:  # noqa: BLE001 - user model: one line
        msg = " ".join(str(e).split())[:200]
        raise TeacherError(f"the teacher cannot run on the data's inputs of shape {list(probe.shape)}: "
                           f"{type(e).__name__}: {msg}") from None
    if out.dim() != 2 or out.shape[0] != len(probe):
        raise TeacherError(f"the teacher's output has shape {list(out.shape)} for a batch of {len(probe)}; "
                           "expected (batch, classes) logits")
    if out.shape[1] != n_classes:
        raise TeacherError(f"the teacher has {out.shape[1]} outputs but the data's labels span "
                           f"{n_classes} classes (0..{n_classes - 1})")
    unlabelled = None
    if cfg.data and cfg.data.unlabelled:
        unlabelled = read_split(cfg.data.unlabelled, cfg.data, labelled=False)[0].x
        if tuple(unlabelled.shape[1:]) != tuple(train.x.shape[1:]):
            raise DataError(f"data.unlabelled: inputs of shape {list(unlabelled.shape[1:])}, "
                            f"but the labelled data has {list(train.x.shape[1:])}")
    info = {"test_accuracy": evaluate(teacher, splits["test"].x, splits["test"].y)["accuracy"],
            "cache": "user teacher", "n_train": len(train), "n_classes": n_classes}
    return Task(cfg.task, ModelIO(tuple(train.x.shape[1:]), n_classes), train, splits["val"],
                splits["test"], teacher, info, unlabelled=unlabelled)
