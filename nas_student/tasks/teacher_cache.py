"""Built-in teachers are trained locally once and cached under a hash of all that defines them.

A cache entry is ``<key>.pt`` (a state_dict) and ``<key>.json`` (its sha256 and the test
accuracy it reached). Loading re-checks the sha256, loads with ``weights_only=True`` and
re-scores the model: anything that does not match is rebuilt, never trusted blindly.

The teacher's outputs over a task's splits are cached beside it (:func:`cached_outputs`):
keyed by the weights' sha256, the inputs' contents and the device, so a search does not run
the teacher over its training set again (prepare: 0.56 s against 1.94 s in a 35-45 s mnist1d
search on 2 cores, `results/records/search_phases.md`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock
from torch import nn

from nas_student.errors import NasStudentError

log = logging.getLogger(__name__)


STEPS_ENV = "NAS_STUDENT_TEACHER_STEPS"


def cache_dir() -> Path:
    """``$NAS_STUDENT_CACHE``, else ``~/.cache/nas-student``."""
    env = os.environ.get("NAS_STUDENT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "nas-student"


def cache_key(definition: dict[str, Any]) -> str:
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def fingerprint(*tensors: torch.Tensor) -> str:
    """A short hash of tensors' contents (to key caches on the exact data)."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through a unique temporary file beside it, then rename: readers (and other
    processes writing the same file) see the old or the new file, never a part."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_npz(path: Path, arrays: dict[str, Any]) -> None:
    """``arrays`` to ``path`` as .npz (for :func:`atomic_write`)."""
    with open(path, "wb") as f:  # a file object: numpy would append .npz to a temporary name
        np.savez(f, **arrays)


