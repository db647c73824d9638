"""A task from the user's own teacher and data (the run file's ``teacher`` and ``data``).

Everything is checked before any training: the files, the splits, that the teacher runs on
the inputs, and that its outputs match the number of classes in the labels.
"""

from __future__ import annotations

import numpy as np
import torch

from nas_student.config import RunConfig
from nas_student.distill.losses import IGNORE_INDEX
from nas_student.distill.trainer import evaluate
from nas_student.families.base import ModelIO
from nas_student.tasks.base import Split, Task
from nas_student.tasks.data_files import DataError, from_factory, read_split
from nas_student.tasks.splits import split_indices
from nas_student.tasks.user_teacher import TeacherError, load_teacher

#: the fewest examples from which validation and test splits are cut (each split needs a few)
MIN_TO_CUT = 10


def _cut(train: Split, frac: float, seed: int, name: str) -> tuple[Split, Split]:
    """Cut ``frac`` of ``train`` off, stratified when every class has 2+ examples."""
    if not 0 < frac < 1:
        raise DataError(f"data.split: the {name} fraction is 0 but no data.{name} file is given; "
                        f"give a fraction above 0 or the file")
    y = train.y.numpy()
    counts = np.unique(y, return_counts=True)[1] if y.ndim == 1 else np.array([])
    strat = y if len(counts) > 1 and counts.min() >= 2 else None
    try:
        keep, cut = split_indices(len(train), frac, seed, stratify=strat)
    except ValueError:
        keep, cut = split_indices(len(train), frac, seed)
    return Split(train.x[keep], train.y[keep]), Split(train.x[cut], train.y[cut])


def _next_tokens(s: Split, where: str) -> Split:
    """Language modelling: targets are the inputs shifted by one, unless given."""
    if s.x.is_floating_point() or s.x.dim() != 2:
        raise DataError(f"data {where}: kind lm needs integer token ids of shape (N, L), "
                        f"got {s.x.dtype} {list(s.x.shape)}")
    if int(s.y.min()) == -1 and s.y.dim() == 1:  # no labels given
        return Split(s.x[:, :-1].contiguous(), s.x[:, 1:].contiguous())
    if s.y.shape != s.x.shape:
        raise DataError(f"data {where}: lm targets must have the inputs' shape {list(s.x.shape)}, "
                        f"got {list(s.y.shape)}")
    return s


def _splits(cfg: RunConfig) -> dict[str, Split]:
    spec = cfg.data
    assert spec is not None  # noqa: S101 - guaranteed by RunConfig's validator
    lm = spec.kind == "lm"
    if spec.factory:
        splits = from_factory(spec, cfg.trust_code)
    else:
        train, classes = read_split(spec.train or "", spec, labelled=not lm)
        splits = {"train": train}
        for name in ("val", "test"):
            path = getattr(spec, name)
            if path:
                splits[name] = read_split(path, spec, classes=classes, labelled=not lm)[0]
    if lm:
        splits = {n: _next_tokens(s, n) for n, s in splits.items()}
    fr_train, fr_val, fr_test = spec.split
    seed = cfg.search.seed
    cut = [n for n in ("val", "test") if n not in splits]
    if cut and len(splits["train"]) < MIN_TO_CUT:
        raise DataError(f"{spec.train or 'data.train'}: too little data: {len(splits['train'])} example(s), but cutting the "
                        f"{' and '.join(cut)} split{'s' if len(cut) > 1 else ''} from it needs at least {MIN_TO_CUT}; "
                        "add examples, or give data.val and data.test")
    if "test" not in splits:
        share = fr_test / (fr_train + fr_val + fr_test) if "val" not in splits else fr_test / (fr_train + fr_test)
        splits["train"], splits["test"] = _cut(splits["train"], share, seed, "test")
    if "val" not in splits:
        splits["train"], splits["val"] = _cut(splits["train"], fr_val / (fr_train + fr_val), seed + 1, "val")
    shapes = {n: tuple(s.x.shape[1:]) for n, s in splits.items()}
    if len(set(shapes.values())) != 1:
        raise DataError("splits have different input shapes: "
                        + ", ".join(f"{n} {list(v)}" for n, v in shapes.items()))
    for n, s in splits.items():
        low = int(s.y.min())
        if low < 0 and not (lm and low == IGNORE_INDEX):
            raise DataError(f"data {n}: labels must be class indices >= 0 (got {low})"
                            + (f"; padding is {IGNORE_INDEX}" if lm else ""))
    return splits


