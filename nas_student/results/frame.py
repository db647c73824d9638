"""Study -> DataFrame: one row per trial, every number recomputable from the storage alone."""

from __future__ import annotations

import json
import math

import optuna
import pandas as pd

from nas_student.trial_record import TrialRecord

COLUMNS = ["trial", "state", "feasible", "accuracy", "agreement", "kd_loss", "macs", "params",
           "macs_ratio", "params_ratio", "size_mb", "size_ratio", "latency_ms", "latency_ratio", "size_mb_int8", "latency_int8_ms",
           "arch_hash", "duplicate_of",
           "stopped_early", "status", "duration_s", "train_s", "overhead_s", "arch"]


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """All trials. ``accuracy`` is NaN for students that were not trained (infeasible,
    invalid, failed); ``overhead_s`` is the trial's wall time not spent training;
    ``stopped_early`` the step at which early stopping ended a student's training. A
    multi-task study has one ``accuracy_<task>`` column per task after ``kd_loss``
    (``accuracy`` is their mean)."""
    tasks = list((study.user_attrs.get("io") or {}).get("head_names") or [])
    per_task = [f"accuracy_{name}" for name in tasks]
    rows = []
    for t in study.get_trials(deepcopy=False):
        r = TrialRecord.from_trial(t)
        rec, timing = r.metrics, r.timing
        trained = r.trained
        duration = t.duration.total_seconds() if t.duration is not None else math.nan
        rows.append({
            "trial": t.number,
            "state": t.state.name,
            "feasible": trained,
            "accuracy": rec.get("accuracy", math.nan) if trained else math.nan,
            "agreement": rec.get("agreement", math.nan) if trained else math.nan,
            "kd_loss": rec.get("kd_loss", math.nan) if trained else math.nan,
            **{c: rec.get(f"accuracy_{i}", math.nan) if trained else math.nan for i, c in enumerate(per_task)},
            "macs": rec.get("macs", math.nan),
            "params": rec.get("params", math.nan),
            "macs_ratio": rec.get("macs_ratio", math.nan),
            "params_ratio": rec.get("params_ratio", math.nan),
            **{k: rec.get(k, math.nan) for k in ("size_mb", "size_ratio", "latency_ms", "latency_ratio",
                                                  "size_mb_int8", "latency_int8_ms")},
            "arch_hash": r.arch_hash,
            "duplicate_of": pd.NA if r.duplicate_of is None else r.duplicate_of,
            "stopped_early": pd.NA if r.stopped_early is None else r.stopped_early,
            "status": r.status_line() if t.state == optuna.trial.TrialState.FAIL else r.status,
            "duration_s": duration,
            "train_s": timing.get("train_s", 0.0) if timing else math.nan,
            "overhead_s": duration - timing.get("train_s", 0.0) if timing else math.nan,
            "arch": json.dumps(r.arch, sort_keys=True) if r.arch is not None else "",
        })
    at = COLUMNS.index("kd_loss") + 1
    df = pd.DataFrame(rows, columns=COLUMNS[:at] + per_task + COLUMNS[at:])
    return df.astype({"duplicate_of": "Int64", "stopped_early": "Int64"})
