"""The one writer of a run's front files: trials.csv, and the front as STEM.csv / .parquet
(with its ``recommended`` column) / .png / .html. The search writes them after its trials
(and rewrites them after a resume); ``nas-student pareto`` writes them again, for other
objectives under another stem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def write_front_files(run_dir: Path, trials: pd.DataFrame, front: pd.DataFrame, attrs: dict[str, Any],
                      recommended: int | None, stem: str = "pareto") -> None:
    from nas_student.results.plots import draw_html, draw_png, plot_data

    objs = list(attrs.get("objectives") or ["accuracy", "macs", "params"])
    saved = front.assign(recommended=front["trial"] == recommended)
    trials.to_csv(run_dir / "trials.csv", index=False)
    saved.to_csv(run_dir / f"{stem}.csv", index=False)
    saved.to_parquet(run_dir / f"{stem}.parquet", index=False)
    data = plot_data(trials, front, objs, {**attrs, "title": f"{run_dir.name}: Pareto front"}, recommended)
    draw_png(data, run_dir / f"{stem}.png")
    draw_html(data, run_dir / f"{stem}.html")
