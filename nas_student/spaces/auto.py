"""``space: auto``: a search space derived from the task's interface and the teacher's cost.

Nothing about a task is hard-coded; the rules read the input's shape and kind, the class count
(through the priced output head) and the teacher's measured cost:

1. **Families from the input.** Token ids: Transformer and GRU/LSTM students (the family is
   searched). A ``(C, L)`` signal: 1-D CNN, GRU/LSTM and Transformer students (searched). A
   ``(C, H, W)`` image: 2-D CNN students. A flat ``(D,)`` vector: MLP students (its features
   have no order a convolution could use; give signals a channel axis, ``(1, L)``).
2. **Blocks that need no rules.** CNN stages are MobileNetV2 inverted residuals (expansion 1,
   2 or 4; expansion 1 is a depthwise-separable conv), as in MnasNet and Once-for-all. A choice
   between plain and inverted blocks needs a rule (``expansion`` means nothing to a plain
   block), and a random proposal of 1-4 stages breaks it 60 % of the time: on mnist1d the CNN
   family was then hardly trained (results/records/auto_space.md).
3. **Depth from the input.** A CNN has one stage per halving the input allows (at most 4;
   ``log2`` of the shortest side); MLPs 1-3 hidden layers; sequence models 1-2 (RNN) or 1-3
   (Transformer) layers. Kernels that do not fit the input are left out.
4. **Widths from the budget.** Every width is drawn from one geometric ladder of 6 values per
   family, calibrated by pricing real builds (fvcore MACs, parameters) of a *typical* student:
   every width at the rung being priced, every other choice (depth, kernel, expansion, block,
   cell, ...) at its middle value. The top of the ladder is the narrowest width at which the typical student
   reaches the bound (dearer combinations go past it; the search's constraints keep what is
   within); the bottom is the widest at which it still costs at most 1/300 of the teacher (the
   narrowest width, 4 (8 for a Transformer's d_model), when even that costs more), and at most
   a quarter of the top. A student's cost is the larger of its MACs and parameter ratios.

The result is ordinary space YAML (:func:`auto_space_data`), validated by the same loader as
any file, written to the run folder as ``space.yaml`` and by ``nas-student spaces --auto``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from nas_student.families.base import ModelIO

#: the cheapest student aims at this fraction of the teacher's cost
LOW_FRACTION = 1 / 300
#: the reference dear student of a family (see :class:`_Reference`) costs at least this many times the bound
HIGH_OVER_BOUND = 1.0
LADDER = 6
MIN_WIDTH = 4
MAX_WIDTH = 2048
MAX_STAGES = 4
#: the ladder's top is at least this many times its bottom
MIN_SPAN = 4
AUTO = "auto"

Template = Callable[[list[int]], dict[str, Any]]


def input_kind(io: ModelIO) -> str:
    """``tokens``, ``signal`` (C, L), ``image`` (C, H, W) or ``vector`` (D,)."""
    if io.tokens:
        return "tokens"
    return {1: "vector", 2: "signal", 3: "image"}.get(len(io.input_shape), "vector")


def _choice(values: list[Any]) -> dict[str, Any]:
    return {"type": "choice", "values": values}


def _halvings(side: int) -> int:
    return max(1, min(MAX_STAGES, int(math.log2(max(side, 1)))))


def _cnn(io: ModelIO, kind: str) -> Template:
    side = min(io.input_shape[1:])
    kernels = [k for k in ((3, 5, 7) if kind == "signal" else (3, 5)) if k <= side] or [1]
    stages = _halvings(side)

    def params(ladder: list[int]) -> dict[str, Any]:
        return {
            "stem_width": _choice(ladder[:3]),
            "stem_kernel": _choice(kernels),
            "stages": {
                "type": "repeat",
                "count": {"type": "int", "low": 1, "high": stages},
                "params": {  # MBConv stages (as in MnasNet, FBNet, Once-for-all): no rules to break
                    "block": "inverted",
                    "expansion": _choice([1, 2, 4]),
                    "depth": {"type": "int", "low": 1, "high": 2},
                    "width": _choice(ladder),
                    "kernel": _choice(kernels),
                    "downsample": _choice(["stride", "maxpool", "none"]),
                },
            },
            "norm": "batch",
            "activation": _choice(["relu", "silu"]),
            "residual": _choice([False, True]),
        }
    return params


def _mlp(io: ModelIO) -> Template:
    def params(ladder: list[int]) -> dict[str, Any]:
        return {
            "layers": {"type": "repeat", "count": {"type": "int", "low": 1, "high": 3},
                       "params": {"width": _choice(ladder)}},
            "activation": _choice(["relu", "gelu"]),
            "norm": _choice(["none", "batch"]),
        }
    return params


def _rnn(io: ModelIO) -> Template:
    def params(ladder: list[int]) -> dict[str, Any]:
        return {
            "cell": _choice(["gru", "lstm"]),
            "layers": {"type": "int", "low": 1, "high": 2},
            "hidden": _choice(ladder),
            "embed_dim": _choice(ladder[:4]),
            "bidirectional": False if io.causal else _choice([False, True]),
        }
    return params


def _transformer(io: ModelIO) -> Template:
    def params(ladder: list[int]) -> dict[str, Any]:
        return {
            "layers": {"type": "int", "low": 1, "high": 3},
            "d_model": _choice(ladder),
            "heads": _choice([1, 2, 4]),
            "ffn_ratio": _choice([1.0, 2.0, 4.0]),
            "pos_encoding": _choice(["sinusoidal", "learned"]),
        }
    return params


#: per family: the width quantum, the template, the rules
def _families(io: ModelIO) -> dict[str, tuple[int, Template, list[str]]]:
    kind = input_kind(io)
    heads = ["d_model % heads == 0", "d_model / heads >= 4"]
    if kind == "tokens":
        return {"transformer": (8, _transformer(io), heads), "rnn": (4, _rnn(io), [])}
    if kind == "signal":
        return {"cnn1d": (4, _cnn(io, kind), []), "rnn": (4, _rnn(io), []),
                "transformer": (8, _transformer(io), heads)}
    if kind == "image":
        return {"cnn": (4, _cnn(io, kind), [])}
    return {"mlp": (4, _mlp(io), [])}


def _ladder(low: int, high: int, quantum: int) -> list[int]:
    """``LADDER`` widths, geometric from ``low`` to ``high``, multiples of ``quantum``."""
    high = max(high, low)
    values = [low * (high / low) ** (i / (LADDER - 1)) for i in range(LADDER)]
    out = sorted({max(quantum, int(round(v / quantum)) * quantum) for v in values})
    return out


#: parameter names (the last part of a sampled name) that set a width
WIDTHS = frozenset({"width", "stem_width", "hidden", "embed_dim", "d_model"})


class _Reference:
    """A suggester for the students that calibrate a ladder. ``dear``: the typical student of
    the ladder's widest rung (every width at its largest, every other choice, depths included,
    at its middle value). Otherwise the cheapest student (every parameter at its first,
    cheapest value)."""

    def __init__(self, dear: bool) -> None:
        self.dear = dear

    def _big(self, name: str) -> bool:
        return self.dear and name.rsplit(".", 1)[-1] in WIDTHS

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        top = low + (high - low) // step * step
        if not self.dear:
            return low
        return top if self._big(name) else low + (high - low) // step // 2 * step

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return (low + high) / 2 if self.dear else low

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        if not self.dear:
            return choices[0]
        return choices[-1] if self._big(name) else choices[(len(choices) - 1) // 2]


def _one_family_data(family: str, params: dict[str, Any], rules: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "auto", "family": family, "params": params}
    if rules:
        data["rules"] = rules
    return data


class _Calibrator:
    """Prices one family's cheapest or dearest student for a candidate ladder."""

    def __init__(self, family: str, template: Template, rules: list[str], io: ModelIO,
                 scale: dict[str, float]) -> None:
        self.family, self.template, self.rules, self.io, self.scale = family, template, rules, io, scale
        self.priced = 0

    def score(self, ladder: list[int], dearest: bool) -> float:
        """The student's largest cost ratio against ``scale`` (MACs, params)."""
        import torch

        from nas_student.cost.profile import profile
        from nas_student.families import build
        from nas_student.spaces.loader import parse_space

        space = parse_space(_one_family_data(self.family, self.template(ladder), self.rules), {}, "<auto>")
        arch = space.sample(_Reference(dearest))
        with torch.no_grad():
            cost = profile(build(arch, self.io), self.io.example_input())
        self.priced += 1
        return max(cost.macs / self.scale["macs"], cost.params / self.scale["params"])


