import pytest
from bad_inputs import CASES, MARKER, arguments, make_project
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


def test_the_command_list_flows_each_summary_as_one_paragraph(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # wide enough that rich wraps nothing
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "same bounds) until it has its trials. Start as many as you like" in result.output
    assert "pareto.csv, pareto.parquet, pareto.png" in result.output


def test_spaces_lists_builtin_spaces_with_sizes():
    result = runner.invoke(app, ["spaces"], terminal_width=200)
    assert result.exit_code == 0
    assert "digits-cnn" in result.output and "digits-mlp" in result.output
    assert "304,425" in result.output  # the size of digits-mlp


def test_bad_option_values_give_one_line_and_exit_2(tmp_path):
    result = runner.invoke(app, ["search", "--task", "digits", "--sampler", "grid", "--results-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "search.sampler" in result.output and "grid" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["search", "--task", "digits", "--objectives", "accuracy,speed", "--results-dir", str(tmp_path)])
    assert result.exit_code == 2 and "objectives" in result.output


def test_pareto_on_a_missing_run_is_one_line(tmp_path):
    result = runner.invoke(app, ["pareto", "nope", "--results-dir", str(tmp_path)])
    assert result.exit_code == 2 and "no run 'nope'" in result.output and "study.db" in result.output


# -- bad inputs: one line, exit 2, no traceback, nothing written (cases in bad_inputs.py) ---------


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-inputs")
    make_project(folder)
    return folder


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_bad_input_gives_one_line_and_writes_nothing(project, tmp_path, case, request, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a payload's relative path would land
    if case.digits:
        request.getfixturevalue("digits_task")  # the built-in teacher comes from the cache
    for f in project.iterdir():
        (tmp_path / f.name).symlink_to(f)
    result = runner.invoke(app, arguments(case, tmp_path), terminal_width=400)
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert case.needle in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "results").exists()  # no run folder, no study
    assert not (tmp_path / MARKER).exists() and not (project / MARKER).exists()


def test_an_exponent_without_a_dot_reads_as_a_number_in_a_run_file(tmp_path):
    from nas_student.runfile import build_config

    (tmp_path / "run.yaml").write_text("budget: {lr: 1e-3, temperature: 2E+0}\n")
    cfg = build_config(tmp_path / "run.yaml", {})
    assert cfg.budget.lr == 0.001 and cfg.budget.temperature == 2.0


def test_a_zero_ratio_disables_that_bound(monkeypatch):
    """`--macs-ratio 0` was dropped as if not given (0 == False), leaving the default bound."""
    import nas_student.cli.progress as progress
    from nas_student.errors import NasStudentError

    seen = {}

    def capture(cfg, console):
        seen["cfg"] = cfg
        raise NasStudentError("stop here")

    monkeypatch.setattr(progress, "run_with_progress", capture)
    result = runner.invoke(app, ["search", "--task", "digits", "--macs-ratio", "0"])
    assert result.exit_code == 2 and "stop here" in result.output
    assert seen["cfg"].constraints.macs_ratio is None and seen["cfg"].constraints.params_ratio == 0.1


def test_a_device_that_is_not_here_is_one_line(monkeypatch, tmp_path):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = runner.invoke(app, ["search", "--task", "digits", "--device", "cuda", "--results-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "device 'cuda' is not available here" in result.output and "--device auto" in result.output
    assert list(tmp_path.iterdir()) == []


def test_paths_that_are_not_what_they_must_be_are_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init", "sub/dir/run.yaml"])  # missing folders are made
    assert result.exit_code == 0 and (tmp_path / "sub" / "dir" / "run.yaml").exists()
    (tmp_path / "afile").write_text("x")
    result = runner.invoke(app, ["search", "--task", "digits", "--results-dir", "afile", "--space", "digits-mlp"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().startswith("error: afile/") and "not a directory" in result.output


def test_a_rerun_with_fewer_trials_than_finished_says_there_is_nothing_to_do(tmp_path, digits_task):
    args = ["search", "--task", "digits", "--space", "digits-mlp", "--steps", "5", "--no-trust", "--run", "f",
            "--results-dir", str(tmp_path)]
    assert runner.invoke(app, [*args, "--trials", "2"]).exit_code == 0
    result = runner.invoke(app, [*args, "--trials", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "The run already has 2 finished trials (--trials 1): nothing to search" in result.output
    assert "2 trials: " in result.output and "trial 2/2" in result.output
