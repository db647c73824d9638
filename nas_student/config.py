"""The run configuration: one validated value (pydantic, unknown keys rejected) for a search."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nas_student.distill.datafree_settings import DataFreeSettings
from nas_student.distill.recipe import ProxyRecipe

OBJECTIVES = {"accuracy": "maximize", "agreement": "maximize", "macs": "minimize",
              "params": "minimize", "latency_ms": "minimize", "size_mb": "minimize",
              "latency_int8_ms": "minimize", "size_mb_int8": "minimize"}
COSTS = ("macs", "params", "latency_ms", "size_mb", "latency_int8_ms", "size_mb_int8")
#: costs of the student's int8 version (nas_student.quantization): bounded in absolute terms only
INT8_COSTS = ("latency_int8_ms", "size_mb_int8")


#: the largest ratio to the teacher a bound takes (beyond it a bound bounds nothing: likely a typo)
MAX_RATIO = 1e6


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Constraints(_Model):
    """A student is feasible when it stays within these bounds, relative to the teacher
    (``*_ratio``) and/or absolute (``max_*``). The default is the project's rule: <= 1/10 of
    the teacher on params and MACs. Latency is measured only when bounded or an objective."""

    macs_ratio: Annotated[float, Field(gt=0, le=MAX_RATIO)] | None = 0.1
    params_ratio: Annotated[float, Field(gt=0, le=MAX_RATIO)] | None = 0.1
    latency_ratio: Annotated[float, Field(gt=0, le=MAX_RATIO)] | None = None
    size_ratio: Annotated[float, Field(gt=0, le=MAX_RATIO)] | None = None
    max_macs: Annotated[int, Field(gt=0, le=10**18)] | None = None
    max_params: Annotated[int, Field(gt=0, le=10**18)] | None = None
    max_latency_ms: Annotated[float, Field(gt=0)] | None = None
    max_size_mb: Annotated[float, Field(gt=0)] | None = None
    #: bounds on the student's int8 version (latency measured on CPU, PyTorch's int8 kernels)
    max_latency_int8_ms: Annotated[float, Field(gt=0)] | None = None
    max_size_mb_int8: Annotated[float, Field(gt=0)] | None = None

    def bound(self, cost: str) -> tuple[float | None, float | None]:
        """(ratio to the teacher, absolute bound) for ``cost`` in :data:`COSTS`; int8 costs have
        absolute bounds only (the teacher is not priced as int8)."""
        ratio = None if cost in INT8_COSTS else getattr(self, f"{cost.split('_')[0]}_ratio")
        return ratio, getattr(self, f"max_{cost}")


class LatencySettings(_Model):
    """How latency is measured (on the search device): batch, threads, warm-up, repeats."""

    batch_size: Annotated[int, Field(ge=1, le=2**16)] = 1
    threads: Annotated[int, Field(ge=1, le=1024)] = 1
    warmup: Annotated[int, Field(ge=0, le=10**4)] = 3
    repeats: Annotated[int, Field(ge=1, le=10**5)] = 10


class PrescreenSettings(_Model):
    """The training-free first stage (``nas_student.search.prescreen``): before the first
    trial, draw ``candidates`` feasible students, score each at initialisation with ``score``
    (no training), and enqueue the ``keep`` best (by non-dominated sorting on the score and
    the cost objectives) as the study's first trials."""

    enabled: bool = False
    candidates: Annotated[int, Field(ge=1)] = 200
    keep: Annotated[int, Field(ge=1)] = 10
    score: Literal["naswot", "synflow", "diswot"] = "synflow"
    batch_size: Annotated[int, Field(ge=2)] = 64


class TrustSettings(_Model):
    """The trust report (``nas_student.search.trust``) after a search: re-train the front's
    students and ``off_front`` others for ``steps_factor`` x the proxy's steps (or ``steps``) and report the
    proxy's Kendall tau against that longer training (trust.json / trust.md)."""

    enabled: bool = True
    steps_factor: Annotated[float, Field(gt=1)] = 2.0
    steps: Annotated[int, Field(ge=1)] | None = None  # absolute; overrides steps_factor
    max_front: Annotated[int, Field(ge=1)] = 6
    off_front: Annotated[int, Field(ge=0)] = 2
    #: the longer runs' share of the search's training time at most (each student's estimated
    #: from its own proxy run's time): the pick shrinks from max_front + off_front towards 4 + 1
    #: to fit, never below; None: no limit (nas_student.search.trust.pick_within)
    budget: Annotated[float, Field(gt=0)] | None = 0.2
    #: where the longer runs start: "proxy" continues each student's proxy run from its kept
    #: weights (half the cost), "init" re-trains it from its initialisation, "auto" continues when
    #: the picked students are all of one family (a warm restart understates how much a slow
    #: starter still gains: results/BENCHMARKS.md, trust report vs full training)
    start: Literal["auto", "proxy", "init"] = "auto"


