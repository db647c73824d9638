"""The typed trial record: one reader of the study's attributes, failure kinds instead of
message text, and runs recorded before the kinds existed."""

import dataclasses

import optuna
from optuna.trial import TrialState, create_trial

from nas_student import trial_record as rec
from nas_student.trial_record import Failure, TrialRecord


def _trial(state=TrialState.COMPLETE, **attrs):
    return create_trial(state=state, values=[0.5] if state == TrialState.COMPLETE else None,
                        user_attrs=attrs, params={}, distributions={})


def test_a_record_reads_back_what_was_written():
    r = TrialRecord(number=0, state=TrialState.COMPLETE, arch={"family": "mlp", "layers": []}, arch_hash="ab12",
                    feasible=True, metrics={"accuracy": 0.9, "macs": 10.0}, status="trained", duplicate_of=None,
                    stopped_early=20, timing={"train_s": 1.5})
    back = TrialRecord.from_trial(_trial(**r.to_attrs()))
    assert dataclasses.replace(back, number=0) == r
    assert back.trained and back.counts_for_sampler and back.status_line() == "trained"


def test_failures_are_told_apart_by_kind_not_by_text():
    attrs: dict = {}
    rec.mark_failed(attrs.__setitem__, Failure.ERROR, "interrupted-looking message from the student's code")
    own = TrialRecord.from_trial(_trial(TrialState.FAIL, **attrs))
    assert own.failure == Failure.ERROR and own.counts_for_sampler
    assert own.status_line() == "failed: interrupted-looking message from the student's code"
    attrs = {}
    rec.mark_failed(attrs.__setitem__, Failure.INTERRUPTED, "worker died")
    killed = TrialRecord.from_trial(_trial(TrialState.FAIL, **attrs))
    assert killed.failure == Failure.INTERRUPTED and not killed.counts_for_sampler
    assert TrialRecord.from_trial(_trial(TrialState.FAIL, **{rec.FAIL_KIND: "error", rec.FAIL_REASON: "interrupted"})
                                  ).counts_for_sampler


def test_runs_recorded_before_failure_kinds_keep_their_meaning():
    old_killed = TrialRecord.from_trial(_trial(TrialState.FAIL, fail_reason="interrupted: worker h:1 died"))
    old_error = TrialRecord.from_trial(_trial(TrialState.FAIL, fail_reason="ValueError: loss is nan"))
    no_reason = TrialRecord.from_trial(_trial(TrialState.FAIL))
    assert (old_killed.failure, old_error.failure, no_reason.failure) == (
        Failure.INTERRUPTED, Failure.ERROR, Failure.INTERRUPTED)
    assert TrialRecord.from_trial(_trial()).failure is None


def test_every_module_writes_through_the_record_keys():
    """No module but trial_record names a trial attribute in a string (grep-level check)."""
    from pathlib import Path

    import nas_student

    keys = [v for k, v in vars(rec).items() if k.isupper() and isinstance(v, str)]
    offenders = []
    for path in Path(nas_student.__file__).parent.rglob("*.py"):
        if path.name == "trial_record.py":
            continue
        text = path.read_text()
        offenders += [f"{path.name}: {k}" for k in keys
                      if f't.user_attrs.get("{k}"' in text or f'set_user_attr("{k}"' in text
                      or f'user_attrs["{k}"]' in text]
    assert offenders == []
    assert optuna  # the record is plain JSON in Optuna's storage