def cached_teacher(
    definition: dict[str, Any],
    build: Callable[[], nn.Module],
    fit: Callable[[nn.Module], None],
    score: Callable[[nn.Module], float],
    *,
    root: Path | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Return a trained teacher and its metadata: from the cache if it verifies, else trained
    with ``fit`` and stored. ``definition`` must hold everything that changes the weights."""
    folder = (root or cache_dir()) / "teachers"
    folder.mkdir(parents=True, exist_ok=True)
    key = cache_key(definition)
    weights, meta_path = folder / f"{key}.pt", folder / f"{key}.json"
    model = build()
    if _try_load(model, weights, meta_path, score) is None:
        return model, _hit(meta_path)
    # One process trains a missing teacher; others starting at the same time (search workers,
    # parallel test processes) wait for it and load its result instead of training it again.
    with FileLock(str(folder / f"{key}.lock")):
        model = build()
        reason = _try_load(model, weights, meta_path, score)
        if reason is None:
            return model, _hit(meta_path)
        log.info("teacher cache %s: %s; training it", key, reason)
        model = build()
        fit(model)
        acc = score(model)
        atomic_write(weights, lambda p: torch.save(model.state_dict(), p))
        meta = {"key": key, "sha256": _sha256(weights), "test_accuracy": acc, "definition": definition}
        atomic_write(meta_path, lambda p: p.write_text(json.dumps(meta, indent=1)))
    meta["cache"] = f"rebuilt ({reason})"
    return model, meta


def outputs_prefix(meta: dict[str, Any], root: Path | None = None) -> Path:
    """Where a cached teacher's outputs are kept: beside its weights, named by their sha256."""
    return (root or cache_dir()) / "teachers" / f"{meta['key']}-{meta['sha256'][:16]}"


def cached_outputs(prefix: Path, x: torch.Tensor, device: str, compute: Callable[[], torch.Tensor]
                   ) -> torch.Tensor:
    """The teacher's outputs over ``x``: read from ``prefix`` when stored for these inputs on
    this kind of device, else ``compute()``d and stored (a file that does not load or has the
    wrong rows is computed again)."""
    path = prefix.with_name(f"{prefix.name}.outputs-{fingerprint(x)}-{device}.pt")
    if path.exists():
        try:
            out = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(out, torch.Tensor) and len(out) == len(x):
                return out
        except Exception as e:  # noqa: BLE001 - any failure means: compute again
            log.info("teacher outputs %s unreadable (%s); computing them again", path.name, type(e).__name__)
    out = compute()
    try:
        atomic_write(path, lambda p: torch.save(out, p))
    except OSError as e:  # a read-only cache still gives the outputs
        log.info("teacher outputs not cached (%s)", e)
    return out


def _hit(meta_path: Path) -> dict[str, Any]:
    meta = json.loads(meta_path.read_text())
    meta["cache"] = "hit"
    return meta


def _try_load(model: nn.Module, weights: Path, meta_path: Path,
              score: Callable[[nn.Module], float]) -> str | None:
    """None when the cached teacher is sound, else why not."""
    if not weights.exists() or not meta_path.exists():
        return "not cached yet"
    try:
        meta = json.loads(meta_path.read_text())
        if _sha256(weights) != meta["sha256"]:
            return "weights file does not match its recorded sha256"
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as e:  # noqa: BLE001 - any failure means: rebuild
        return f"unreadable ({type(e).__name__}: {e})"
    acc = score(model)
    if abs(acc - meta["test_accuracy"]) > 1e-6:
        return f"re-scored accuracy {acc:.4f} differs from recorded {meta['test_accuracy']:.4f}"
    return None


def capped(budget: Any, n_train: int) -> Any:
    """``budget`` with at most ``$NAS_STUDENT_TEACHER_STEPS`` steps: a quick first look on a slow
    machine, and the test suite (every built-in teacher in 300 steps instead of 800-2000). The
    steps are part of the cache key, so a shortened teacher never stands in for a full one."""
    cap = os.environ.get(STEPS_ENV, "").strip()
    if not cap:
        return budget
    if not cap.isdecimal() or int(cap) < 1:
        raise NasStudentError(f"{STEPS_ENV}={cap!r}: must be a whole number of steps, 1 or more")
    if budget.total_steps(n_train) <= int(cap):
        return budget
    return budget.model_copy(update={"steps": int(cap), "epochs": None,
                                     "warmup_steps": min(budget.warmup_steps, int(cap) - 1)})


def builtin_teacher(task: str, io: Any, train_s: Any, test_s: Any, arch: dict[str, Any], budget: Any,
                    *, seed: int, device: str, threads: int | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """A built-in task's teacher: ``arch`` (a registered family) trained by the project's
    trainer with ``budget`` on ``train_s``, scored on ``test_s``, cached. ``threads`` pins
    torch's thread count while training (the same weights on any machine).
    ``$NAS_STUDENT_TEACHER_STEPS`` caps the training steps (:func:`capped`)."""
    from nas_student.distill.trainer import evaluate, train
    from nas_student.families import build

    budget = capped(budget, len(train_s.x))

    definition = {
        "task": task, "data": fingerprint(train_s.x, train_s.y, test_s.x), "arch": arch,
        "budget": budget.model_dump(), "seed": seed,
        "torch": ".".join(torch.__version__.split(".")[:2]),
    }

    def build_teacher() -> nn.Module:
        torch.manual_seed(seed)
        return build(arch, io).to(device)

    def fit(model: nn.Module) -> None:
        before = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        total = budget.total_steps(len(train_s.x))
        print(f"the built-in {task!r} teacher is not cached yet ({cache_dir()}): training it once, "
              f"{total} steps", file=sys.stderr, flush=True)
        every = max(1, total // 10)

        def progress(step: int) -> bool:
            if step % every == 0 or step == total:
                print(f"  {task} teacher: step {step}/{total}", file=sys.stderr, flush=True)
            return False

        try:
            train(model, train_s.x, train_s.y, budget, seed=seed, on_step=progress)
        finally:
            torch.set_num_threads(before)

    def score(model: nn.Module) -> float:
        return evaluate(model, test_s.x, test_s.y)["accuracy"]

    return cached_teacher(definition, build_teacher, fit, score)