def _io(cfg: RunConfig, splits: dict[str, Split]) -> ModelIO:
    """The students' interface, from the data alone (checked against the teacher after)."""
    spec, train = cfg.data, splits["train"]
    shape = tuple(train.x.shape[1:])
    names = spec.labels  # type: ignore[union-attr]
    if spec.kind != "lm" and any(s.y.dim() != (2 if len(names) > 1 else 1) for s in splits.values()):  # type: ignore[union-attr]
        bad = next(n for n, s in splits.items() if s.y.dim() != (2 if len(names) > 1 else 1))
        raise DataError(f"data {bad}: labels of shape {list(splits[bad].y.shape)}; expected one class per example"
                        + (f" for each of the {len(names)} tasks {names}" if len(names) > 1 else ""))
    if len(names) > 1:  # several tasks: one head of outputs per task
        heads = tuple(1 + max(int(s.y[:, i].max()) for s in splits.values()) for i in range(len(names)))
        if not train.x.is_floating_point():
            vocab = spec.vocab_size or 1 + max(int(s.x.max()) for s in splits.values())  # type: ignore[union-attr]
            return ModelIO(shape, sum(heads), input_dtype="int64", vocab_size=vocab, heads=heads,
                           head_names=tuple(names))
        return ModelIO(shape, sum(heads), heads=heads, head_names=tuple(names))
    if train.x.is_floating_point():
        n_classes = 1 + max(int(s.y.max()) for s in splits.values())
        return ModelIO(shape, n_classes)
    vocab = spec.vocab_size or 1 + max(int(s.x.max()) for s in splits.values())  # type: ignore[union-attr]
    if spec.kind == "lm":  # type: ignore[union-attr]
        return ModelIO(shape, vocab, input_dtype="int64", vocab_size=vocab, per_token=True, causal=True)
    n_classes = 1 + max(int(s.y.max()) for s in splits.values())
    return ModelIO(shape, n_classes, input_dtype="int64", vocab_size=vocab)


def load_user_task(cfg: RunConfig, device: torch.device) -> Task:
    splits = _splits(cfg)
    train = splits["train"]
    io = _io(cfg, splits)
    probe = train.x[:2].to(device)
    if cfg.teachers:  # several: each checked as if it were the only one, then one model
        from nas_student.distill.ensemble import TeacherEnsemble
        from nas_student.distill.multitask import TaskTeachers

        members = []
        for i, spec in enumerate(cfg.teachers):
            own = ModelIO(io.input_shape, io.heads[i], io.input_dtype, io.vocab_size) if io.heads else io
            try:
                members.append(_checked_teacher(load_teacher(spec, trust=cfg.trust_code, device=device), probe, own))
            except TeacherError as e:
                task = f" (task {io.head_names[i]!r})" if io.heads else ""
                raise TeacherError(f"teachers[{i}]{task}: {e}") from None
        teacher = (TaskTeachers(members, io.heads) if io.heads else TeacherEnsemble(members, cfg.combine)).eval()
    else:
        teacher = _checked_teacher(load_teacher(cfg.teacher, trust=cfg.trust_code, device=device), probe, io)  # type: ignore[arg-type]
    unlabelled = None
    if cfg.data and cfg.data.unlabelled:
        unlabelled = read_split(cfg.data.unlabelled, cfg.data, labelled=False)[0].x
        if tuple(unlabelled.shape[1:]) != tuple(train.x.shape[1:]):
            raise DataError(f"data.unlabelled: inputs of shape {list(unlabelled.shape[1:])}, "
                            f"but the labelled data has {list(train.x.shape[1:])}")
    info = {"test_accuracy": evaluate(teacher, splits["test"].x, splits["test"].y)["accuracy"],
            "cache": "user teacher", "n_train": len(train), "n_classes": io.num_outputs,
            "teachers": len(cfg.teachers or [cfg.teacher]), "combine": cfg.combine if cfg.teachers else None}
    return Task(cfg.task, io, train, splits["val"], splits["test"], teacher, info,
                unlabelled=unlabelled, kind="lm" if io.per_token else "classification")


def _checked_teacher(teacher: torch.nn.Module, probe: torch.Tensor, io: ModelIO) -> torch.nn.Module:
    """``teacher`` if it runs on the data's inputs and gives one logit per class (or token)."""
    n_classes = io.num_outputs
    try:
        with torch.no_grad():
            out = teacher(probe)
    except TeacherError:
        raise
    except Exception as e:  # noqa: BLE001 - user model: one line
        msg = " ".join(str(e).split())[:200]
        raise TeacherError(f"the teacher cannot run on the data's inputs of shape {list(probe.shape)}: "
                           f"{type(e).__name__}: {msg}") from None
    want = (len(probe), *io.input_shape, n_classes) if io.per_token else (len(probe), n_classes)
    if out.dim() != len(want) or tuple(out.shape[:-1]) != want[:-1]:
        raise TeacherError(f"the teacher's output has shape {list(out.shape)} for inputs of shape "
                           f"{list(probe.shape)}; expected {'(batch, length, vocab)' if io.per_token else '(batch, classes)'} logits")
    if out.shape[-1] != n_classes:
        what = "tokens (vocabulary)" if io.per_token else f"classes (0..{n_classes - 1})"
        what = what if n_classes != 1 or io.per_token else "class (0)"
        raise TeacherError(f"the teacher has {out.shape[-1]} outputs but the data's labels span "
                           f"{n_classes} {what}")
    return teacher
