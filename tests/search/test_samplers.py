"""Reseeded samplers: a resumed search proposes what an uninterrupted one would, and trials
asked while others run (parallel workers, Ray) propose different students."""

import optuna
import pytest
from optuna.trial import TrialState

from nas_student.search import samplers


def _suggest(trial: optuna.Trial) -> tuple[int, ...]:
    return tuple(trial.suggest_int(f"x{i}", 0, 10**6) for i in range(3))


def _study(name: str) -> optuna.Study:
    return optuna.create_study(directions=["maximize", "minimize"], sampler=samplers.make(name, 0))


@pytest.mark.parametrize("name", ["tpe", "random", "nsga2"])
def test_trials_asked_while_others_run_propose_different_students(name):
    study = _study(name)
    running = [_suggest(study.ask()) for _ in range(4)]  # four workers claim at once
    assert len(set(running)) == 4, running


@pytest.mark.parametrize("name", ["tpe", "random", "nsga2"])
def test_an_interrupted_trial_does_not_change_what_comes_next(name):
    def finished(study, n):
        out = []
        for _ in range(n):
            trial = study.ask()
            out.append(_suggest(trial))
            study.tell(trial, [float(sum(out[-1])), float(out[-1][0])])
        return out

    plain = finished(_study(name), 4)
    resumed = _study(name)
    first = finished(resumed, 2)
    lost = resumed.ask()  # its worker is killed; the next claim fails it
    _suggest(lost)
    resumed.tell(lost, state=TrialState.FAIL)
    assert first + finished(resumed, 2) == plain


@pytest.mark.parametrize("name", ["tpe", "random"])
def test_a_student_that_failed_by_itself_is_not_proposed_again(name):
    study = _study(name)
    first = study.ask()
    a = _suggest(first)
    first.set_user_attr("fail_reason", "RuntimeError: out of memory")
    study.tell(first, state=TrialState.FAIL)
    assert _suggest(study.ask()) != a  # an interrupted trial (test above) is proposed again instead
