"""Spaces that search the family itself (``families:``): sampling, names, rules, size, errors,
and the refusals at start-up of a space that cannot serve the task."""

import optuna
import pytest
from typer.testing import CliRunner

from nas_student.cli import app
from nas_student.errors import ConfigError, NasStudentError
from nas_student.search.feasibility import check_buildable
from nas_student.spaces import MixedSpace, load_space
from nas_student.spaces.loader import parse_space
from nas_student.tasks import task_io
from nas_student.yamlio import loads_yaml

MIXED = """\
name: two
families:
  mlp:
    params:
      layers:
        type: repeat
        count: {type: int, low: 1, high: 2}
        params:
          width: {type: choice, values: [8, 16]}
  rnn:
    params:
      cell: {type: choice, values: [gru, lstm]}
      hidden: {type: choice, values: [4, 8, 12]}
      layers: 1
    rules:
      - hidden != 12 or cell == 'gru'
"""


def space_from(text: str, name: str = "s.yaml"):
    data, lines = loads_yaml(text, name)
    return parse_space(data, lines, name)


def test_a_mixed_space_samples_each_family_with_prefixed_names():
    space = space_from(MIXED)
    assert isinstance(space, MixedSpace) and space.families == ["mlp", "rnn"]
    # mlp: 2 + 4 = 6 students; rnn: 2*3 minus (lstm, 12) = 5
    assert space.size == 11
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        arch = space.sample(trial)
        seen.add(arch["family"])
        names = set(trial.params) - {"family"}
        assert names and all(n.startswith(arch["family"] + ".") for n in names)
        assert set(arch) - {"family"} <= {"layers", "cell", "hidden"}
        study.tell(trial, 0.0)
    assert seen == {"mlp", "rnn"}


def test_rules_apply_within_their_family():
    space = space_from(MIXED)
    assert space.violations({"family": "rnn", "cell": "lstm", "hidden": 12, "layers": 1}) == [
        "hidden != 12 or cell == 'gru'"]
    assert space.violations({"family": "rnn", "cell": "gru", "hidden": 12, "layers": 1}) == []
    assert "not one of this space's" in space.violations({"family": "cnn", "stem_width": 4})[0]


@pytest.mark.parametrize("old,new,line,needle", [
    ("hidden: {type: choice, values: [4, 8, 12]}", "hidden: {type: int, low: 9, high: 3}", 13,
     "families.rnn.params.hidden: `low <= high` must hold"),
    ("  rnn:\n", "  rnnn:\n", 11, "families.rnnn: unknown family 'rnnn'"),
    ("      - hidden != 12 or cell == 'gru'", "      - depth > 1", 16,
     "families.rnn.rules[0]: rule uses unknown name(s) depth"),
    ("          width: {type", "          widht: {type", 9,
     "families.mlp.params.layers.params.widht: family 'mlp': unknown parameter"),
])
def test_errors_in_a_family_name_its_line_and_key(old, new, line, needle):
    assert old in MIXED
    with pytest.raises(ConfigError) as e:
        space_from(MIXED.replace(old, new))
    assert f"s.yaml:{line}:" in str(e.value) and needle in str(e.value), str(e.value)


def test_builtin_mixed_space_builds_every_family_for_signals():
    space = load_space("mnist1d-mixed")
    assert set(space.families) == {"cnn1d", "mlp", "rnn", "transformer"}
    check_buildable(space, task_io("mnist1d"))  # no error


@pytest.mark.parametrize("space,task,needle", [
    ("mnist1d-cnn", "digits", "family 'cnn1d' takes (channels, length) signals"),
    ("digits-cnn", "mnist1d", "family 'cnn' takes (channels, height, width) images"),
    ("mnist1d-mixed", "digits", "takes"),
    ("text-rnn", "digits", "takes token ids (length,) or signals"),
])
def test_a_space_that_cannot_serve_the_task_is_refused_before_training(space, task, needle):
    with pytest.raises(NasStudentError) as e:
        check_buildable(load_space(space), task_io(task))
    assert needle in str(e.value) and "cannot serve this task" in str(e.value)


def test_cli_refuses_too_much_downsampling_in_one_line(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("""\
name: deep
family: cnn1d
params:
  stem_width: 4
  stages:
    type: repeat
    count: {type: int, low: 1, high: 8}
    params:
      depth: 1
      width: 4
      downsample: stride
""")
    result = CliRunner().invoke(app, ["search", "--task", "mnist1d", "--space", str(path),
                                      "--results-dir", str(tmp_path / "r")], terminal_width=400)
    lines = [x for x in result.output.strip().splitlines() if x.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "cannot serve this task" in lines[0] and "already 1 wide" in lines[0]
    assert "allow 6 downsamplings" in lines[0] and not (tmp_path / "r").exists()
