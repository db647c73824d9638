"""Sampling a trial in memory and writing it once proposes exactly what sampling through the
stored trial does, for every sampler, with trials running beside it and queued ones."""

import logging

import optuna
import pytest
from optuna.trial import TrialState

from nas_student import storage
from nas_student.search import proposal, samplers


def _sample(trial: optuna.Trial) -> None:
    """Conditional like a space: the depth decides which widths exist."""
    depth = trial.suggest_int("depth", 1, 3)
    for i in range(depth):
        trial.suggest_int(f"width{i}", 4, 64, log=True)
        trial.suggest_categorical(f"kind{i}", ["conv", "inverted"])
    trial.set_user_attr("arch", {"depth": depth})


def _values(trial: optuna.Trial) -> list[float]:
    p = trial.params
    return [float(sum(v for k, v in p.items() if k.startswith("width"))), float(p["depth"])]


def _run(study: optuna.Study, ask) -> list[dict]:
    """12 trials, two at a time: a trial is asked while another runs (the constant liar)."""
    out, running = [], []
    for _ in range(12):
        trial = ask(study)
        out.append(dict(trial.params))
        running.append(trial)
        if len(running) == 2:
            done = running.pop(0)
            study.tell(done, _values(done))
    for trial in running:
        study.tell(trial, _values(trial))
    return out


def _study(tmp_path, name: str, tag: str) -> optuna.Study:
    folder = tmp_path / tag
    folder.mkdir()
    return optuna.create_study(storage=storage.open_storage(folder), directions=["minimize", "maximize"],
                               sampler=samplers.make(name, 3))


def _direct(study: optuna.Study) -> optuna.Trial:
    trial = study.ask()
    _sample(trial)
    return trial


@pytest.mark.parametrize("copied", [proposal.MAX_COPIED, 0])
@pytest.mark.parametrize("name", ["tpe", "random", "nsga2"])
def test_in_memory_sampling_proposes_what_the_stored_trial_would(tmp_path, monkeypatch, name, copied):
    """Also past MAX_COPIED (0 here), where the stored trial is sampled, its owner set at once."""
    monkeypatch.setattr(proposal, "MAX_COPIED", copied)
    direct = _run(_study(tmp_path, name, "direct"), _direct)
    fast = _study(tmp_path, name, "fast")
    proposed = _run(fast, lambda s: proposal.ask_sampled(s, _sample, {"owner": "me"}))
    assert proposed == direct
    assert len({tuple(sorted(p.items())) for p in direct}) > 6  # the sampler explored, not one student
    stored = fast.trials
    assert [t.number for t in stored] == list(range(12))
    assert all(t.state == TrialState.COMPLETE for t in stored)
    assert all(t.user_attrs == {"arch": {"depth": t.params["depth"]}, "owner": "me"} for t in stored)


def test_the_trial_is_written_once_and_running(tmp_path, monkeypatch):
    study = _study(tmp_path, "tpe", "once")
    writes = []
    backend = storage.of(study)
    monkeypatch.setattr(type(backend), "set_trial_param", lambda *a, **k: writes.append(a))
    monkeypatch.setattr(type(backend), "set_trial_user_attr", lambda *a, **k: writes.append(a))
    trial = proposal.ask_sampled(study, _sample, {"owner": "me"})
    assert writes == []  # no per-parameter transaction
    stored = storage.open_storage(tmp_path / "once").get_trial(trial._trial_id)  # a fresh reader sees it whole
    assert stored.state == TrialState.RUNNING and stored.params == trial.params and stored.params
    assert stored.user_attrs["owner"] == "me"
    assert trial.suggest_int("depth", 1, 3) == stored.params["depth"]  # the trial answers from its own params


def test_a_queued_trial_keeps_its_parameters(tmp_path):
    study = _study(tmp_path, "tpe", "queued")
    study.enqueue_trial({"depth": 2, "width0": 8, "kind0": "conv", "width1": 16, "kind1": "inverted"})
    trial = proposal.ask_sampled(study, _sample, {"owner": "me"})
    assert trial.params == {"depth": 2, "width0": 8, "kind0": "conv", "width1": 16, "kind1": "inverted"}
    assert trial.user_attrs["owner"] == "me" and len(study.trials) == 1


def test_a_proposal_does_not_announce_its_scratch_study_in_the_callers_log(caplog):
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=optuna.samplers.TPESampler(seed=0))
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level("INFO"):
            caplog.clear()
            trial = proposal.ask_sampled(study, _sample)
            optuna.create_study()  # the caller's own in-memory study is still announced
    finally:
        optuna.logging.disable_propagation()
        optuna.logging.set_verbosity(verbosity)
    assert trial.params and logging.getLogger("optuna.storages._in_memory").level == logging.NOTSET
    announced = {r.getMessage() for r in caplog.records if "A new study created in memory" in r.getMessage()}
    assert len(announced) == 1, announced  # the caller's study, not the proposal's scratch copy
