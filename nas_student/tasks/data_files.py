"""The user's data as tensors: .npz, .pt, .csv, image folders, or a factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_student.config import DataSpec
from nas_student.errors import NasStudentError
from nas_student.tasks.base import Split
from nas_student.tasks.code import call_user, load_callable, refusal

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class DataError(NasStudentError):
    """The data cannot be read or does not have the expected form."""


def _tensor(a: Any, what: str) -> torch.Tensor:
    if not isinstance(a, torch.Tensor):
        a = np.asarray(a)
        # read-only arrays (safetensors, memory maps) are copied: torch would warn, and training
        # must not write into the user's file
        t = torch.from_numpy(a if a.flags.writeable else a.copy())
    else:
        t = a
    if t.dtype == torch.float64:
        t = t.float()
    return t


def _xy(x: Any, y: Any, where: str, labelled: bool = True) -> Split:
    # the standard (N, C, ...) layout: an image folder's arrays come channels-last strided, and
    # torch 2.13's CPU depthwise-conv backward corrupts memory on such inputs (a segfault in
    # training; found by bench/auto_space.py, reproduced with a random channels-last tensor)
    x = _tensor(x, where).contiguous()
    if not x.is_floating_point() and x.dtype not in (torch.int64, torch.int32):
        x = x.float()
    if x.is_floating_point():
        x = x.float()
    if len(x):
        _check_finite(x, where)
    if y is None:
        if labelled:
            raise DataError(f"{where}: no labels found")
        return Split(x, torch.full((len(x),), -1, dtype=torch.long))
    y = _tensor(y, where)
    if y.is_floating_point():
        if not torch.equal(y, y.round()):
            raise DataError(f"{where}: labels must be integers (class indices), got fractional values")
    y = y.long()
    if y.dim() == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if len(x) != len(y):
        raise DataError(f"{where}: {len(x)} inputs but {len(y)} labels")
    if len(x) == 0:
        raise DataError(f"{where}: no examples")
    return Split(x, y)


def _columns(arrays: list[Any], names: list[str], where: str) -> Any:
    """Several tasks' labels (one array each) as one ``(N, tasks)`` array; one task's as is."""
    if len(arrays) == 1:
        return arrays[0]
    cols = [np.asarray(a) for a in arrays]
    for a, name in zip(cols, names):
        if a.ndim != 1:
            raise DataError(f"{where}: label {name!r} must be one class per example, got shape {list(a.shape)}")
    if len({len(a) for a in cols}) > 1:
        lengths = ", ".join(f"{n!r} {len(a)}" for n, a in zip(names, cols))
        raise DataError(f"{where}: the tasks' labels have different lengths ({lengths}); one label per example "
                        "and task")
    return np.stack(cols, axis=1)


def _check_finite(x: torch.Tensor, where: str) -> None:
    """Real inputs must be finite: NaN or inf would poison every loss they reach."""
    if x.is_floating_point():
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            row = int(bad.reshape(len(x), -1).any(1).nonzero()[0])
            kind = "NaN" if bool(torch.isnan(x).any()) else "inf"
            raise DataError(f"{where}: {int(bad.sum())} input value(s) are not finite ({kind}), first in example {row}")


def _arrays(path: Path, spec: DataSpec, labelled: bool) -> Split:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            if spec.features not in keys:
                raise DataError(f"{path}: no array {spec.features!r} (arrays: {', '.join(keys)})")
            missing = [k for k in spec.labels if k not in keys]
            if labelled and missing:
                raise DataError(f"{path}: no array {missing[0]!r} (arrays: {', '.join(keys)}); set data.label")
            y = None if missing else _columns([z[k] for k in spec.labels], spec.labels, str(path))
            return _xy(z[spec.features], y, str(path), labelled)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise DataError(f"{path}: not a tensor file loadable with weights_only=True ({refusal(e)})") from None
    if not isinstance(obj, dict) or spec.features not in obj:
        raise DataError(f"{path}: expected a dict with tensors {spec.features!r} and {', '.join(map(repr, spec.labels))}")
    missing = [k for k in spec.labels if k not in obj]
    if labelled and missing and len(spec.labels) > 1:
        raise DataError(f"{path}: no tensor {missing[0]!r} (tensors: {', '.join(map(str, obj))}); set data.label")
    y = None if missing else _columns([obj[k] for k in spec.labels], spec.labels, str(path))
    return _xy(obj[spec.features], y, str(path), labelled)


def _csv(path: Path, spec: DataSpec, labelled: bool) -> Split:
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except Exception as e:  # noqa: BLE001
        raise DataError(f"{path}: cannot read CSV ({type(e).__name__}: {e})") from None
    missing = [k for k in spec.labels if k not in df.columns]
    if labelled and missing:
        raise DataError(f"{path}: no label column {missing[0]!r} (columns: {', '.join(map(str, df.columns))})")
    if df.empty:
        raise DataError(f"{path}: no rows (only a header)")
    feats = df.drop(columns=spec.labels, errors="ignore")
    bad = [c for c in feats.columns if not pd.api.types.is_numeric_dtype(feats[c])]
    if bad:
        raise DataError(f"{path}: feature columns must be numeric; not numeric: {', '.join(map(str, bad))}")
    if feats.isna().any().any():
        raise DataError(f"{path}: missing values in feature columns")
    y = None if missing else _columns([df[k].to_numpy() for k in spec.labels], spec.labels, str(path))
    return _xy(feats.to_numpy(dtype=np.float32), y, str(path), labelled)


def _images(folder: Path, spec: DataSpec, classes: list[str] | None) -> tuple[Split, list[str]]:
    from PIL import Image

    found = classes or sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not found:
        raise DataError(f"{folder}: expected one sub-folder per class, found none")
    xs, ys, size = [], [], spec.image_size
    for label, name in enumerate(found):
        files = sorted(p for p in (folder / name).glob("*") if p.suffix.lower() in IMAGE_EXTS) \
            if (folder / name).is_dir() else []
        for f in files:
            try:
                with Image.open(f) as im:
                    im = im.convert("L" if spec.grayscale else "RGB")
                    if size is None:
                        size = (im.height, im.width)
                    if (im.height, im.width) != tuple(size):
                        im = im.resize((size[1], size[0]))
                    a = np.asarray(im, dtype=np.float32) / 255.0
            except Exception as e:  # noqa: BLE001
                raise DataError(f"{f}: not a readable image ({type(e).__name__}: {e})") from None
            xs.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
            ys.append(label)
    if not xs:
        raise DataError(f"{folder}: no images found in its class sub-folders")
    return _xy(np.stack(xs), np.array(ys), str(folder)), found


def read_split(path_s: str, spec: DataSpec, *, labelled: bool = True,
               classes: list[str] | None = None) -> tuple[Split, list[str] | None]:
    """One split from a file or an image folder; image folders also return class names."""
    path = Path(path_s)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        if len(spec.labels) > 1:
            raise DataError(f"{path}: an image folder holds one task (its class sub-folders); several "
                            "tasks' labels come from .npz, .pt or .csv files")
        return _images(path, spec, classes)
    if path.suffix in (".npz", ".pt", ".pth"):
        return _arrays(path, spec, labelled), None
    if path.suffix == ".csv":
        return _csv(path, spec, labelled), None
    raise DataError(f"{path}: unsupported data file (use .npz, .pt, .csv or an image folder)")


def from_factory(spec: DataSpec, trust: bool) -> dict[str, Split]:
    """A factory returns a dict with ``train`` (and optionally ``val``, ``test``) or a tuple
    (train[, val[, test]]); each a (x, y) pair or a torch Dataset of (x, y) items."""
    fn = load_callable(spec.factory or "", trust=trust, what="data.factory")
    out = call_user(fn, "data.factory", spec.factory or "")
    if isinstance(out, (tuple, list)):
        out = dict(zip(("train", "val", "test"), out))
    if not isinstance(out, dict) or "train" not in out:
        raise DataError(f"data.factory {spec.factory!r} must return a dict with 'train' or a tuple "
                        f"(train, val, test), got {type(out).__name__}")
    splits = {}
    for name, part in out.items():
        if part is None:
            continue
        if isinstance(part, (tuple, list)) and len(part) == 2 and not isinstance(part[0], tuple):
            splits[name] = _xy(part[0], part[1], f"data.factory[{name}]")
        elif isinstance(part, torch.utils.data.Dataset):
            items = [part[i] for i in range(len(part))]  # type: ignore[arg-type]
            splits[name] = _xy(torch.stack([torch.as_tensor(i[0]) for i in items]),
                               torch.as_tensor([int(i[1]) for i in items]), f"data.factory[{name}]")
        else:
            raise DataError(f"data.factory[{name}]: expected (x, y) or a Dataset, got {type(part).__name__}")
    return splits
