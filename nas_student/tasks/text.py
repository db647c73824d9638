"""``text``: character-level language modelling on text that ships with scikit-learn.

The corpus is the 14 dataset descriptions under ``sklearn/datasets/descr/*.rst`` (43,054
characters of English prose and tables), read in sorted order, each verified by its sha256
(any difference, e.g. another scikit-learn release, is refused with the file named: the task
must be the same everywhere a number is reported). Lower-cased; a fixed 62-token vocabulary
(``PAD``, ``UNK`` and the 60 characters seen at least 5 times; the rest map to ``UNK``).

Each file is cut into non-overlapping windows of ``LENGTH`` (64) inputs; the targets are the
next characters. The last window of a file is padded: input ``PAD``, target ``IGNORE_INDEX``
(-100), masked from losses and metrics. Windows are split 80/10/10 (train/val/test) by seed.

The teacher is a 2-layer causal Transformer (``transformer`` family, d_model 128, 4 heads)
trained here once (~60 s on one CPU thread) and cached. Metrics: next-token ``accuracy`` and
``perplexity`` over real target characters. ``unigram_baseline`` gives the floor it must beat.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import math
from collections import Counter

import numpy as np
import torch

from nas_student.distill.losses import IGNORE_INDEX
from nas_student.distill.trainer import Recipe, evaluate
from nas_student.errors import NasStudentError
from nas_student.families.base import ModelIO
from nas_student.tasks.base import Split, Task, freeze
from nas_student.tasks.teacher_cache import builtin_teacher

PACKAGE = "sklearn.datasets"
FOLDER = "descr"
#: sha256 of each file as shipped by scikit-learn 1.9.1 (the corpus is pinned to these bytes).
SOURCES: dict[str, str] = {
    "breast_cancer.rst": "3c5855182a44d12c91f1fb27388741fb70b4b92ba40fb742dca9b5e404c68f19",
    "california_housing.rst": "98397053aa2b87ac551fee2c04d4dc62e5199246ea0cb0842bb2868f0c8658d6",
    "covtype.rst": "0ba0e67338ad8ed9eb3be5e10888bc5aa353d2e3e06273d6358b4ac094f0727e",
    "diabetes.rst": "07dcfc13957a82485bdfce44aecffba72e7977595966d118b81f162cb827e381",
    "digits.rst": "8e7e58d612958f7d9b0de1931ed68b211703eeb239e808f3d82c5f0837cc0222",
    "iris.rst": "71f86749a8bc528d21b7db0f95332e3230d13231a05c2720e537b2c5aa8ef5e9",
    "kddcup99.rst": "a91cf65fc5e6521f0864a8f34f538025de6c8fdd5b068d31a5d715e6b4b6264a",
    "lfw.rst": "f2c8fc0293306431da6e76a4b0be12f961d2d55fa4f9d8af53b0c63c958fec0c",
    "linnerud.rst": "8c323e008b15799653555592894ceda799442f81f6bacf38edb805dc54866f5b",
    "olivetti_faces.rst": "8bc63bfa0e1f38f74bbeea6027c8bfcded69034846a5f0e00283c21af08f1712",
    "rcv1.rst": "98b8f8594eda115a9a260ee181249ef35a08ef82fafe9184091ef63bc744319e",
    "species_distributions.rst": "2fcd1e68b71bf72989399c852e84210f2914f5dc22a2e4454530fefc8aca16c2",
    "twenty_newsgroups.rst": "67979f1b8fa67444f81f8b17802b77ec81cbd3c114cca6e7b9c075f74a3f183f",
    "wine_data.rst": "cece974be57e7279fddb09f3ffaccc26cf0c20087f29a9641a17756c52e25301",
}
PAD, UNK = 0, 1
CHARS = "\n \"%&'()*+,-./0123456789:;<=>[]_`abcdefghijklmnopqrstuvwxyz~"
VOCAB: tuple[str, ...] = ("<pad>", "<unk>", *CHARS)
LENGTH = 64
FRACTIONS = (0.8, 0.1, 0.1)

IO = ModelIO((LENGTH,), len(VOCAB), input_dtype="int64", vocab_size=len(VOCAB), per_token=True,
             causal=True)
TEACHER_ARCH = {
    "family": "transformer", "layers": 2, "d_model": 128, "heads": 4, "ffn_ratio": 4.0,
    "pos_encoding": "sinusoidal", "norm_placement": "pre", "activation": "gelu", "dropout": 0.2,
}
TEACHER_BUDGET = Recipe(steps=400, batch_size=32, lr=2e-3, weight_decay=0.05, optimizer="adamw")


class CorpusError(NasStudentError):
    """The built-in corpus is missing or is not the text the task is defined on."""


def corpus() -> list[str]:
    """The verified source texts, in sorted file order (raw, not lower-cased)."""
    try:
        folder = importlib.resources.files(PACKAGE) / FOLDER
    except ModuleNotFoundError as e:
        raise CorpusError(f"text task: cannot find {PACKAGE} ({e})") from None
    texts = []
    for name, expected in sorted(SOURCES.items()):
        path = folder / name
        try:
            data = path.read_bytes()
        except OSError as e:
            raise CorpusError(f"text task: corpus file {PACKAGE}/{FOLDER}/{name} is missing ({e})") from None
        got = hashlib.sha256(data).hexdigest()
        if got != expected:
            raise CorpusError(
                f"text task: corpus file {PACKAGE}/{FOLDER}/{name} has sha256 {got[:16]}..., expected "
                f"{expected[:16]}... (the task is pinned to scikit-learn 1.9.1's dataset descriptions; "
                f"this install has a different text, so its numbers would not be comparable)")
        texts.append(data.decode("utf-8"))
    return texts


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


def text_splits(seed: int = 0) -> tuple[Split, Split, Split]:
    """80/10/10 split of the windows, fixed by ``seed``."""
    x, y = windows(corpus())
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
    train_s, val_s, test_s = text_splits(seed)
    # One thread while training: the same weights on any machine, and on a busy 2-core box
    # 5x faster than two contending threads (0.2 s vs 1 s a step); ~60 s in all.
    teacher, meta = builtin_teacher("text", IO, train_s, test_s, TEACHER_ARCH, TEACHER_BUDGET,
                                    seed=seed, device=device, threads=1)
    meta["test_perplexity"] = evaluate(teacher, test_s.x, test_s.y)["perplexity"]
    meta["unigram"] = unigram_baseline(train_s, test_s)
    return Task("text", IO, train_s, val_s, test_s, freeze(teacher), meta, kind="lm")
