import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _teacher_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One teacher cache per test session: the digits teacher trains once, then is reused.
    Set NAS_STUDENT_TEST_CACHE to reuse a cache across sessions (faster local runs)."""
    path = Path(os.environ.get("NAS_STUDENT_TEST_CACHE") or tmp_path_factory.mktemp("cache"))
    os.environ["NAS_STUDENT_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def digits_task(_teacher_cache: Path):
    from nas_student.tasks import load_task

    return load_task("digits", seed=0)


@pytest.fixture(scope="session")
def mnist1d_task(_teacher_cache: Path):
    from nas_student.tasks import load_task

    return load_task("mnist1d", seed=0)
