"""Bad inputs for `nas-student search`, each with the words its one-line error must hold.

A case is a run file (or space file) written into a fresh folder next to a small project (a
teacher factory, its weights, data), the command-line arguments, and the needle. Used by
tests/test_cli.py (which asserts: exit code 2, one line, the needle, no traceback, nothing
written) and bench/reliability_record.py (which records each message).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "pwned"  # a file that a payload would create; it must never exist
MODELS_PY = textwrap.dedent("""
    from torch import nn

    def make_teacher(in_features=4, classes=3):
        return nn.Sequential(nn.Linear(in_features, 32), nn.ReLU(), nn.Linear(32, classes))
""")
USER_TASK = "task: blobs\ntrust_code: true\ndata: {train: train.npz}\nspace: digits-mlp\n"
UNTRUSTED = USER_TASK.replace("trust_code: true\n", "")
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))


@dataclass
class Case:
    name: str
    files: dict[str, str]  # written into the folder; "run.yaml" is passed with --config
    needle: str
    args: list[str] = field(default_factory=list)
    digits: bool = False  # the case needs the built-in digits teacher (from the test cache)


CASES = [
    Case("run file: a run name that leaves the results folder", {"run.yaml": "run: ../elsewhere\n"},
         "run.yaml:1: run: a run is one folder under the results folder"),
    Case("space: a misspelt key is named, not the key it leaves missing",
         {"space.yaml": "name: x\nfamily: mlp\nparams:\n  layers: {type: repeat, count: 1, params: "
                        "{width: {type: choice, vals: [8, 16]}}}\n  activation: relu\n"},
         "space.yaml:4: params.layers.params.width.vals: unknown key", ["--space", "space.yaml"]),
    Case("space: a range that leaves the family's bounds names the range, not a file value",
         {"space.yaml": "name: x\nfamily: rnn\nparams:\n  cell: gru\n  layers: 1\n  hidden: 16\n  embed_dim: 16\n"
                        "  dropout: {type: float, low: 0.0, high: 1.5}\n"},
         "space.yaml:8: params.dropout: family 'rnn': input should be less than 1 (the space samples ",
         ["--space", "space.yaml"]),
    Case("option: objectives without a quality", {}, "command line: search.objectives: objectives need a quality",
         ["--objectives", "macs,params"]),
    Case("option: --run ..", {}, "command line: run: a run is one folder under the results folder", ["--run", ".."]),
    Case("run file: YAML syntax error", {"run.yaml": "budget: {steps: 10\nsearch: {}\n"},
         "run.yaml:2: YAML syntax error"),
    Case("run file: duplicate key", {"run.yaml": "budget:\n  steps: 10\n  steps: 20\n"},
         "run.yaml:3: budget.steps: duplicate key (first defined on line 2)"),
    Case("run file: unknown key", {"run.yaml": "budget: {stpes: 10}\n"}, "run.yaml:1: budget.stpes: unknown key"),
    Case("run file: wrong type", {"run.yaml": "budget: {batch_size: many}\n"},
         "run.yaml:1: budget.batch_size: input should be a valid integer"),
    Case("run file: value out of range", {"run.yaml": "budget: {temperature: -1}\n"},
         "run.yaml:1: budget.temperature: must be greater than 0"),
    Case("run file: a per-family learning rate for a family that does not exist",
         {"run.yaml": "budget:\n  family_lr: {rnn: 0.03, grus: 0.03}\n"},
         "run.yaml:2: budget.family_lr: unknown family 'grus'; the families are "),
    Case("run file: early stopping with a per-family step factor",
         {"run.yaml": "search: {early_stop: true}\nbudget:\n  family_step_factor: {rnn: 2}\n"},
         "run.yaml:1: search.early_stop compares students at the same step, so it cannot be combined with "
         "budget.family_step_factor"),
    Case("run file: early stopping with steps by depth",
         {"run.yaml": "search: {early_stop: true}\nbudget: {depth_power: 0.5}\n"},
         "run.yaml:1: search.early_stop compares students at the same step, so it cannot be combined with "
         "budget.depth_power"),
    Case("run file: unknown choice", {"run.yaml": "budget: {optimizer: adamax}\n"},
         "run.yaml:1: budget.optimizer: input should be 'adam', 'adamw' or 'sgd'"),
    Case("run file: !!python tag", {"run.yaml": f"task: !!python/object/apply:os.system ['touch {MARKER}']\n"},
         "run.yaml:1: tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"),
    Case("run file: alias bomb (billion laughs)", {"run.yaml": BOMB}, "YAML aliases (*name) are not allowed"),
    Case("run file: not a mapping", {"run.yaml": "- budget\n"}, "run.yaml:1: a run file must be a mapping"),
    Case("space file: low > high",
         {"space.yaml": "name: s\nfamily: mlp\nparams:\n  layers:\n    type: repeat\n    count: 1\n"
                        "    params: {width: {type: int, low: 32, high: 8}}\n"},
         "space.yaml:7: params.layers.params.width: `low <= high` must hold", ["--space", "space.yaml"]),
    Case("space with no feasible student", {}, "no student of space 'digits-mlp' can meet the cost bounds",
         ["--task", "digits", "--space", "digits-mlp", "--max-params", "50"], digits=True),
    Case("teacher: a factory file without --trust-code (importing it would write a file)",
         {"run.yaml": UNTRUSTED + "teacher: {factory: evil_models.py:make_teacher}\n",
          "evil_models.py": f"open({MARKER!r}, 'w').close()\n" + MODELS_PY},
         "teacher.factory"),
    Case("teacher: a module:function factory without --trust-code",
         {"run.yaml": UNTRUSTED + "teacher: {factory: 'os:system'}\n"}, "teacher.factory 'os:system' runs Python code"),
    Case("teacher: TorchScript without --trust-code",
         {"run.yaml": UNTRUSTED + "teacher: {torchscript: model.ts}\n", "model.ts": "not read\n"},
         "--trust-code"),
    Case("teacher: weights file not found", {"run.yaml": USER_TASK + "teacher: {factory: models.py:make_teacher, "
                                             "weights: missing.pt}\n"}, "file not found"),
    Case("teacher: unreadable weights (not a checkpoint)",
         {"run.yaml": USER_TASK + "teacher: {factory: models.py:make_teacher, weights: garbage.pt}\n",
          "garbage.pt": "this is not a checkpoint\n"},
         "refused: not loadable with weights_only=True"),
    Case("teacher: a pickle that would run code",
         {"run.yaml": USER_TASK + "teacher: {factory: models.py:make_teacher, weights: evil.pt}\n"},
         "is never executed): Unsupported global: GLOBAL io.open was not an allowed global by default"),
    Case("data: a .pt file that would run code",
         {"run.yaml": USER_TASK.replace("train.npz", "evil.pt") + "teacher: {factory: models.py:make_teacher}\n"},
         "evil.pt: not a tensor file loadable with weights_only=True (Unsupported global: GLOBAL io.open"),
    Case("teacher: unreadable TorchScript file",
         {"run.yaml": USER_TASK + "teacher: {torchscript: garbage.ts}\n", "garbage.ts": "not a zip\n"},
         "garbage.ts"),
    Case("data of the wrong shape for the teacher",
         {"run.yaml": USER_TASK + "teacher: {factory: models.py:make_teacher, kwargs: {in_features: 5}}\n"},
         "the teacher cannot run on the data's inputs of shape [2, 4]"),
    Case("data: split fractions that do not sum to 1, at the split's own line",
         {"run.yaml": "task: blobs\ntrust_code: true\nteacher: {factory: models.py:make_teacher}\ndata:\n"
                      "  train: train.npz\n  label: y\n  split: [0.5, 0.2, 0.2]\nspace: digits-mlp\n"},
         "run.yaml:7: data.split: split must be three non-negative fractions summing to 1"),
    Case("run file: an integer too long to read (thousands of digits)",
         {"run.yaml": "budget: {steps: " + "9" * 5000 + "}\n"},
         "run.yaml:1: an integer of 5,000 digits is too long to be read"),
    Case("space file: an integer too long to read",
         {"space.yaml": "name: s\nfamily: mlp\nparams:\n  layers:\n    type: repeat\n    count: {type: int, low: 1, high: "
                        + "9" * 5000 + "}\n    params: {width: 8}\n"},
         "space.yaml:6: an integer of 5,000 digits is too long to be read", ["--space", "space.yaml"]),
    Case("data: a CSV with a header and no rows",
         {"run.yaml": USER_TASK.replace("train.npz", "empty.csv") + "teacher: {factory: models.py:make_teacher}\n",
          "empty.csv": "a,b,c,d,y\n"},
         "empty.csv: no rows (only a header)"),
    Case("data: a CSV with an inf feature value",
         {"run.yaml": USER_TASK.replace("train.npz", "inf.csv") + "teacher: {factory: models.py:make_teacher}\n",
          "inf.csv": "a,b,c,d,y\n" + "".join(f"{i},1,2,3,{i % 3}\n" for i in range(12)) + "inf,1,2,3,0\n"},
         "inf.csv: 1 input value(s) are not finite (inf), first in example 12"),
    Case("data: an .npz with NaN inputs",
         {"run.yaml": USER_TASK.replace("train.npz", "nan.npz") + "teacher: {factory: models.py:make_teacher}\n"},
         "nan.npz: 1 input value(s) are not finite (NaN), first in example 3"),
    Case("data: five rows, too few to cut validation and test splits from",
         {"run.yaml": USER_TASK.replace("train.npz", "five.csv") + "teacher: {factory: models.py:make_teacher}\n",
          "five.csv": "a,b,c,d,y\n" + "".join(f"{i},1,2,3,{i % 3}\n" for i in range(5))},
         "five.csv: too little data: 5 example(s), but cutting the val and test splits from it needs at least 10"),
    Case("teacher: a raw pickle (not a torch file) that would run code: the reason, not torch's advice",
         {"run.yaml": USER_TASK + "teacher: {factory: models.py:make_teacher, weights: raw.pt}\n"},
         "is never executed): Trying to load unsupported GLOBAL"),
    Case("data: inputs and labels of different lengths",
         {"run.yaml": USER_TASK.replace("train.npz", "short.npz") + "teacher: {factory: models.py:make_teacher}\n"},
         "short.npz: 30 inputs but 20 labels"),
]


def make_project(folder: Path) -> None:
    """models.py, train.npz (30 x 4 features, 3 classes), short.npz (30 inputs, 20 labels), and
    evil.pt (a pickle whose loading would create MARKER)."""
    import numpy as np
    import torch

    (folder / "models.py").write_text(MODELS_PY)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 4)).astype(np.float32), np.arange(30) % 3
    np.savez(folder / "train.npz", x=x, y=y)
    np.savez(folder / "short.npz", x=x, y=y[:20])
    nan = x.copy()
    nan[3, 1] = np.nan
    np.savez(folder / "nan.npz", x=nan, y=y)
    import os
    import pickle

    class Raw:  # a module torch blocks outright (os): its message takes another path
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {folder / MARKER}",))

    (folder / "raw.pt").write_bytes(pickle.dumps({"0.weight": Raw()}, protocol=2))

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (open, (str(folder / MARKER), "w"))

    torch.save({"0.weight": Evil()}, folder / "evil.pt")


def arguments(case: Case, folder: Path) -> list[str]:
    """Write the case's files into ``folder``; the command line (results under folder/results)."""
    for name, text in case.files.items():
        (folder / name).write_text(text)
    args = ["search", "--results-dir", str(folder / "results"), "--trials", "2", "--steps", "5"]
    if "run.yaml" in case.files:
        args += ["--config", str(folder / "run.yaml")]
    return args + [str(folder / a) if a.endswith(".yaml") else a for a in case.args]
