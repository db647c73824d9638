"""The run file: a YAML file holding a whole RunConfig, validated once with file:line errors.

Paths inside it (teacher, data, space files) are relative to the run file's folder. Options
given on the command line override the file's values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nas_student.config import RunConfig, rebase_storage
from nas_student.errors import ConfigError
from nas_student.validation import config_error_from
from nas_student.yamlio import Path_, load_yaml

TEACHER_KEYS = ("factory", "weights", "torchscript", "hf_dir")
PATH_KEYS = [("teacher", "factory"), ("teacher", "weights"), ("teacher", "torchscript"),
             ("teacher", "hf_dir"), ("data", "train"), ("data", "val"), ("data", "test"),
             ("data", "factory"), ("data", "unlabelled"), ("space",), ("results_dir",),
             ("execution", "storage")]


def _resolve(value: str, base: Path, key: tuple[str, ...]) -> str:
    """Make a relative path absolute against ``base``; leave module names and names alone."""
    if key[-1] == "factory":
        target, sep, fn = value.rpartition(":")
        if sep and target.endswith(".py") and not Path(target).is_absolute():
            return f"{base / target}:{fn}"
        return value
    if key == ("space",) and not (value.endswith((".yaml", ".yml")) or "/" in value):
        return value  # a built-in space name
    if key == ("execution", "storage"):  # files in storage URLs: journal:PATH, sqlite:///PATH
        return rebase_storage(value, base)
    return value if Path(value).is_absolute() else str(base / value)


def _set(d: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for k in path[:-1]:
        d = d.setdefault(k, {})
    d[path[-1]] = value


def build_config(file: str | Path | None, overrides: dict[tuple[str, ...], Any]) -> RunConfig:
    """RunConfig from an optional run file plus command-line overrides (key path -> value)."""
    data: dict[str, Any] = {}
    lines: dict[Path_, int] = {}
    name = "command line"
    if file is not None:
        name = str(file)
        raw, lines = load_yaml(file)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError("a run file must be a mapping of settings", file=name, line=1)
        data = raw
        base = Path(file).resolve().parent
        for key in PATH_KEYS:
            node: Any = data
            for k in key[:-1]:
                node = node.get(k) if isinstance(node, dict) else None
            if isinstance(node, dict) and isinstance(node.get(key[-1]), str):
                node[key[-1]] = _resolve(node[key[-1]], base, key)
        teachers = data.get("teachers")
        for spec in teachers if isinstance(teachers, list) else []:
            for k in TEACHER_KEYS:  # each of several teachers, as `teacher`
                if isinstance(spec, dict) and isinstance(spec.get(k), str):
                    spec[k] = _resolve(spec[k], base, ("teacher", k))
    for path, value in overrides.items():
        if path == ("budget", "steps") and isinstance(data.get("budget"), dict):
            data["budget"].pop("epochs", None)  # --steps replaces the file's budget in epochs
        _set(data, path, value)
        lines.pop(path, None)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        loc = tuple(str(p) for p in err.errors()[0]["loc"])
        from_cli = any(loc[:len(p)] == p for p in overrides)
        raise config_error_from(err, file="command line" if from_cli else name, lines=lines) from None


TEMPLATE = """\
# nas-student run file: `nas-student search --config run.yaml`.
# Every key is optional except where said; command-line options override these values.
# Paths are relative to this file's folder.

task: my-task                 # a name for your task (or a built-in one: mnist1d, digits, text, mnist1d-from-digits,
                              # mnist1d-multitask)
trust_code: false             # factories and TorchScript run code: set true (or --trust-code) to allow

# teachers: [{...}, {...}]    # several teachers for one task, instead of `teacher`: their soft
# combine: mean               # targets combined per sample (mean or confidence); students are
#                             # priced against all of them (their MACs and params summed)
#                             # combine: tasks = one teacher per task (data.label: [task1, task2]),
#                             # one student with a head per task
# price_against: sum          # several teachers: students priced against their sum, or the largest
teacher:                      # exactly one of factory / torchscript / hf_dir
  factory: models.py:make_teacher   # module:function or file.py:function returning an nn.Module
  kwargs: {}                  # keyword arguments for the factory
  weights: teacher.pt         # its state_dict (.pt loaded with weights_only=True, or .safetensors)
  # torchscript: teacher.ts   # a TorchScript file
  # hf_dir: ./my-hf-model     # a local Hugging Face transformers folder (pip install transformers)

data:                         # train (file or folder) or factory
  train: train.npz            # .npz / .pt with arrays x, y; .csv with a label column; an image folder
  # val: val.npz              # given splits; missing ones are cut from train by seed
  # test: test.npz
  label: y                    # label key (.npz/.pt) or column (.csv); a list for several tasks
  features: x                 # input key (.npz/.pt)
  split: [0.6, 0.2, 0.2]      # train/val/test fractions when val/test are not given
  # unlabelled: pool.npz      # inputs without labels (semi-supervised distillation)
  # image_size: [32, 32]      # image folders: resize to (height, width)

space: auto                   # derived from your data's shape and the teacher's cost (see it:
                              # `nas-student spaces --auto -c run.yaml`); or a built-in name / YAML path
run: my-first-search          # results go to results_dir/run
results_dir: results
device: auto                  # auto, cpu, cuda, mps

budget:                       # the KD proxy's recipe: L = alpha*T^2*KL + beta*CE (+ optional terms)
  steps: 150                  # defaults chosen to rank students like full distillation (results/BENCHMARKS.md)
  # depth_power: 0.5          # steps by depth: a depth-d student trains steps x (d / 2)^P (default 0: all `steps`)
  batch_size: 64
  lr: 0.01
  temperature: 1.0            # or a curriculum: {kind: cosine, start: 8, end: 2}
  alpha: 0.9
  beta: 0.1
  # features: {weight: 1.0, pairs: auto}   # FitNets hints (intermediate features)
  # labelled_fraction: 0.1                 # semi-supervised: use 10 % of the labels

# data_free: {enabled: true, samples: 2000}  # no training data: synthesise inputs from the teacher

constraints:                  # feasible students: ratios to the teacher and/or absolute bounds
  macs_ratio: 0.1
  params_ratio: 0.1
  # latency_ratio: 0.5        # measured on the search device
  # max_size_mb: 1.0
  # max_size_mb_int8: 0.05    # the student as int8 (objectives may name size_mb_int8, latency_int8_ms)

search:
  trials: 40
  sampler: tpe                # tpe, nsga2, random
  seed: 0
  objectives: [accuracy, macs, params]
  early_stop: false           # stop students dominated at 1/4 and 1/2 of the steps (rungs)

# execution:                  # where trials run; add workers elsewhere with `nas-student worker RUN`
#   backend: optuna           # optuna, or ray (Ray Tune)
#   workers: auto             # optuna: processes here (auto: every core on the CPU; 1 reproduces a run exactly)
#   storage: postgresql://user@host/db   # default: SQLite in the run folder; or journal:PATH
#   address: auto             # ray: join this cluster (default: a local one)
#   cpus_per_trial: 1
#   gpus_per_trial: 0
"""