def _widths(low: int, high: int, quantum: int) -> list[int]:
    """Candidate widths from ``low`` to ``high``: multiples of ``quantum``, about 19 % apart
    (four per doubling: the ladder's precision, at a few pricings per family)."""
    out, w = {low, high}, float(low)
    while w < high:
        out.add(min(high, max(low, int(round(w / quantum)) * quantum)))
        w *= 2 ** 0.25
    return sorted(out)


def _bisect(ok: Callable[[int], bool], low: int, high: int, quantum: int) -> int:
    """The smallest candidate width in [low, high] for which ``ok`` holds (``ok`` is monotone);
    ``high`` when none does."""
    widths = _widths(low, high, quantum)
    lo, hi = 0, len(widths) - 1
    if not ok(widths[hi]):
        return widths[hi]
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(widths[mid]):
            hi = mid
        else:
            lo = mid + 1
    return widths[lo]


def _scale(teacher: dict[str, float], bounds: dict[str, float]) -> dict[str, float]:
    """What "the bound" is in MACs and params: the run's bounds (a size bound read as fp32
    params), or 1/10 of the teacher where a cost is not bounded."""
    params = min(bounds.get("params", math.inf), bounds.get("size_mb", math.inf) * 1e6 / 4)
    return {"macs": bounds.get("macs", teacher["macs"] * 0.1),
            "params": params if math.isfinite(params) else teacher["params"] * 0.1}


