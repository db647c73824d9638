"""Generated bad run files (tests/runfile_fuzz.py): each is refused in one line, exit 2, no
traceback, nothing written. bench/reliability_record.py runs 1,000 and records the messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from runfile_fuzz import generate, make_project
from typer.testing import CliRunner

from nas_student.cli import app

N = 140  # 20 of each kind


class Accepted(BaseException):
    """Raised where a valid run file's search would create its study: the file was accepted."""


def accept(*args, **kwargs):
    raise Accepted


def outcome(folder: Path, text: str) -> tuple[bool, str]:
    """(refused as promised, what the CLI printed) for one run file written into ``folder``;
    ``nas_student.search.create_or_resume`` must be patched with :func:`accept` (a valid file
    then stops after its task, teacher and space loaded, before any trial)."""
    import shutil

    (folder / "run.yaml").write_text(text)
    results = folder / "results"
    shutil.rmtree(results, ignore_errors=True)
    try:
        res = CliRunner().invoke(app, ["search", "--config", str(folder / "run.yaml"), "--results-dir", str(results)],
                                 terminal_width=400)
    except Accepted:
        return False, "accepted: the search would start"
    lines = [x for x in res.output.splitlines() if x.strip()]
    ok = (res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
          and "Traceback" not in res.output and not results.exists())
    return ok, res.output.strip()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    make_project(folder)
    return folder


def test_generated_bad_run_files_are_each_refused_in_one_line(project, monkeypatch):
    monkeypatch.chdir(project)  # relative paths in the run files resolve from its folder anyway
    monkeypatch.setattr("nas_student.search.create_or_resume", accept)
    bad = []
    for kind, where, text in generate(N, seed=0):
        ok, printed = outcome(project, text)
        if not ok:
            bad.append((kind, where, printed[-600:]))
    assert not bad, f"{len(bad)} of {N} not refused in one line; first: {bad[:3]}"
