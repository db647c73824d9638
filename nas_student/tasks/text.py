"""``text``: character-level language modelling on the Python documentation that ships with
CPython (``pydoc_data.topics``: the 79 reference topics ``help()`` shows, ~465,000 characters
of English prose and code in Python 3.11). Offline, and part of every Python since 3.x.

The topics are read in sorted key order. Their bytes change between Python releases, so the
task never refuses another release: it builds from whatever this interpreter ships, the cached
teacher is keyed on the corpus's sha256 (a changed corpus trains a new teacher, it never reuses
a stale one), and ``corpus_version()`` names the source, Python version and hash in every
record. Lower-cased; a fixed 72-token vocabulary (``PAD``, ``UNK``, newline, space, the 32 ASCII
punctuation marks, digits and lower-case letters; anything else, ~0.1 %, maps to ``UNK``).

Each topic is cut into non-overlapping windows of ``LENGTH`` (64) inputs; the targets are the
next characters. The last window of a topic is padded: input ``PAD``, target ``IGNORE_INDEX``
(-100), masked from losses and metrics. Repeated windows are dropped;
the rest are split 80/10/10 (train/val/test) by seed.

The teacher is a 2-layer causal Transformer (``transformer`` family, d_model 128, 4 heads)
trained here once (2,000 steps, ~7 min on one CPU thread) and cached. Metrics: next-token ``accuracy`` and
``perplexity`` over real target characters. ``unigram_baseline`` gives the floor it must beat.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import platform
import string
from collections import Counter

import numpy as np
import torch

from nas_student.distill.losses import IGNORE_INDEX
from nas_student.distill.trainer import Recipe, evaluate
from nas_student.errors import NasStudentError
from nas_student.families.base import ModelIO
from nas_student.tasks.base import Split, Task, freeze
from nas_student.tasks.teacher_cache import builtin_teacher, outputs_prefix

SOURCE = "pydoc_data.topics"
PAD, UNK = 0, 1
CHARS = "\n " + string.punctuation + string.digits + string.ascii_lowercase
VOCAB: tuple[str, ...] = ("<pad>", "<unk>", *CHARS)
LENGTH = 64
FRACTIONS = (0.8, 0.1, 0.1)

IO = ModelIO((LENGTH,), len(VOCAB), input_dtype="int64", vocab_size=len(VOCAB), per_token=True,
             causal=True)
TEACHER_ARCH = {
    "family": "transformer", "layers": 2, "d_model": 128, "heads": 4, "ffn_ratio": 4.0,
    "pos_encoding": "sinusoidal", "norm_placement": "pre", "activation": "gelu", "dropout": 0.1,
}
TEACHER_BUDGET = Recipe(steps=2000, batch_size=32, lr=3e-3, warmup_steps=100, weight_decay=0.05, optimizer="adamw")


class CorpusError(NasStudentError):
    """The built-in corpus is missing or is not the text the task is defined on."""


def corpus() -> list[str]:
    """The source texts: CPython's documentation topics in sorted key order (raw, not lower-cased)."""
    try:
        topics = importlib.import_module(SOURCE).topics
    except (ImportError, AttributeError) as e:
        raise CorpusError(f"text task: this Python has no {SOURCE} ({e}); the text task needs "
                          "CPython's standard library documentation topics") from None
    texts = [topics[key] for key in sorted(topics)]
    if not texts or not all(isinstance(t, str) for t in texts):
        raise CorpusError(f"text task: {SOURCE}.topics holds no texts")
    return texts


def corpus_version(texts: list[str] | None = None) -> dict[str, object]:
    """What the corpus is on this install: source, Python version, size and sha256 (records
    name it, since the text differs between Python releases)."""
    texts = corpus() if texts is None else texts
    digest = hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()
    return {"source": SOURCE, "python": platform.python_version(), "texts": len(texts),
            "characters": sum(map(len, texts)), "sha256": digest}


_INDEX = {c: i for i, c in enumerate(VOCAB) if i >= 2}


def encode(text: str) -> list[int]:
    """Lower-case, then one id per character (``UNK`` for characters outside the vocabulary)."""
    return [_INDEX.get(c, UNK) for c in text.lower()]


def decode(ids: list[int] | torch.Tensor) -> str:
    return "".join(VOCAB[i] if i >= 2 else ("" if i == PAD else "?") for i in map(int, ids))


def windows(texts: list[str], length: int = LENGTH) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping windows per text: inputs (N, length) and next-character targets
    (N, length); a text's last window is padded (input PAD, target IGNORE_INDEX)."""
    xs, ys = [], []
    for text in texts:
        ids = encode(text)
        for start in range(0, len(ids) - 1, length):
            chunk = ids[start:start + length + 1]
            x, y = chunk[:-1], chunk[1:]
            xs.append(x + [PAD] * (length - len(x)))
            ys.append(y + [IGNORE_INDEX] * (length - len(y)))
    return torch.tensor(xs, dtype=torch.long), torch.tensor(ys, dtype=torch.long)


def text_splits(seed: int = 0, texts: list[str] | None = None) -> tuple[Split, Split, Split]:
    """80/10/10 split of the windows of ``texts`` (default: the corpus), fixed by ``seed``.
    A window whose inputs occur twice (the documentation repeats some passages) is kept once, so no
    test window is also a training window."""
    x, y = windows(corpus() if texts is None else texts)
    seen: set[bytes] = set()
    keep = [i for i, row in enumerate(x.numpy())
            if not (row.tobytes() in seen or seen.add(row.tobytes()))]
    x, y = x[keep], y[keep]
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(x)))
    n_tr, n_va = int(FRACTIONS[0] * len(x)), int(FRACTIONS[1] * len(x))
    parts = order[:n_tr], order[n_tr:n_tr + n_va], order[n_tr + n_va:]
    return tuple(Split(x[i], y[i]) for i in parts)  # type: ignore[return-value]


def unigram_baseline(train_s: Split, test_s: Split) -> dict[str, float]:
    """A model that ignores context: character frequencies of the training targets (add-one
    smoothed over the real tokens). Next-token accuracy and perplexity on ``test_s``."""
    counts = Counter(train_s.y[train_s.y != IGNORE_INDEX].tolist())
    total = sum(counts.values()) + (len(VOCAB) - 1)
    logp = {i: math.log((counts.get(i, 0) + 1) / total) for i in range(1, len(VOCAB))}
    target = test_s.y[test_s.y != IGNORE_INDEX].tolist()
    best = max(counts, key=lambda i: counts[i])
    return {"accuracy": sum(t == best for t in target) / len(target),
            "perplexity": math.exp(-sum(logp[t] for t in target) / len(target))}


def load(seed: int = 0, device: str = "cpu") -> Task:
    texts = corpus()
    train_s, val_s, test_s = text_splits(seed, texts)
    # One thread while training: the same weights on any machine, and on a busy 2-core box
    # 5x faster than two contending threads (0.2 s a step); ~7 min in all. The cache key holds
    # a hash of the windows, so another Python's corpus trains (and caches) its own teacher.
    teacher, meta = builtin_teacher("text", IO, train_s, test_s, TEACHER_ARCH, TEACHER_BUDGET,
                                    seed=seed, device=device, threads=1)
    meta["test_perplexity"] = evaluate(teacher, test_s.x, test_s.y)["perplexity"]
    meta["unigram"] = unigram_baseline(train_s, test_s)
    meta["corpus"] = corpus_version(texts)
    return Task("text", IO, train_s, val_s, test_s, freeze(teacher), meta, kind="lm",
                outputs_cache=outputs_prefix(meta))
