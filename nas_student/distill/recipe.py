"""A distillation recipe: one YAML-declared object for the search proxy and for full training.

```yaml
steps: 3000            # optimiser steps (or `epochs: 40`, converted with the training-set size)
batch_size: 64
optimizer: adam        # adam | adamw | sgd (Nesterov, momentum 0.9)
lr: 3e-3
weight_decay: 0
schedule: cosine       # learning-rate decay: constant | linear | cosine
warmup_steps: 0
temperature: {kind: cosine, start: 8, end: 2}   # or a number: constant T
alpha: 0.9             # weight of T^2 * KL(teacher || student); a number or a schedule
beta: 0.1              # weight of the hard-label cross-entropy; a number or a schedule
features:              # FitNets-style hints (intermediate features, learned projections)
  weight: 1.0
  pairs: auto          # or [{teacher: stage2, student: stage1}, ...]
attention:             # attention-map transfer (Transformer pairs), adaptive per-head weights
  weight: 1.0
labelled_fraction: 1.0 # semi-supervised: use labels of this fraction only; distil every input
seed: 0
```

Every field has a default, so ``{}`` is a valid recipe (the search's default proxy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from nas_student.distill.schedules import Schedule, Scheduled, lower_bound, upper_bound, value_at


#: the largest loss weight or temperature a recipe takes (a typo of 1e30 is refused, not trained)
MAX_WEIGHT = 1000.0


def _at_most(v: Scheduled) -> Scheduled:
    if upper_bound(v) > MAX_WEIGHT:
        raise ValueError(f"must be at most {MAX_WEIGHT:g} (at every step of its schedule)")
    return v


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class FeaturePair(_Model):
    """One teacher feature distilled into one student feature (names of feature taps, or of
    the teacher's sub-modules when it is not one of our families)."""

    teacher: Annotated[str, Field(min_length=1)]
    student: Annotated[str, Field(min_length=1)]


class FeatureKD(_Model):
    """Intermediate-feature distillation (FitNets hints). ``pairs: auto`` follows the rule in
    :mod:`nas_student.distill.feature_map`."""

    weight: Annotated[float, Field(ge=0, le=MAX_WEIGHT)] = 1.0
    pairs: Annotated[Union[Annotated[Literal["auto"], Tag("auto")],
                           Annotated[tuple[FeaturePair, ...], Tag("list")]],
                     Discriminator(lambda v: "auto" if isinstance(v, str) else "list")] = "auto"


class AttentionKD(_Model):
    """Attention-map distillation between Transformer layers (mapped by relative depth), each
    student head matched to a learned mixture of the teacher's heads."""

    weight: Annotated[float, Field(ge=0, le=MAX_WEIGHT)] = 1.0
    adaptive_heads: bool = True


class Recipe(_Model):
    """How a student is trained: budget, optimiser, schedules and loss terms."""

    steps: Annotated[int, Field(ge=1, le=10**9)] = 300
    epochs: Annotated[float, Field(gt=0, le=10**6)] | None = None
    batch_size: Annotated[int, Field(ge=1, le=2**20)] = 64
    lr: Annotated[float, Field(gt=0, le=10)] = 3e-3
    weight_decay: Annotated[float, Field(ge=0, le=10)] = 0.0
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    schedule: Literal["constant", "linear", "cosine"] = "cosine"
    warmup_steps: Annotated[int, Field(ge=0, le=10**9)] = 0
    temperature: Scheduled = 4.0
    alpha: Scheduled = 0.9
    beta: Scheduled = 0.1
    features: FeatureKD | None = None
    attention: AttentionKD | None = None
    labelled_fraction: Annotated[float, Field(gt=0, le=1)] = 1.0
    seed: int = 0

    @field_validator("temperature")
    @classmethod
    def _positive(cls, v: Scheduled) -> Scheduled:
        if lower_bound(v) <= 0:
            raise ValueError("must be greater than 0 (at every step of its schedule)")
        return _at_most(v)

    @field_validator("alpha", "beta")
    @classmethod
    def _non_negative(cls, v: Scheduled) -> Scheduled:
        if lower_bound(v) < 0:
            raise ValueError("must be >= 0 (at every step of its schedule)")
        return _at_most(v)

    @model_validator(mode="after")
    def _ranges(self) -> "Recipe":
        # stored settings carry the default steps next to epochs: only a chosen steps conflicts
        if (self.epochs is not None and "steps" in self.model_fields_set
                and self.steps != type(self).model_fields["steps"].default):
            raise ValueError("give steps or epochs, not both (epochs would win silently)")
        if self.warmup_steps >= self.steps and self.epochs is None:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be below steps ({self.steps})")
        return self

    def total_steps(self, n_train: int) -> int:
        """Optimiser steps: ``steps``, or ``epochs`` passes over ``n_train`` rows."""
        if self.epochs is None:
            return self.steps
        per_epoch = max(1, -(-n_train // self.batch_size))
        return max(1, round(self.epochs * per_epoch))

    @property
    def final_temperature(self) -> float:
        """T at the end of training (what the KD loss of a trained student is reported at)."""
        return value_at(self.temperature, self.steps - 1, self.steps)

    @property
    def uses_teacher_model(self) -> bool:
        """True when the teacher must run on the inputs (features or attention maps), not
        only its logits."""
        return bool((self.features and self.features.weight) or (self.attention and self.attention.weight))

    def describe(self) -> str:
        def fmt(v: Scheduled) -> str:
            return f"{v.start:g}->{v.end:g} {v.kind}" if isinstance(v, Schedule) and v.end is not None else (
                f"{v.start:g}" if isinstance(v, Schedule) else f"{v:g}")
        parts = [f"{self.steps} steps" if self.epochs is None else f"{self.epochs:g} epochs",
                 f"T={fmt(self.temperature)}", f"alpha={fmt(self.alpha)}", f"beta={fmt(self.beta)}"]
        if self.features:
            parts.append(f"features x{self.features.weight:g}")
        if self.attention:
            parts.append(f"attention x{self.attention.weight:g}")
        if self.labelled_fraction < 1:
            parts.append(f"{self.labelled_fraction:.0%} labels")
        return ", ".join(parts)


#: the measured exponent of steps by depth (``--depth-power 0.5``: ``steps * sqrt(depth /
#: 2)``). On three draws of mnist1d CNN students (40, 40 and 20, the last held out while the
#: rule was chosen) it ranked closer to full training than equal steps on every init seed
#: (Kendall tau, means of 3 seeds: 0.63 -> 0.75, 0.67 -> 0.74, 0.76 -> 0.83) at the same cost.
#: It is not the default: in real 40-trial searches it found no better student at 1/10 of the
#: teacher's MACs (6 seeds) and a worse one at 1/30 on 5 of 6 seeds (results/BENCHMARKS.md
#: section 10).
DEPTH_POWER = 0.5


class ProxyRecipe(Recipe):
    """The search's proxy (the run file's ``budget:``): a :class:`Recipe` whose defaults are
    chosen to *rank* students after a short run, not to train them well.

    150 steps, ``lr`` 0.01, ``temperature`` 1: on digits (30 students drawn from
    ``digits-cnn``, ``bench/proxy_fidelity.py``) this ranks students as full distillation
    (3000 steps, T = 4, lr 3e-3) does far better than the full recipe cut short (Kendall tau
    0.68 vs 0.54 at 150 steps, 5 % of the full run's steps; means over 5 init seeds): a short
    run at T = 4 and a small learning rate measures how fast a student starts, and
    unnormalised students start slowly. See
    ``results/BENCHMARKS.md``."""

    steps: Annotated[int, Field(ge=1, le=10**9)] = 150
    lr: Annotated[float, Field(gt=0, le=10)] = 1e-2
    temperature: Scheduled = 1.0
    #: ``lr`` per student family where the space mixes families (:meth:`for_student`): at 150
    #: steps and lr 0.01 recurrent and Transformer students are far from where they end, so
    #: the proxy ranked them below MLPs that full training puts behind them (mnist1d-mixed,
    #: 40 students: Kendall tau among the top half 0.42 -> 0.64 with these, mean of 3 init
    #: seeds; ``results/BENCHMARKS.md`` section 10). ``{}`` turns it off.
    family_lr: dict[str, Annotated[float, Field(gt=0, le=10)]] = Field(
        default_factory=lambda: {"rnn": 0.03, "transformer": 0.03})
    #: a multiple of ``steps`` per student family where the space mixes families, e.g.
    #: ``{rnn: 2, transformer: 2}``: slow starters get the steps they need to be ranked among
    #: themselves (mnist1d-mixed: top-half tau 0.64 -> 0.80, all students 0.54 -> 0.57, at
    #: 8.2 % of full training's steps instead of 5 %; mean of 3 init seeds, results/BENCHMARKS.md
    #: section 10). Off by default (the cost, and on that pool the front is CNNs either way).
    family_step_factor: dict[str, Annotated[float, Field(ge=0.1, le=100)]] = Field(default_factory=dict)
    #: deeper students train longer: a student of depth ``d`` (its family's
    #: :meth:`~nas_student.families.base.Family.depth`: CNN blocks, MLP hidden layers, RNN or
    #: Transformer layers) trains ``steps * (d / reference_depth) ** depth_power`` steps. A short
    #: run ranks shallow students above where full training puts them and deep ones below (they
    #: start slower and end higher). 0 (the default): every student trains ``steps``;
    #: :data:`DEPTH_POWER` ranks CNN students better but did not find better ones in real
    #: searches; in a mixed space it shortened one-layer RNN and Transformer students, slow
    #: starters, and ranked the better half worse (mnist1d-mixed, top-half tau 0.64 -> 0.55).
    depth_power: Annotated[float, Field(ge=0, le=2)] = 0.0
    #: the depth that trains exactly ``steps`` (2: the median student of the built-in CNN spaces)
    reference_depth: Annotated[int, Field(ge=1, le=1000)] = 2

    @model_validator(mode="before")
    @classmethod
    def _steps_per_layer(cls, data: Any) -> Any:
        return budget_by_depth(data) if isinstance(data, dict) and "steps_per_layer" in data else data

    @field_validator("family_lr", "family_step_factor")
    @classmethod
    def _known_families(cls, v: dict[str, float]) -> dict[str, float]:
        from nas_student.families import family_names

        unknown = sorted(set(v) - set(family_names()))
        if unknown:
            raise ValueError(f"unknown family {unknown[0]!r}; the families are {', '.join(family_names())}")
        return v

    def scaled(self, steps: int) -> "ProxyRecipe":
        """This proxy run for ``steps`` steps (each student's own steps in proportion): the
        trust report's longer runs."""
        return self.model_copy(update={"steps": steps})

    def steps_for(self, arch: Mapping[str, Any] | None) -> int:
        """The steps of student ``arch`` by its depth (:attr:`depth_power`), before any
        family's step factor."""
        family, power = (arch or {}).get("family"), self.depth_power
        if not power or family is None:
            return self.steps
        from nas_student.families import get_family

        depth = get_family(family).depth(dict(arch or {}))
        if depth is None:
            return self.steps
        return max(1, round(self.steps * (depth / self.reference_depth) ** power))

    def for_student(self, arch: Mapping[str, Any] | None, families: Sequence[str]) -> "ProxyRecipe":
        """The recipe the student ``arch`` trains with in a space of ``families``: its steps
        by its depth (:meth:`steps_for`); ``lr`` from :attr:`family_lr` and ``steps``
        times :attr:`family_step_factor` when the space mixes families (the only case
        measured, and the only one where students of different families are ranked against
        each other); else this recipe."""
        family = (arch or {}).get("family")
        steps = self.steps_for(arch)
        update: dict[str, float | int] = {}
        if len(set(families)) >= 2:
            if family in self.family_lr:
                update["lr"] = self.family_lr[family]
            if family in self.family_step_factor:
                steps = max(1, round(steps * self.family_step_factor[family]))
        if steps != self.steps:
            update.update(steps=steps, warmup_steps=min(self.warmup_steps, steps - 1))
        return self.model_copy(update=update) if update else self



def budget_by_depth(data: dict[str, Any]) -> dict[str, Any]:
    """A proxy budget stored before ``steps`` became the anchor of steps by depth, in today's
    terms (the same steps per student): ``steps_per_layer`` K with ``depth_power`` P (1 by
    default) is ``steps`` K x 2^P; ``steps_per_layer`` absent or None: every student trained
    ``steps`` (``depth_power`` 0)."""
    data = dict(data)
    per_layer = data.pop("steps_per_layer", None)
    if per_layer is None:
        data["depth_power"] = 0.0
    else:
        power = float(data.get("depth_power", 1.0))
        data.update(depth_power=power, steps=max(1, round(int(per_layer) * data.get("reference_depth", 2) ** power)))
    return data


def load_recipe(path: str | Path, overrides: dict[str, object] | None = None) -> Recipe:
    """A recipe from a YAML file (errors name file, line, key and rule), with ``overrides``
    (top-level keys) applied on top."""
    from nas_student.errors import ConfigError
    from nas_student.validation import validate_model
    from nas_student.yamlio import load_yaml

    data, lines = load_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("a recipe must be a mapping of settings", file=str(path), line=1)
    if "steps" in (overrides or {}):
        data.pop("epochs", None)  # --steps on the command line replaces the file's budget
    data = {**data, **(overrides or {})}
    return validate_model(Recipe, data, file=str(path), lines=lines)
