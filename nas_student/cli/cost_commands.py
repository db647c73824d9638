"""``nas-student cost SPEC``: the cost of a teacher, an architecture file or a trial."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.table import Table

from nas_student.cli.app import app, one_line_errors, out
from nas_student.errors import NasStudentError

if TYPE_CHECKING:  # torch is imported where a command needs it, so that --help answers at once
    from torch import nn


def _model_for(spec: str, trial: Optional[int], task: str, results_dir: Path) -> tuple[str, nn.Module, Any]:
    from nas_student.families import ModelIO, build
    from nas_student.tasks import load_task, task_io

    if spec.startswith("teacher:"):
        t = load_task(spec.split(":", 1)[1])
        return f"teacher of {t.name}", t.teacher, t.io
    path = Path(spec)
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise NasStudentError(f"{path}: cannot read architecture JSON ({e})") from None
        if isinstance(data, dict) and "arch" in data:
            io = data.get("io") or {}
            model_io = ModelIO.from_dict(io) if io else task_io(task)
            return str(path), build(data["arch"], model_io), model_io
        return str(path), build(data, task_io(task)), task_io(task)
    from nas_student.cli.results_commands import trial_or_recommended
    from nas_student.results.runs import open_run, resolve_run
    from nas_student.storage import load_study
    from nas_student.trial_record import TrialRecord

    run_dir = resolve_run(spec, results_dir)
    if trial is None:
        trial = trial_or_recommended(open_run(run_dir), None)
    study = load_study(run_dir)
    trials = study.get_trials(deepcopy=False)
    arch = TrialRecord.from_trial(trials[trial]).arch if 0 <= trial < len(trials) else None
    if arch is None:
        raise NasStudentError(f"{run_dir}: no trial {trial} with an architecture (trials 0..{len(trials) - 1})")
    attrs = study.user_attrs
    io = ModelIO.from_dict(attrs["io"]) if attrs.get("io") else task_io(attrs["config"]["task"])
    return f"{run_dir} trial {trial}", build(arch, io), io


@app.command()
@one_line_errors
def cost(
    spec: str = typer.Argument(..., help="teacher:TASK (e.g. teacher:digits), an architecture .json "
                                         "(an arch dict or an export spec), or a run with --trial."),
    trial: Optional[int] = typer.Option(None, help="Trial number, when SPEC is a run. \\[default: the front's recommended student]"),
    task: str = typer.Option("mnist1d", help="Task whose input/output an arch file is built for (an export's arch.json says its own)."),
    batch: int = typer.Option(1, min=1, help="Batch size for the latency measurement."),
    threads: int = typer.Option(1, min=1, help="CPU threads for the latency measurement."),
    results_dir: Path = typer.Option(Path("results"), help="Folder that holds the run folders."),
) -> None:
    """Print MACs, params, size (fp32 and int8) and measured latency, with a breakdown by
    module and by op. Norms, activations and pooling are listed apart, not in MACs."""
    import torch

    from nas_student.config import LatencySettings
    from nas_student.cost import model_size_bytes
    from nas_student.cost.price import price

    name, model, io = _model_for(spec, trial, task, results_dir)
    c, costs = price(model, io, torch.device("cpu"), LatencySettings(batch_size=batch, threads=threads))
    int8 = model_size_bytes(model, "int8") / 1e6
    out.print(f"[bold]{name}[/]: {c.macs:,} MACs, {c.params:,} params, {costs['size_mb']:.3f} MB fp32, "
              f"{int8:.3f} MB int8 (dynamic quantisation of Linear/LSTM/GRU weights; convolutions stay fp32), "
              f"{costs['latency_ms']:.3f} ms "
              f"(CPU, batch {batch}, {threads} thread{'s' if threads > 1 else ''}, median)", soft_wrap=True)
    for title, data in (("MACs by module", c.by_module), ("MACs by op", c.by_op),
                        ("not in MACs (output elements)", c.other_ops)):
        if not data:
            continue
        table = Table(title=title)
        table.add_column("name")
        table.add_column("count", justify="right")
        table.add_column("share", justify="right")
        total = sum(data.values()) or 1
        for k, v in sorted(data.items(), key=lambda kv: -kv[1]):
            table.add_row(k, f"{v:,}", f"{100 * v / total:.1f}%")
        out.print(table)
