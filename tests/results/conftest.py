from pathlib import Path

import pytest


def make_run(base: Path, name: str, trials: int, sampler: str = "tpe") -> Path:
    """A small search (30 steps per student) under ``base``, made once per test session:
    tests/test_cli_results.py declares the same fixtures and reuses the folder."""
    from nas_student.config import RunConfig
    from nas_student.distill import Budget
    from nas_student.search import run_search

    run_dir = base / name
    if (run_dir / "trials.csv").exists():
        return run_dir
    cfg = RunConfig(task="digits", run=name, results_dir=str(base), device="cpu", budget=Budget(steps=30),
                    search={"trials": trials, "seed": 0, "sampler": sampler})
    return run_search(cfg).run_dir


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory, _teacher_cache: Path) -> Path:
    """6 students (TPE). Tests that modify a run copy it first."""
    return make_run(tmp_path_factory.getbasetemp() / "runs", "small", 6)


@pytest.fixture(scope="session")
def small_run_b(tmp_path_factory: pytest.TempPathFactory, _teacher_cache: Path) -> Path:
    """4 students (random sampler; seed 0, so the same cached teacher), to compare with."""
    return make_run(tmp_path_factory.getbasetemp() / "runs", "other", 4, "random")
