"""``space: auto``: a space derived from the input's kind and the teacher's cost, on each input
kind: it validates, its families fit the input, its cheapest student is within the bounds and
its largest sampled students reach at least half of the bound."""

from pathlib import Path

import pytest
import torch

from nas_student.cost.profile import profile
from nas_student.errors import NasStudentError
from nas_student.families import build
from nas_student.families.base import ModelIO
from nas_student.search.feasibility import cheapest
from nas_student.spaces import (
    MixedSpace,
    RandomSuggester,
    load_run_space,
    load_space,
    load_space_file,
)
from nas_student.spaces.auto import (
    AUTO,
    FILE,
    LOW_FRACTION,
    auto_space_yaml,
    input_kind,
)
from nas_student.spaces.loader import parse_space
from nas_student.yamlio import loads_yaml

# (input kind, interface, teacher cost, families expected)
CASES = {
    "image": (ModelIO((1, 8, 8), 10), {"macs": 9.67e6, "params": 8.68e5}, ["cnn"]),
    "rgb-image": (ModelIO((3, 16, 16), 5), {"macs": 2.0e7, "params": 3.0e5}, ["cnn"]),
    "signal": (ModelIO((1, 40), 10), {"macs": 1.89e6, "params": 1.27e5}, ["cnn1d", "rnn", "transformer"]),
    "tokens": (ModelIO((64,), 62, "int64", 62, per_token=True, causal=True),
               {"macs": 2.78e7, "params": 4.13e5}, ["transformer", "rnn"]),
    "vector": (ModelIO((30,), 2), {"macs": 2.0e5, "params": 2.0e5}, ["mlp"]),
}


def generate(case: str, tmp_path: Path):
    io, teacher, _ = CASES[case]
    bounds = {k: v / 10 for k, v in teacher.items()}
    text = auto_space_yaml(io, teacher, bounds, name=f"{case}-auto", task=case)
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    return load_space_file(path), io, teacher, bounds


def score(arch, io, scale):
    with torch.no_grad():
        c = profile(build(arch, io), io.example_input())
    return max(c.macs / scale["macs"], c.params / scale["params"])


@pytest.mark.parametrize("case", list(CASES))
def test_auto_space_spans_cheap_students_to_the_bound(case, tmp_path):
    space, io, teacher, bounds = generate(case, tmp_path)
    families = CASES[case][2]
    assert space.families == families
    assert isinstance(space, MixedSpace) == (len(families) > 1)
    best, _ = cheapest(space, io, bounds)
    assert best is not None and best.score <= 1  # the cheapest student is within the bounds
    rng, scores = RandomSuggester(0), []
    while len(scores) < 16:
        arch = space.sample(rng)
        if not space.violations(arch):
            scores.append(score(arch, io, bounds))
    assert max(scores) >= 0.5  # sampled students reach at least half of the bound
    assert min(scores) < 0.5  # ... and not only the dear end


def test_the_cheap_end_is_near_one_300th_of_the_teacher(tmp_path):
    """Where the narrowest width allows, the cheapest student is at most 1/300 of the teacher
    and not far below it (the ladder's bottom is the widest that stays at or under)."""
    space, io, teacher, _ = generate("signal", tmp_path)
    low = {k: v * LOW_FRACTION for k, v in teacher.items()}
    best, _ = cheapest(space.branches["cnn1d"], io, low)
    assert best is not None and 0.1 < best.score <= 1


def test_the_rules_follow_the_budget(tmp_path):
    """A teacher 10x dearer gives wider students (nothing about the task is hard-coded)."""
    io, teacher, _ = CASES["vector"]

    def top_width(scale):
        t = {k: v * scale for k, v in teacher.items()}
        data, lines = loads_yaml(auto_space_yaml(io, t, {k: v / 10 for k, v in t.items()}), "x.yaml")
        return max(parse_space(data, lines, "x.yaml").params["layers"].params["width"].values)

    assert top_width(10) > 2 * top_width(1)


def test_input_kinds():
    assert [input_kind(CASES[c][0]) for c in CASES] == ["image", "image", "signal", "tokens", "vector"]


def test_a_run_keeps_the_space_it_generated(tmp_path):
    with pytest.raises(NasStudentError, match="no space.yaml"):
        load_run_space(AUTO, tmp_path)
    io, teacher, _ = CASES["vector"]
    (tmp_path / FILE).write_text(auto_space_yaml(io, teacher, {"macs": 2e4, "params": 2e4}))
    assert load_run_space(AUTO, tmp_path).family == "mlp"
    assert load_run_space("digits-mlp", tmp_path).name == "digits-mlp"
    with pytest.raises(NasStudentError, match="generated from the teacher"):
        load_space(AUTO)