def calibrate(family: str, quantum: int, template: Template, rules: list[str], io: ModelIO,
              teacher: dict[str, float], bounds: dict[str, float]) -> list[int]:
    """The width ladder of one family (see the module's rules)."""
    floor = max(MIN_WIDTH, quantum)
    high_scale = _scale(teacher, bounds)
    low_scale = {k: teacher[k] * LOW_FRACTION for k in ("macs", "params")}
    dear = _Calibrator(family, template, rules, io, high_scale)
    top = _bisect(lambda w: dear.score(_ladder(floor, w, quantum), True) >= HIGH_OVER_BOUND,
                  floor, MAX_WIDTH, quantum)
    cheap = _Calibrator(family, template, rules, io, low_scale)
    if cheap.score([floor], True) > 1:
        bottom = floor
    else:  # the widest bottom at which a typical student still costs at most 1/300 of the teacher
        first_over = _bisect(lambda w: cheap.score([w], True) > 1, floor, top, quantum)
        below = [w for w in _widths(floor, top, quantum) if w < first_over]
        bottom = max(floor, min(below[-1] if below else floor, top // MIN_SPAN // quantum * quantum))
    return _ladder(bottom, top, quantum)


def auto_space_data(io: ModelIO, teacher: dict[str, float], bounds: dict[str, float],
                    name: str = "auto") -> dict[str, Any]:
    """The space, as the mapping a space file holds (YAML-ready)."""
    families = _families(io)
    kind = input_kind(io)
    branches = {}
    for family, (quantum, template, rules) in families.items():
        ladder = calibrate(family, quantum, template, rules, io, teacher, bounds)
        branches[family] = {"params": template(ladder), **({"rules": rules} if rules else {})}
    shape = "x".join(str(d) for d in io.input_shape)
    description = (f"auto: {'|'.join(families)} students for {kind} input {shape}, "
                   f"{io.num_outputs} outputs; widths spanning ~1/300 of the teacher to the bound")
    if len(branches) == 1:
        (family, branch), = branches.items()
        return {"name": name, "description": description, "family": family, **branch}
    return {"name": name, "description": description, "families": branches}


class _Flow(dict):
    """A parameter's mapping, written on one line: ``{type: choice, values: [8, 16]}``."""


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # no &id001 anchors: a user reads and edits this file


_Dumper.add_representer(_Flow, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True))


def _flowed(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("type") in ("int", "float", "choice"):
            return _Flow(node)
        return {k: _flowed(v) for k, v in node.items()}
    return node


def to_yaml(data: dict[str, Any], comment: str) -> str:
    """The space as a YAML file a user can read, edit and pass back with ``--space``."""
    head = "".join(f"# {line}\n" if line else "#\n" for line in comment.splitlines())
    body = yaml.dump(_flowed(data), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
    return head + body


FILE = "space.yaml"  # where a run keeps the space it generated


def auto_space_yaml(io: ModelIO, teacher: dict[str, float], bounds: dict[str, float], *,
                    name: str = "auto", task: str = "") -> str:
    """The generated space as commented YAML (what a run stores and ``spaces --auto`` writes)."""
    data = auto_space_data(io, teacher, bounds, name=name)
    said = ", ".join(f"{k} {bounds[k]:,.0f}" for k in ("macs", "params") if k in bounds)
    comment = (f"Generated by nas-student (`space: auto`) for task {task or '?'}: teacher "
               f"{teacher['macs']:,.0f} MACs, {teacher['params']:,.0f} params; bounds {said}.\n"
               "Edit it and pass it back with --space FILE. The rules that chose these ranges:\n"
               "nas_student/spaces/auto.py (README: `space: auto`).")
    return to_yaml(data, comment)
