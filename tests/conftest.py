import os
from pathlib import Path

import pytest

# One torch thread per process (this one and every process a test starts): the students are
# tiny, and on a shared 2-core machine two threads per process made training 5x slower
# (spinning threads of concurrent processes); must be set before torch is first imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# One search process per search (`--workers auto` reads this): the suite's own processes already
# fill the cores, and most tests check a search trial for trial. The tests of the parallel
# default (tests/search/test_parallel.py) ask for their workers explicitly.
os.environ["NAS_STUDENT_WORKERS"] = "1"
# Every built-in teacher (digits, mnist1d, text) trains in at most 300 steps here, in this process
# and every process a test starts (2-3 minutes less on a fresh cache); their quality at full
# length is what bench/ measures. The tests that check a teacher's accuracy hold at 300 steps.
os.environ["NAS_STUDENT_TEACHER_STEPS"] = "300"


@pytest.fixture(scope="session", autouse=True)
def _teacher_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One teacher cache per test session: the digits teacher trains once, then is reused.
    Set NAS_STUDENT_TEST_CACHE to reuse a cache across sessions (faster local runs)."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # parallel processes share one cache (the cache locks)
        shared = shared.parent
    path = Path(os.environ.get("NAS_STUDENT_TEST_CACHE") or shared / "teacher-cache")
    path.mkdir(parents=True, exist_ok=True)
    os.environ["NAS_STUDENT_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session", autouse=True)
def _short_shear_teacher() -> None:
    """The second teacher of mnist1d-multitask in 100 steps (its quality: bench/multi_task.py);
    its own cache entry, the budget is part of the key."""
    from nas_student.tasks import multitask

    mp = pytest.MonkeyPatch()
    mp.setattr(multitask, "SHEAR_TEACHER_BUDGET", multitask.SHEAR_TEACHER_BUDGET.model_copy(update={"steps": 100}))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def digits_task(_teacher_cache: Path):
    from nas_student.tasks import load_task

    return load_task("digits", seed=0)


@pytest.fixture(scope="session")
def mnist1d_task(_teacher_cache: Path):
    from nas_student.tasks import load_task

    return load_task("mnist1d", seed=0)


def make_run(base: Path, name: str, trials: int, sampler: str = "tpe") -> Path:
    """A small search (30 steps per student) under ``base``, made once per test session."""
    from nas_student.config import RunConfig
    from nas_student.distill import ProxyRecipe
    from nas_student.search import run_search

    run_dir = base / name
    if (run_dir / "trials.csv").exists():
        return run_dir
    cfg = RunConfig(task="digits", run=name, results_dir=str(base), device="cpu", budget=ProxyRecipe(steps=30),
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


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one test process per core, at most 4 (each runs one torch thread; the
    subprocess tests start more processes of their own)."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))
