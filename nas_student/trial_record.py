"""What a trial records in its study, typed: the one module that knows the attribute names.

A trial's record lives in the study's storage as Optuna user attributes (plain JSON), so any
process can read a run. Writers use the key constants and :func:`mark_failed`; readers use
:meth:`TrialRecord.from_trial`, never the attribute names or the text of a message. Logic
keys on typed fields: :attr:`TrialRecord.failure` (why a trial failed), :attr:`stopped_early`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from optuna.trial import FrozenTrial, TrialState

# the attribute names (the storage's schema)
ARCH = "arch"  # the architecture, plain JSON
ARCH_HASH = "arch_hash"
FEASIBLE = "feasible"  # within every cost bound (then trained)
RECORD = "record"  # costs, ratios and metrics (accuracy, agreement, kd_loss)
STATUS = "status"  # one line for people; never parsed
FAIL_KIND = "fail_kind"  # a Failure value
FAIL_REASON = "fail_reason"
DUPLICATE_OF = "duplicate_of"  # the trial whose student this repeats (not retrained)
STOPPED_EARLY = "stopped_early"  # the step at which early stopping ended its training
TIMING = "timing"  # seconds: sample_s, build_s, cost_s, train_s, eval_s, total_s
RUNGS = "rungs"  # early stopping: {step: metrics and costs at that rung}
WORKER = "worker"  # host:pid of the process running it
ALIVE_AT = "alive_at"  # its worker's last heartbeat (unix time)
RAY_NODE, RAY_NODES = "ray_node", "ray_nodes"
PRESCREEN_SCORE = "prescreen_score"


class Failure(str, Enum):
    """Why a trial failed."""

    #: the student's own run raised (diverged, too large, a bug): a resume does not retry it
    ERROR = "error"
    #: its process stopped or died (Ctrl-C, a kill, a lost worker): not the student's doing
    INTERRUPTED = "interrupted"


def mark_failed(set_attr: Callable[[str, Any], None], kind: Failure, reason: str) -> None:
    """Record a failure through ``set_attr(key, value)`` (a trial's, or a storage's for a
    trial another process owns)."""
    set_attr(FAIL_KIND, kind.value)
    set_attr(FAIL_REASON, reason)
    set_attr(STATUS, f"failed: {reason}")


def failure_of(attrs: dict[str, Any], state: TrialState) -> Failure | None:
    """The kind of a failed trial. Runs recorded before ``fail_kind`` existed said an
    interruption only in the reason's first word: read there for them, and nowhere else."""
    if state != TrialState.FAIL:
        return None
    if FAIL_KIND in attrs:
        return Failure(attrs[FAIL_KIND])
    legacy = str(attrs.get(FAIL_REASON, "interrupted"))
    return Failure.INTERRUPTED if legacy.startswith("interrupted") else Failure.ERROR


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the search recorded it."""

    number: int
    state: TrialState
    arch: dict[str, Any] | None = None
    arch_hash: str = ""
    feasible: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    status: str = ""
    failure: Failure | None = None
    fail_reason: str | None = None
    duplicate_of: int | None = None
    stopped_early: int | None = None
    timing: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_trial(cls, t: FrozenTrial) -> "TrialRecord":
        a = t.user_attrs
        return cls(number=t.number, state=t.state, arch=a.get(ARCH), arch_hash=a.get(ARCH_HASH, ""),
                   feasible=bool(a.get(FEASIBLE, False)), metrics=dict(a.get(RECORD, {})),
                   status=a.get(STATUS, ""), failure=failure_of(a, t.state), fail_reason=a.get(FAIL_REASON),
                   duplicate_of=a.get(DUPLICATE_OF), stopped_early=a.get(STOPPED_EARLY),
                   timing=dict(a.get(TIMING, {})))

    def to_attrs(self) -> dict[str, Any]:
        """The attributes this record is read from (those that are set)."""
        attrs: dict[str, Any] = {ARCH: self.arch, ARCH_HASH: self.arch_hash or None, FEASIBLE: self.feasible,
                                 RECORD: self.metrics or None, STATUS: self.status or None,
                                 FAIL_KIND: self.failure.value if self.failure else None,
                                 FAIL_REASON: self.fail_reason, DUPLICATE_OF: self.duplicate_of,
                                 STOPPED_EARLY: self.stopped_early, TIMING: self.timing or None}
        return {k: v for k, v in attrs.items() if v is not None}

    @property
    def trained(self) -> bool:
        """A complete, feasible student (trained here, or a repeat of one trained earlier)."""
        return self.state == TrialState.COMPLETE and self.feasible

    @property
    def counts_for_sampler(self) -> bool:
        """Finished trials and the student's own failures move the sampler's seed on;
        interruptions do not (a resumed search proposes what an uninterrupted one would)."""
        return self.state in (TrialState.COMPLETE, TrialState.PRUNED) or self.failure == Failure.ERROR

    def status_line(self) -> str:
        """The status for people: a failure says its reason."""
        if self.state == TrialState.FAIL:
            return f"failed: {self.fail_reason or 'unknown reason'}"
        return self.status or self.state.name.lower()
