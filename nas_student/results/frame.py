"""Study -> DataFrame: one row per trial, every number recomputable from the storage alone."""

from __future__ import annotations

import json
import math

import optuna
import pandas as pd

COLUMNS = ["trial", "state", "feasible", "accuracy", "agreement", "kd_loss", "macs", "params",
           "macs_ratio", "params_ratio", "size_mb", "size_ratio", "latency_ms", "latency_ratio", "arch_hash", "duplicate_of", "status", "duration_s",
           "train_s", "overhead_s", "arch"]


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """All trials. ``accuracy`` is NaN for students that were not trained (infeasible,
    invalid, failed); ``overhead_s`` is the trial's wall time not spent training."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        rec = t.user_attrs.get("record", {})
        timing = t.user_attrs.get("timing", {})
        feasible = bool(t.user_attrs.get("feasible", False)) and t.state == optuna.trial.TrialState.COMPLETE
        trained = feasible
        duration = t.duration.total_seconds() if t.duration is not None else math.nan
        status = t.user_attrs.get("status", "")
        if t.state == optuna.trial.TrialState.FAIL:
            status = f"failed: {t.user_attrs.get('fail_reason', 'unknown reason')}"
        rows.append({
            "trial": t.number,
            "state": t.state.name,
            "feasible": feasible,
            "accuracy": rec.get("accuracy", math.nan) if trained else math.nan,
            "agreement": rec.get("agreement", math.nan) if trained else math.nan,
            "kd_loss": rec.get("kd_loss", math.nan) if trained else math.nan,
            "macs": rec.get("macs", math.nan),
            "params": rec.get("params", math.nan),
            "macs_ratio": rec.get("macs_ratio", math.nan),
            "params_ratio": rec.get("params_ratio", math.nan),
            **{k: rec.get(k, math.nan) for k in ("size_mb", "size_ratio", "latency_ms", "latency_ratio")},
            "arch_hash": t.user_attrs.get("arch_hash", ""),
            "duplicate_of": t.user_attrs.get("duplicate_of", pd.NA),
            "status": status,
            "duration_s": duration,
            "train_s": timing.get("train_s", 0.0) if "timing" in t.user_attrs else math.nan,
            "overhead_s": duration - timing.get("train_s", 0.0) if "timing" in t.user_attrs else math.nan,
            "arch": json.dumps(t.user_attrs["arch"], sort_keys=True) if "arch" in t.user_attrs else "",
        })
    df = pd.DataFrame(rows, columns=COLUMNS)
    return df.astype({"duplicate_of": "Int64"})