#: which student of the front to recommend (nas_student/results/recommend.py): the best
#: accuracy (the default: on mnist1d it kept 0.06-0.37 points more than within:1 after full
#: training, for 7-13 % more MACs), the cheapest within X points of the best, or the knee
RECOMMEND_RULE = re.compile(r"^(within:\d+(\.\d+)?|knee|best)$")
DEFAULT_RECOMMEND = "best"


class SearchSettings(_Model):
    trials: Annotated[int, Field(ge=1, le=10**6)] = 40
    sampler: Literal["tpe", "nsga2", "random"] = "tpe"
    seed: int = 0
    objectives: tuple[str, ...] = ("accuracy", "macs", "params")
    # Pareto-aware early stopping of proxy runs (nas_student/search/early_stop.py): at each rung
    # (a fraction of budget.steps) a student dominated by a cheaper-or-equal one is stopped.
    early_stop: bool = False
    rungs: tuple[Annotated[float, Field(gt=0, lt=1)], ...] = (0.25, 0.5)
    prescreen: PrescreenSettings = PrescreenSettings()
    trust: TrustSettings = TrustSettings()
    recommend: str = DEFAULT_RECOMMEND
    #: what the sampler optimises: "best" = the first quality objective alone, within the bounds
    #: (trials gather near the most accurate students; on mnist1d at 1/30 of the teacher's MACs
    #: its best student, fully trained, beat "front"'s by 0.84 points: results/BENCHMARKS.md);
    #: "front" = every objective (students spread along the whole trade-off). Every trial is
    #: priced either way and the front over `objectives` is reported the same.
    focus: Literal["front", "best"] = "best"

    def sampled_objectives(self) -> tuple[str, ...]:
        """The objectives the sampler is told (the study's directions)."""
        if self.focus == "best":
            return (next(o for o in self.objectives if OBJECTIVES[o] == "maximize"),)
        return self.objectives

    @field_validator("recommend")
    @classmethod
    def _rule(cls, v: str) -> str:
        if not RECOMMEND_RULE.match(v):
            raise ValueError(f"a recommendation rule is within:X (the cheapest student within X points of the "
                             f"best accuracy, e.g. within:1), knee or best; got {v!r}")
        return v

    @field_validator("objectives")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [o for o in v if o not in OBJECTIVES]
        if bad or not v or len(set(v)) != len(v):
            raise ValueError(f"objectives must be distinct names from {sorted(OBJECTIVES)}, got {list(v)}")
        if not any(OBJECTIVES[o] == "maximize" for o in v):
            raise ValueError(f"objectives need a quality to maximise (accuracy or agreement), got {list(v)}: "
                             "costs alone would make the untrained cheapest student the best")
        return v


class TeacherSpec(_Model):
    """The user's trained teacher: exactly one of ``factory`` (+ optional ``weights``),
    ``torchscript`` or ``hf_dir``. Factories and TorchScript run code: they need trust_code."""

    factory: str | None = None  # "package.module:function" or "path/to/file.py:function"
    kwargs: dict[str, bool | int | float | str | list[int] | None] = {}
    weights: str | None = None  # state_dict: .pt/.pth (weights_only) or .safetensors
    torchscript: str | None = None
    hf_dir: str | None = None  # a local Hugging Face transformers model folder (no download)

    @model_validator(mode="after")
    def _one_source(self) -> "TeacherSpec":
        given = [k for k in ("factory", "torchscript", "hf_dir") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of factory, torchscript, hf_dir "
                             f"(got {', '.join(given) or 'none'})")
        if self.weights and not self.factory:
            raise ValueError("weights go with a factory (TorchScript and HF models carry their own)")
        return self


