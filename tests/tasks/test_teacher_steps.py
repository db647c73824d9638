"""NAS_STUDENT_TEACHER_STEPS caps a built-in teacher's training (the test suite runs at 300)."""

import pytest

from nas_student.distill.trainer import Recipe
from nas_student.errors import NasStudentError
from nas_student.tasks.teacher_cache import STEPS_ENV, capped


def test_the_cap_shortens_longer_budgets_only(monkeypatch):
    long, short, n = Recipe(steps=1000, warmup_steps=500), Recipe(steps=100), 10_000
    monkeypatch.setenv(STEPS_ENV, "300")
    assert capped(long, n).steps == 300 and capped(long, n).warmup_steps == 299 and capped(long, n).lr == long.lr
    assert capped(short, n) == short
    assert capped(Recipe(epochs=40), n).total_steps(n) == 300  # 40 epochs (6,250 steps) become the capped steps
    assert capped(Recipe(epochs=1), 1_000) == Recipe(epochs=1)  # 16 steps: never lengthened
    monkeypatch.delenv(STEPS_ENV)
    assert capped(long, n) == long


@pytest.mark.parametrize("value", ["0", "-3", "ten", "2.5", "³"])
def test_a_bad_cap_is_one_line(monkeypatch, value):
    monkeypatch.setenv(STEPS_ENV, value)
    with pytest.raises(NasStudentError, match=f"{STEPS_ENV}='{value}': must be a whole number of steps"):
        capped(Recipe(steps=1000), 10_000)


def test_the_suite_runs_the_builtin_teachers_capped(digits_task):
    assert digits_task.teacher_info["definition"]["budget"]["steps"] == 300
