"""Generated bad run files: a valid run file for a user's own task (a teacher factory, an .npz
of data, a built-in space), broken in one way each. Every file is invalid by construction, so
`nas-student search --config` must refuse each in one line (exit 2, no traceback, nothing
written). Used by tests/test_fuzz_runfiles.py and bench/reliability_record.py.

Kinds of breakage: a value of the wrong type, a missing required key, an unknown key, a path
that does not exist, a path that is a folder, a huge or negative number, and data files of
mixed kinds whose features disagree.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import yaml

BASE: dict[str, Any] = {
    "task": "blobs",
    "trust_code": True,
    "teacher": {"factory": "models.py:make_teacher", "kwargs": {"in_features": 4, "classes": 3}},
    "data": {"train": "train.npz"},
    "space": "digits-mlp",
    "budget": {"steps": 5, "batch_size": 8, "lr": 0.01, "temperature": 1.0, "alpha": 0.9, "beta": 0.1},
    "constraints": {"macs_ratio": 0.1, "params_ratio": 0.1},
    "search": {"trials": 2, "seed": 0, "sampler": "tpe"},
}
# leaves and the kind of value each takes
NUMBERS = [("budget", "steps"), ("budget", "batch_size"), ("budget", "lr"), ("budget", "temperature"),
           ("budget", "alpha"), ("budget", "beta"), ("constraints", "macs_ratio"), ("constraints", "params_ratio"),
           ("search", "trials"), ("search", "seed")]
TEXTS = [("task",), ("space",), ("teacher", "factory"), ("data", "train"), ("search", "sampler")]
SECTIONS = [("teacher",), ("data",), ("budget",), ("constraints",), ("search",), ("teacher", "kwargs")]
PATHS = [("data", "train"), ("teacher", "weights"), ("space",), ("teacher", "factory")]
KINDS = ("wrong type", "missing key", "unknown key", "missing path", "folder as path", "huge or negative number",
         "mixed data kinds")


def _set(d: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for k in path[:-1]:
        d = d.setdefault(k, {})
    d[path[-1]] = value


def _wrong_type(rng: random.Random, d: dict[str, Any]) -> str:
    kind = rng.choice(["number", "text", "section"])
    if kind == "number":
        path = rng.choice(NUMBERS)
        value = rng.choice(["many", [1, 2], {"a": 1}, "1,5", "ten"])
    elif kind == "text":
        path = rng.choice(TEXTS)
        value = rng.choice([[1, 2], {"a": "b"}, ["x"]])
    else:
        path = rng.choice(SECTIONS)
        value = rng.choice(["yes", 3, [1, 2], 2.5])
    _set(d, path, value)
    return ".".join(path)


def _missing(rng: random.Random, d: dict[str, Any]) -> str:
    path = rng.choice([("teacher",), ("data",), ("data", "train"), ("teacher", "factory")])
    node = d
    for k in path[:-1]:
        node = node[k]
    del node[path[-1]]
    return ".".join(path)


def _unknown(rng: random.Random, d: dict[str, Any]) -> str:
    section = rng.choice([(), ("budget",), ("search",), ("constraints",), ("data",), ("teacher",)])
    name = rng.choice(["stpes", "trails", "lr_rate", "macs", "extra", "Space", "teacherr", "bugdet"])
    node = d
    for k in section:
        node = node[k]
    node[name] = rng.choice([1, "x", [1], {"a": 1}])
    return ".".join((*section, name))


def _missing_path(rng: random.Random, d: dict[str, Any]) -> str:
    path = rng.choice(PATHS)
    value = {"factory": "nowhere.py:make_teacher", "space": "nowhere.yaml"}.get(path[-1], f"nowhere/{path[-1]}.npz")
    if path == ("teacher", "weights"):
        value = "nowhere.pt"
    _set(d, path, value)
    return ".".join(path)


def _folder(rng: random.Random, d: dict[str, Any]) -> str:
    path = rng.choice(PATHS)
    _set(d, path, "adir:make_teacher" if path[-1] == "factory" else "adir")
    return ".".join(path)


def _number(rng: random.Random, d: dict[str, Any]) -> str:
    path = rng.choice(NUMBERS[:-1])  # any seed >= 0 is a seed
    value = rng.choice([-1, -0.5, -10**12, 10**30, int("9" * 60), float("inf"), float("-inf"), float("nan")])
    if path[-1] in ("steps", "batch_size", "trials") and rng.random() < 0.5:
        value = rng.choice([0, -3])
    _set(d, path, value)
    return ".".join(path)


def _mixed(rng: random.Random, d: dict[str, Any]) -> str:
    d["data"]["val"] = rng.choice(["five.csv", "wide.npz", "images"])
    return "data.val"


MUTATE = dict(zip(KINDS, (_wrong_type, _missing, _unknown, _missing_path, _folder, _number, _mixed)))


def generate(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """``n`` (kind, where, YAML text) run files, each broken once; seeded."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        d = copy.deepcopy(BASE)
        where = MUTATE[kind](rng, d)
        text = yaml.safe_dump(d, sort_keys=False)
        if kind == "huge or negative number" and rng.random() < 0.3:  # thousands of digits
            text = text.replace("steps: 5", "steps: " + "9" * 5000)
            where = "budget.steps"
        out.append((kind, where, text))
    return out


def make_project(folder: Path) -> None:
    """models.py, train.npz (30 x 4 features, 3 classes), wide.npz (5 features), five.csv
    (5 features), images/ (class folders of PNGs), adir/ (an empty folder)."""
    import numpy as np

    (folder / "models.py").write_text(
        "from torch import nn\n\n\ndef make_teacher(in_features=4, classes=3):\n"
        "    return nn.Sequential(nn.Linear(in_features, 32), nn.ReLU(), nn.Linear(32, classes))\n")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 4)).astype(np.float32), np.arange(30) % 3
    np.savez(folder / "train.npz", x=x, y=y)
    np.savez(folder / "wide.npz", x=rng.normal(size=(30, 5)).astype(np.float32), y=y)
    (folder / "five.csv").write_text("a,b,c,d,e,label\n" + "".join(f"{i},1,2,3,4,{i % 3}\n" for i in range(30)))
    (folder / "adir").mkdir(exist_ok=True)
    from PIL import Image

    for c in range(3):
        (folder / "images" / str(c)).mkdir(parents=True, exist_ok=True)
        for j in range(4):
            Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).save(folder / "images" / str(c) / f"{j}.png")