class DataSpec(_Model):
    """The user's data. ``train`` (and optionally ``val``, ``test``) are files or folders:
    .npz (arrays ``x``, ``y``), .pt (a dict of tensors ``x``, ``y``), .csv (a label column and
    numeric feature columns) or a folder of images in class sub-folders. Or ``factory``
    (code: needs trust_code) returning the splits. Missing splits are cut from train by seed."""

    train: str | None = None
    val: str | None = None
    test: str | None = None
    factory: str | None = None
    unlabelled: str | None = None  # extra inputs without labels (semi-supervised distillation)
    #: the .npz/.pt key or the .csv column holding labels; several (one per task, with
    #: ``combine: tasks`` and one teacher per task) for a multi-task student
    label: str | Annotated[list[str], Field(min_length=2, max_length=16)] = "y"
    features: str = "x"  # the .npz/.pt key holding inputs (.csv: every other column)
    kind: Literal["classification", "lm"] = "classification"  # lm: token sequences, next-token targets
    vocab_size: Annotated[int, Field(ge=1)] | None = None  # token inputs; default: largest id + 1
    image_size: tuple[int, int] | None = None  # (height, width); default: the first image's
    grayscale: bool = False
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)

    @field_validator("split")
    @classmethod
    def _fractions(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if abs(sum(v) - 1.0) > 1e-6 or min(v) < 0 or v[0] <= 0:
            raise ValueError(f"split must be three non-negative fractions summing to 1, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _source(self) -> "DataSpec":
        if bool(self.train) == bool(self.factory):
            raise ValueError("give exactly one of train (a file or folder) or factory")
        if isinstance(self.label, list) and (len(set(self.label)) != len(self.label) or self.kind == "lm"):
            raise ValueError("several labels (one per task) must be distinct, and are for classification")
        return self

    @property
    def labels(self) -> list[str]:
        """The label keys: one per task."""
        return self.label if isinstance(self.label, list) else [self.label]


class ExecutionSettings(_Model):
    """Where the trials run and where the study is kept. Not part of a run's identity: a run
    can be resumed with another backend, more workers, or on a cluster."""

    backend: Literal["optuna", "ray"] = "optuna"
    # None: SQLite in the run folder; or an SQLAlchemy URL (postgresql://...), or journal:PATH
    # (an Optuna journal file, e.g. on a shared disk).
    storage: str | None = None
    address: str | None = None  # Ray cluster to join (ray backend); None starts a local one
    cpus_per_trial: Annotated[float, Field(gt=0)] = 1.0
    gpus_per_trial: Annotated[float, Field(ge=0)] = 0.0
    max_concurrent: Annotated[int, Field(ge=1)] | None = None  # ray: None = as resources allow
    #: local search processes (optuna backend): auto = every usable core on the CPU, 1 on a GPU
    workers: Literal["auto"] | Annotated[int, Field(ge=1, le=1024)] = "auto"

    @field_validator("storage")
    @classmethod
    def _absolute_file(cls, v: str | None) -> str | None:
        """A journal or SQLite file given relative (to the working folder; a run file's are made
        relative to its folder first) is stored absolute: the run, its workers and `pareto` find
        it from any folder."""
        return rebase_storage(v, Path.cwd()) if v else v


def rebase_storage(url: str, base: Path) -> str:
    """``url`` with the file of a ``journal:PATH`` or ``sqlite:///PATH`` storage made absolute
    against ``base`` when relative; other URLs as they are."""
    for prefix in ("journal:", "sqlite:///"):
        path = url[len(prefix):] if url.startswith(prefix) else ""
        if path and not Path(path).expanduser().is_absolute():
            return prefix + str((base / path).resolve())
        if path:
            return prefix + str(Path(path).expanduser())
    return url


#: the space a built-in task searches when none is given
DEFAULT_SPACES = {"digits": "digits-cnn", "mnist1d": "mnist1d-cnn", "text": "text-transformer",
                  "mnist1d-from-digits": "mnist1d-cnn", "mnist1d-multitask": "mnist1d-cnn"}


class RunConfig(_Model):
    run: str | None = None
    task: str = "mnist1d"  # a built-in task, or a name for your own teacher + data
    teacher: TeacherSpec | None = None
    #: several teachers (instead of ``teacher``). For one task their soft targets are combined
    #: per sample by ``combine`` (mean or confidence: nas_student/distill/ensemble.py); with
    #: ``combine: tasks`` each teacher has its own task (``data.label``: one label per teacher,
    #: in order) and the student one head per task (nas_student/distill/multitask.py)
    teachers: Annotated[list[TeacherSpec], Field(min_length=2, max_length=64)] | None = None
    combine: Literal["mean", "confidence", "tasks"] = "mean"
    #: what the students' cost is a fraction of, when there are several teachers: the sum of
    #: theirs (running them all) or the largest one's
    price_against: Literal["sum", "largest"] = "sum"
    data: DataSpec | None = None
    trust_code: bool = False
    space: str = "auto"  # without one: a built-in task's own space (DEFAULT_SPACES); your task's: auto
    results_dir: str = "results"
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    budget: ProxyRecipe = ProxyRecipe()
    constraints: Constraints = Constraints()
    latency: LatencySettings = LatencySettings()
    search: SearchSettings = SearchSettings()
    data_free: DataFreeSettings = DataFreeSettings()
    execution: ExecutionSettings = ExecutionSettings()

    @model_validator(mode="before")
    @classmethod
    def _default_space(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("space") is None and isinstance(data.get("task", "mnist1d"), str):
            task = data.get("task", "mnist1d")
            if task in DEFAULT_SPACES and data.get("data") is None:
                data = {**data, "space": DEFAULT_SPACES[task]}
        return data

    @field_validator("run")
    @classmethod
    def _folder_name(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", v):
            raise ValueError("a run is one folder under the results folder: letters, digits, _ . - "
                             "and not starting with . or -")
        return v

    @model_validator(mode="after")
    def _teacher_with_data(self) -> "RunConfig":
        if self.teacher is not None and self.teachers is not None:
            raise ValueError("give `teacher` (one) or `teachers` (several), not both")
        if (self.teacher is None and self.teachers is None) != (self.data is None):
            raise ValueError("your own task needs both `teacher` (or `teachers`) and `data`")
        labels = self.data.labels if self.data else []
        if self.combine == "tasks" and len(labels) != len(self.teachers or []):
            raise ValueError(f"combine: tasks needs one teacher per task and one data.label per task: "
                             f"{len(self.teachers or [])} teacher(s), {len(labels)} label(s)")
        if len(labels) > 1 and self.combine != "tasks":
            raise ValueError("several data.label keys are several tasks: set `combine: tasks` and give one "
                             "teacher per task")
        return self

    @model_validator(mode="after")
    def _rungs_with_one_step_count(self) -> "RunConfig":
        if self.search.early_stop and self.budget.family_step_factor:
            raise ValueError("search.early_stop compares students at the same step, so it cannot be combined with "
                             "budget.family_step_factor (students of those families train longer); drop one of them")
        if self.search.early_stop and self.budget.depth_power:
            raise ValueError("search.early_stop compares students at the same step, so it cannot be combined with "
                             "budget.depth_power (deeper students train longer); drop one of them")
        return self

    @property
    def custom_task(self) -> bool:
        return self.data is not None

    def needs_latency(self) -> bool:
        c = self.constraints
        return ("latency_ms" in self.search.objectives or c.latency_ratio is not None
                or c.max_latency_ms is not None or self.needs_int8_latency())

    def needs_int8(self) -> bool:
        """Whether each student's int8 version is made and priced (an int8 objective or bound)."""
        c = self.constraints
        return (any(o in INT8_COSTS for o in self.search.objectives) or c.max_size_mb_int8 is not None
                or c.max_latency_int8_ms is not None)

    def needs_int8_latency(self) -> bool:
        return "latency_int8_ms" in self.search.objectives or self.constraints.max_latency_int8_ms is not None

    def run_name(self) -> str:
        """The run folder's name: given, or derived from task, space and seed."""
        if self.run:
            return self.run
        space = re.sub(r"\.ya?ml$", "", self.space.rsplit("/", 1)[-1])
        return f"{self.task}-{space}-s{self.search.seed}"


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Where two nested settings differ, as ``key.path old -> new`` (JSON values)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(set(old) | set(new), key=str)
                for d in differences(old.get(k), new.get(k), f"{path}.{k}" if path else str(k))]
    return [] if old == new else [f"{path or 'value'} {json.dumps(old)} -> {json.dumps(new)}"]
