from typer.testing import CliRunner

from nas_student.cli import app

runner = CliRunner()


def test_help_lists_commands_and_search_options():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("search", "spaces", "pareto"):
        assert cmd in result.output
    result = runner.invoke(app, ["search", "--help"])
    assert result.exit_code == 0
    for opt in ("--space", "--trials", "--run", "--seed", "--sampler", "--steps", "--macs-ratio", "--device"):
        assert opt in result.output


def test_spaces_lists_builtin_spaces_with_sizes():
    result = runner.invoke(app, ["spaces"], terminal_width=200)
    assert result.exit_code == 0
    assert "digits-cnn" in result.output and "digits-mlp" in result.output
    assert "304,425" in result.output  # the size of digits-mlp


def test_bad_option_values_give_one_line_and_exit_2(tmp_path):
    result = runner.invoke(app, ["search", "--sampler", "grid", "--results-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "search.sampler" in result.output and "grid" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["search", "--objectives", "accuracy,speed", "--results-dir", str(tmp_path)])
    assert result.exit_code == 2 and "objectives" in result.output


def test_pareto_on_a_missing_run_is_one_line(tmp_path):
    result = runner.invoke(app, ["pareto", "nope", "--results-dir", str(tmp_path)])
    assert result.exit_code == 2 and "no run 'nope'" in result.output and "study.db" in result.output
