"""The search commands: search, worker, init, spaces."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from nas_student.cli.app import app, one_line_errors, out
from nas_student.errors import NasStudentError

# option name -> key path in the run file (RunConfig)
OPTION_KEYS: dict[str, tuple[str, ...]] = {
    "space": ("space",), "task": ("task",), "run": ("run",), "results_dir": ("results_dir",),
    "device": ("device",), "trust_code": ("trust_code",),
    "trials": ("search", "trials"), "seed": ("search", "seed"), "sampler": ("search", "sampler"),
    "objectives": ("search", "objectives"),
    "steps": ("budget", "steps"),
    "depth_power": ("budget", "depth_power"), "batch_size": ("budget", "batch_size"), "lr": ("budget", "lr"),
    "temperature": ("budget", "temperature"), "alpha": ("budget", "alpha"), "beta": ("budget", "beta"),
    "macs_ratio": ("constraints", "macs_ratio"), "params_ratio": ("constraints", "params_ratio"),
    "latency_ratio": ("constraints", "latency_ratio"), "size_ratio": ("constraints", "size_ratio"),
    "max_macs": ("constraints", "max_macs"), "max_params": ("constraints", "max_params"),
    "max_latency_ms": ("constraints", "max_latency_ms"), "max_size_mb": ("constraints", "max_size_mb"),
    "max_latency_int8_ms": ("constraints", "max_latency_int8_ms"), "max_size_mb_int8": ("constraints", "max_size_mb_int8"),
    "latency_batch": ("latency", "batch_size"), "latency_threads": ("latency", "threads"),
    "data_free": ("data_free", "enabled"), "data_free_samples": ("data_free", "samples"),
    "early_stop": ("search", "early_stop"),
    "backend": ("execution", "backend"), "storage": ("execution", "storage"),
    "address": ("execution", "address"), "cpus_per_trial": ("execution", "cpus_per_trial"),
    "gpus_per_trial": ("execution", "gpus_per_trial"), "workers": ("execution", "workers"), "max_concurrent": ("execution", "max_concurrent"),
    "no_trust": ("search", "trust", "enabled"), "trust_steps": ("search", "trust", "steps"),
    "prescreen": ("search", "prescreen", "enabled"), "recommend": ("search", "recommend"),
    "focus": ("search", "focus"),
}
RATIOS = {"macs_ratio", "params_ratio", "latency_ratio", "size_ratio"}


@app.command()
@one_line_errors
def search(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="A run file (YAML; `nas-student init` writes a template). Options given here override it."),
    space: Optional[str] = typer.Option(None, help="Search space: a built-in name (see `nas-student spaces`), a YAML path, or auto (derived from the task's input and the teacher's cost). \\[default: the task's own: mnist1d-cnn, digits-cnn, text-transformer; auto for your own task]"),
    task: Optional[str] = typer.Option(None, help="Built-in task (data + teacher): mnist1d (1-D signals), digits (8x8 images), text (characters), mnist1d-from-digits (cross-modal: students on signals, taught by the digits CNN on the paired images), or mnist1d-multitask (two tasks on the same signals, digit and shear, one teacher each: one student with a head per task); or the name of your own task from the run file. \\[default: mnist1d]"),
    trials: Optional[int] = typer.Option(None, min=1, help="Students to evaluate; a resumed run goes on up to this count. \\[default: 40]"),
    run: Optional[str] = typer.Option(None, help="Run name: results go to RESULTS_DIR/RUN. \\[default: TASK-SPACE-sSEED]"),
    seed: Optional[int] = typer.Option(None, help="Seed of the sampler, the data split and the teacher. \\[default: 0]"),
    sampler: Optional[str] = typer.Option(None, help="tpe, nsga2 or random. \\[default: tpe]"),
    objectives: Optional[str] = typer.Option(None, help="Comma-separated: accuracy, agreement, macs, params, latency_ms, size_mb. \\[default: accuracy,macs,params]"),
    steps: Optional[int] = typer.Option(None, min=1, help="Proxy budget: optimiser steps per student (with --depth-power, those of a student of depth 2). \\[default: 150]"),
    depth_power: Optional[float] = typer.Option(None, min=0, max=2, help="Steps by depth: a student of depth d (CNN blocks, MLP hidden layers, RNN or Transformer layers) trains STEPS x (d/2)^P. A short run ranks shallow students too high and deep ones too low; 0.5 ranked mnist1d CNNs closer to full training (Kendall tau 0.63 -> 0.75) at the same cost, but its 40-trial searches found no better students (README). Not with --early-stop. \\[default: 0, every student --steps]"),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Proxy batch size. 256 ranks students closer to full training (mnist1d: Kendall tau +0.08 to +0.14) for about 2.5x the proxy's training time; in the same time, more trials at 64 found as good a student. \\[default: 64]"),
    lr: Optional[float] = typer.Option(None, min=0, help="Proxy learning rate (Adam, cosine decay). \\[default: 0.01]"),
    temperature: Optional[float] = typer.Option(None, min=0, help="Proxy KD temperature T. \\[default: 1]"),
    alpha: Optional[float] = typer.Option(None, min=0, help="Weight of the soft-target term alpha*T^2*KL. \\[default: 0.9]"),
    beta: Optional[float] = typer.Option(None, min=0, help="Weight of the hard-label cross-entropy. \\[default: 0.1]"),
    macs_ratio: Optional[float] = typer.Option(None, min=0, help="Feasible only if MACs <= this x teacher's; 0 disables. \\[default: 0.1]"),
    params_ratio: Optional[float] = typer.Option(None, min=0, help="Feasible only if params <= this x teacher's; 0 disables. \\[default: 0.1]"),
    max_macs: Optional[int] = typer.Option(None, min=1, help="Absolute bound on MACs (on top of the ratio)."),
    max_params: Optional[int] = typer.Option(None, min=1, help="Absolute bound on parameters."),
    latency_ratio: Optional[float] = typer.Option(None, min=0, help="Feasible only if measured latency <= this x teacher's."),
    max_latency_ms: Optional[float] = typer.Option(None, min=0, help="Absolute bound on latency (ms per forward at --latency-batch)."),
    size_ratio: Optional[float] = typer.Option(None, min=0, help="Feasible only if fp32 size <= this x teacher's."),
    max_size_mb: Optional[float] = typer.Option(None, min=0, help="Absolute bound on fp32 size in MB."),
    max_size_mb_int8: Optional[float] = typer.Option(None, min=0, help="Absolute bound on the student's int8 size in MB (static int8 for cnn/cnn1d/mlp, weight-only for rnn, dynamic for transformer)."),
    max_latency_int8_ms: Optional[float] = typer.Option(None, min=0, help="Absolute bound on the int8 student's CPU latency (ms per forward at --latency-batch). Objectives may name latency_int8_ms and size_mb_int8 too."),
    latency_batch: Optional[int] = typer.Option(None, min=1, help="Batch size at which latency is measured. \\[default: 1]"),
    latency_threads: Optional[int] = typer.Option(None, min=1, help="CPU threads while measuring latency. \\[default: 1]"),
    device: Optional[str] = typer.Option(None, help="auto (GPU when present), cpu, cuda or mps. \\[default: auto]"),
    results_dir: Optional[Path] = typer.Option(None, help="Folder that holds the run folders. \\[default: results]"),
    trust_code: bool = typer.Option(False, "--trust-code", help="Allow the run file's factories and TorchScript files to run their code."),
    data_free: bool = typer.Option(False, "--data-free", help="Train students on inputs synthesised from the teacher alone (no training data used)."),
    data_free_samples: Optional[int] = typer.Option(None, min=1, help="Synthetic training inputs for --data-free. \\[default: 2000]"),
    early_stop: bool = typer.Option(False, "--early-stop", help="Stop a student's proxy run at 1/4 or 1/2 of --steps when another student of lower or equal cost beats it there (Pareto-aware multi-fidelity)."),
    workers: Optional[str] = typer.Option(None, help="Processes that train students at once on this machine (optuna backend), each with its share of the cores as torch threads: auto (every core on the CPU, at most 8; 1 on a GPU; env NAS_STUDENT_WORKERS overrides auto) or a number. Only --workers 1 reproduces a run trial for trial. \\[default: auto]"),
    backend: Optional[str] = typer.Option(None, help="optuna (trials in --workers processes here; add more, on other machines too, with `nas-student worker RUN`) or ray (Ray Tune). \\[default: optuna]"),
    storage: Optional[str] = typer.Option(None, help="Where the study is kept: an SQLAlchemy URL (postgresql://user@host/db) or journal:PATH. \\[default: SQLite in the run folder]"),
    address: Optional[str] = typer.Option(None, help="Ray cluster to join (--backend ray), e.g. auto or HOST:6379. \\[default: a local one]"),
    cpus_per_trial: Optional[float] = typer.Option(None, min=0, help="CPUs per Ray trial (also torch's threads). \\[default: 1]"),
    gpus_per_trial: Optional[float] = typer.Option(None, min=0, help="GPUs per Ray trial; fractions share a GPU. \\[default: 0]"),
    max_concurrent: Optional[int] = typer.Option(None, min=1, help="Most Ray trials at once. \\[default: as resources allow]"),
    no_trust: bool = typer.Option(False, "--no-trust", help="Skip the trust report (re-training the front for longer after the search)."),
    trust_steps: Optional[int] = typer.Option(None, min=1, help="Steps per student in the trust report. \\[default: 2 x --steps]"),
    prescreen: bool = typer.Option(False, "--prescreen", help="Training-free first stage: score 200 students at init, start with the 10 best."),
    focus: Optional[str] = typer.Option(None, help="What the sampler optimises: best (accuracy alone within the bounds: trials gather near the most accurate students) or front (every objective: students spread along the whole trade-off); the front is reported either way. \\[default: best]"),
    recommend: Optional[str] = typer.Option(None, help="Which front student to recommend (and show, export and train without --trial): within:X (the cheapest within X accuracy points of the front's best), knee or best. \\[default: best]"),
) -> None:
    """Search students for a teacher; ends with the Pareto front (table, pareto.csv,
    trials.csv, and its plots pareto.png and pareto.html).

    Running the same command again resumes the run: finished trials are kept, a trial that was
    interrupted is marked failed, and the search goes on up to --trials. More processes (on
    this machine or others) join it with `nas-student worker RUN`.
    """
    from nas_student.runfile import build_config

    given = {k: v for k, v in locals().items() if k in OPTION_KEYS and v is not None and v is not False}
    overrides: dict[tuple[str, ...], Any] = {}
    for name, value in given.items():
        if name in RATIOS and value == 0:
            value = None
        elif name == "no_trust":
            value = False
        elif name == "objectives":
            value = [o.strip() for o in value.split(",") if o.strip()]
        elif name == "results_dir":
            value = str(value)
        elif name == "workers":
            value = value if value == "auto" else _whole_number("--workers", value)
        overrides[OPTION_KEYS[name]] = value
    cfg = build_config(config, overrides)
    _check_space_file(cfg.space)  # a missing file is said before the heavy imports
    from nas_student.cli.progress import run_with_progress
    from nas_student.cli.results_commands import print_front, print_summary

    outcome = run_with_progress(cfg, out)
    from nas_student.results.recommend import parse_rule, recommend

    attrs = outcome.study.user_attrs
    rule = parse_rule(cfg.search.recommend)
    chosen = recommend(outcome.front, list(attrs["objectives"]), rule)  # as the search's files mark it
    print_front(outcome.front, attrs, outcome.run_dir, recommended=chosen, rule=rule)
    if outcome.trust is not None:
        from nas_student.search.trust import summary

        out.print(summary(outcome.trust) + f" ({outcome.run_dir / 'trust.md'})", markup=False)
    print_summary(outcome.trials, outcome.run_dir)
    out.print(f"Plots: {outcome.run_dir / 'pareto.png'}, {outcome.run_dir / 'pareto.html'}", soft_wrap=True)


def _whole_number(option: str, value: str) -> int:
    if not value.strip().isdigit() or int(value) < 1:
        raise NasStudentError(f"{option} {value!r}: expected auto or a whole number >= 1")
    return int(value)


def _check_space_file(space: str) -> None:
    from nas_student.spaces import auto, resolve_space

    if space != auto.AUTO and not resolve_space(space).is_file():
        raise NasStudentError(f"{space}: space file not found (a built-in name, a YAML path, or auto; "
                              "see nas-student spaces)")


@app.command()
@one_line_errors
def worker(run: str = typer.Argument(..., help="A run name (under --results-dir) or a run folder, started by `nas-student search`."),
           results_dir: Path = typer.Option(Path("results"), help="Folder that holds the run folders.")) -> None:
    """Join a run's search as one more worker (same study, same teacher, same bounds) until
    it has its trials. Start as many as you like, on this machine or others sharing the run
    folder and the storage (--storage postgresql://... or journal: on a shared disk)."""
    from nas_student.cli.progress import run_worker
    from nas_student.results.runs import resolve_run

    run_worker(resolve_run(run, results_dir), out)


@app.command()
@one_line_errors
def init(path: Path = typer.Argument(Path("run.yaml"), help="Where to write the template."),
         force: bool = typer.Option(False, "--force", help="Overwrite an existing file.")) -> None:
    """Write a commented run-file template: your teacher, your data, the space, the budget."""
    from nas_student.runfile import TEMPLATE

    if path.exists() and not force:
        raise NasStudentError(f"{path} exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE)
    out.print(f"Wrote {path}. Edit it, then: nas-student search --config {path}")


@app.command()
@one_line_errors
def spaces(
    auto: bool = typer.Option(False, "--auto", help="Write the space `space: auto` would search for a task (its input and its teacher's cost), as YAML you can edit and pass back with --space."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="With --auto: the run file of your task (teacher, data, constraints)."),
    task: Optional[str] = typer.Option(None, help="With --auto: a built-in task (mnist1d, digits, text, mnist1d-from-digits, mnist1d-multitask) or the run file's task."),
    output: Optional[Path] = typer.Option(None, "--out", "-o", help="With --auto: write the YAML here instead of printing it."),
) -> None:
    """List the built-in search spaces with their size (number of distinct architectures), or
    with --auto generate one for your teacher."""
    if not auto:
        if config is not None or task is not None or output is not None:
            raise NasStudentError("--config, --task and --out go with --auto (generate a space for a task)")
        _list_spaces()
        return
    from nas_student.runfile import build_config
    from nas_student.search.context import generate_space

    text = generate_space(build_config(config, {("task",): task} if task else {}))
    if output is None:
        out.print(text, markup=False, highlight=False, end="", soft_wrap=True)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    out.print(f"Wrote {output}. Search it with: nas-student search --space {output}", soft_wrap=True)


def _list_spaces() -> None:
    from nas_student.spaces import builtin_spaces, load_space

    table = Table(title="Built-in search spaces (and `auto`: generated from your teacher; see spaces --auto)")
    for col in ("name", "family", "architectures", "description"):
        table.add_column(col, justify="right" if col == "architectures" else "left")
    for name, path in builtin_spaces().items():
        s = load_space(str(path), check=False)  # built-in: the tests build every family's samples
        size = s.size
        size_s = "continuous" if size == math.inf else ("too many to count" if size is None else f"{size:,}")
        table.add_row(name, s.family, size_s, s.description)
    out.print(table)
