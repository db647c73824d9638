"""Train / validation / test cuts: scikit-learn's ``train_test_split``, remembered.

Importing scikit-learn costs a process about 2 s (it pulls in scipy.stats), more than the
rest of a search's start-up. The cut depends only on the labels, the size asked for, the
seed and scikit-learn's version, so it is computed once and kept in the cache
(``splits/<key>.npz``, keyed by a hash of all four): every later search, helper, ``train`` or ``export`` on the same data reads the
indices back and never imports scikit-learn. A missing or unreadable entry is computed again.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata

import numpy as np

from nas_student.tasks.teacher_cache import atomic_write, cache_dir, save_npz


def _key(n: int, test_size: float | int, seed: int, stratify: np.ndarray | None) -> str:
    # scikit-learn's version too: a release that cut differently cuts anew, as without the cache
    h = hashlib.sha256(json.dumps([n, test_size, seed, metadata.version("scikit-learn")]).encode())
    if stratify is not None:
        s = np.ascontiguousarray(stratify)
        h.update(f"{s.dtype}{s.shape}".encode() + s.tobytes())
    return h.hexdigest()[:32]


def split_indices(n: int, test_size: float | int, seed: int,
                  stratify: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``train_test_split(arange(n), test_size=..., stratify=..., random_state=seed)``, from the
    cache when it is there. Raises scikit-learn's ``ValueError`` for a cut it cannot make."""
    path = cache_dir() / "splits" / f"{_key(n, test_size, seed, stratify)}.npz"
    try:
        with np.load(path, allow_pickle=False) as f:
            keep, cut = f["keep"], f["cut"]
        if len(keep) + len(cut) == n:
            return keep, cut
    except Exception:  # noqa: BLE001 - not cached yet, or unreadable: compute it again
        pass
    from sklearn.model_selection import train_test_split

    keep, cut = train_test_split(np.arange(n), test_size=test_size, stratify=stratify, random_state=seed)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda p: save_npz(p, {"keep": keep, "cut": cut}))
    except OSError:  # a read-only cache only costs the next process the import
        pass
    return keep, cut
