"""Malformed space files: one clear line naming file, line and key; exit code 2 from the CLI."""

import pytest
from space_fuzz import GOOD
from typer.testing import CliRunner

from nas_student.cli import app
from nas_student.errors import ConfigError
from nas_student.spaces import load_space

# (name, file text, expected line, substrings the message must contain)
CASES = [
    ("unknown top key", GOOD + "extra: 1\n", 10, ["extra", "unknown key"]),
    ("unknown param key", GOOD.replace("step: 8}", "step: 8, stepp: 2}"), 9,
     ["params.layers.params.width.stepp", "unknown key"]),
    ("low > high", GOOD.replace("low: 8, high: 32", "low: 32, high: 8"), 9,
     ["params.layers.params.width", "low <= high", "low=32, high=8"]),
    ("bad type", GOOD.replace("type: choice", "type: choise"), 4,
     ["params.activation.type", "must be one of", "choise"]),
    ("missing type", GOOD.replace("{type: choice, values: [relu, gelu]}", "{values: [relu]}"), 4,
     ["params.activation", "needs `type`"]),
    ("string number", GOOD.replace("low: 8,", "low: '8',"), 9,
     ["params.layers.params.width.low", "valid integer", "'8'"]),
    ("unknown family", GOOD.replace("family: mlp", "family: mpl"), 2,
     ["family", "unknown family 'mpl'", "cnn", "did you mean 'mlp'"]),
    ("family param typo", GOOD.replace("activation:", "activaton:"), 4,
     ["params.activaton", "unknown parameter"]),
    ("bad family value", GOOD.replace("[relu, gelu]", "[relu, swish]"), 4,
     ["params.activation", "swish"]),
    ("rule unknown name", GOOD + "rules: ['depth > 1']\n", 10, ["rules[0]", "unknown name", "depth"]),
    ("rule code", GOOD + "rules: ['__import__(\"os\")']\n", 10, ["rules[0]", "only the functions"]),
    ("empty space", GOOD + "rules: ['activation == \"tanh\"']\n", 10, ["rules", "no architecture"]),
    ("duplicate key", GOOD + "family: cnn\n", 10, ["family", "duplicate key", "line 2"]),
    ("syntax", GOOD.replace("values: [relu, gelu]}", "values: [relu, gelu}"), 4, ["YAML syntax error"]),
    ("alias", GOOD.replace("activation: {type: choice, values: [relu, gelu]}",
                           "activation: &a {type: choice, values: [relu, gelu]}\n  act2: *a"), 5,
     ["aliases"]),
    ("python tag", GOOD.replace("{type: choice, values: [relu, gelu]}",
                                "!!python/object/apply:os.system ['touch /tmp/pwned']"), 4,
     ["not allowed", "python"]),
    ("not a mapping", "- 1\n- 2\n", 1, ["must be a mapping"]),
    ("log with step", GOOD.replace("step: 8}", "step: 8, log: true}"), 9, ["log: true"]),
]


@pytest.mark.parametrize("name,text,line,needles", CASES, ids=[c[0] for c in CASES])
def test_malformed_space_names_file_line_and_key(tmp_path, name, text, line, needles):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_space(str(path))
    msg = str(info.value)
    assert msg.startswith(f"{path}:{line}: "), msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    assert "\n" not in msg


def test_good_space_loads(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    assert load_space(str(path)).size == 2 * (4 + 16)


def test_float_exponent_is_read_as_float(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text(GOOD.replace("{type: choice, values: [0.0, 0.1]}", "")
                    + "      dropout: {type: float, low: 0, high: 1e-1}\n")
    space = load_space(str(path))
    assert space.params["layers"].params["dropout"].high == pytest.approx(0.1)


def test_cli_reports_bad_space_in_one_line_and_writes_nothing(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("low: 8, high: 32", "low: 32, high: 8"))
    result = CliRunner().invoke(app, ["search", "--task", "digits", "--space", str(path), "--results-dir", str(tmp_path / "res")])
    assert result.exit_code == 2
    lines = [x for x in result.output.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and f"{path}:9:" in lines[0] and "low <= high" in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "res").exists()


def test_unknown_builtin_space_lists_valid_names():
    result = CliRunner().invoke(app, ["search", "--task", "digits", "--space", "digits-cnnn"])
    assert result.exit_code == 2
    assert "unknown space 'digits-cnnn'" in result.output and "digits-mlp" in result.output
