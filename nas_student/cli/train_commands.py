"""``nas-student train``: full distillation of a chosen student, with a report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from nas_student.cli.app import app, one_line_errors, out


@app.command("train")
@one_line_errors
def train_cmd(
    source: str = typer.Argument(..., help="A run (name or folder; --trial N, default the recommended student), or an architecture JSON file (e.g. export's arch.json)."),
    trial: Optional[int] = typer.Option(None, help="The trial of the run to train (see `nas-student pareto RUN`). \\[default: the front's recommended student]"),
    recipe: Optional[Path] = typer.Option(None, help="A recipe YAML (loss terms, schedules, budget). \\[default: the run's proxy recipe, 20x the steps, at full training's lr and temperature]"),
    steps: Optional[int] = typer.Option(None, min=1, help="Override the recipe's steps."),
    seeds: int = typer.Option(1, min=1, help="Train with seeds 0..N-1; the report gives mean ± sd."),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="Also train the student with CE only, same budget, for comparison."),
    task: Optional[str] = typer.Option(None, help="For an architecture file: the built-in task. \\[default: mnist1d]"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="For an architecture file: a run file naming your teacher and data."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Output folder. \\[default: RUN/train/trial-N, or train-HASH next to the JSON]"),
    data_free: bool = typer.Option(False, "--data-free", help="Distil on inputs synthesised from the teacher alone (no training data)."),
    generations: int = typer.Option(1, min=1, max=20, help="Born-again self-distillation (Furlanello et al. 2018): also train generations 2..N of the student, each distilled from the previous one (generation 1: from the teacher), and report each. Measured on mnist1d students at 1/10 of the teacher it lost 0.7-1.6 points (results/BENCHMARKS.md section 13)."),
    mutual: int = typer.Option(0, min=0, max=16, help="Deep mutual learning (Zhang et al. 2018): also train a cohort of this many copies of the student together, each learning from the teacher, the labels and the others; report the members' mean and the best. Classification only. 0: off."),
    quantize: Optional[str] = typer.Option(None, help="int8: also quantize the distilled student: quantization-aware training with the teacher's soft targets (cnn, cnn1d, mlp; weight-only int8 for rnn; dynamic int8 for transformer), reported next to the float student with size and measured latency."),
    checkpoint_every: int = typer.Option(200, min=1, help="Save the training state every N steps (resume point)."),
    device: str = typer.Option("auto", help="auto (GPU when present), cpu, cuda or mps."),
    results_dir: Path = typer.Option(Path("results"), help="Folder that holds the run folders."),
) -> None:
    """Distil a student fully and report it against the teacher and against CE-only training.

    Writes student.pt, report.md and report.json. Checkpoints as it goes: run the same command
    again after an interruption and it resumes where it stopped.
    """
    from nas_student.distill.recipe import load_recipe
    from nas_student.errors import NasStudentError
    from nas_student.search.context import resolve_device
    from nas_student.full_training import inputs, job_from_arch, job_from_run, run_job

    if mutual == 1:
        raise NasStudentError("--mutual takes a cohort of 2 or more students (0: off)")
    if quantize not in (None, "int8"):
        raise NasStudentError(f"--quantize takes int8, not {quantize!r}")
    overrides = {"steps": steps} if steps else {}
    rec = load_recipe(recipe, overrides) if recipe else None
    kw = {"seeds": list(range(seeds)), "baseline": baseline, "checkpoint_every": checkpoint_every, "quantize": quantize,
          "generations": generations, "mutual": mutual}
    path = Path(source)
    if path.suffix == ".json":
        from nas_student.runfile import build_config

        cfg = build_config(config, {("task",): task} if task else {})
        job = job_from_arch(path, cfg, rec, out_dir, **kw)
    else:
        from nas_student.cli.results_commands import trial_or_recommended
        from nas_student.results.runs import open_run, resolve_run

        run_dir = resolve_run(source, results_dir)
        trial = trial_or_recommended(open_run(run_dir), trial)
        job = job_from_run(run_dir, trial, rec, out_dir, **kw)
    if data_free:
        job.cfg = job.cfg.model_copy(update={"data_free": job.cfg.data_free.model_copy(update={"enabled": True})})
    if rec is None and steps:
        job.recipe = job.recipe.model_copy(update={"steps": steps, "epochs": None})
    dev = resolve_device(device)
    out.print(f"Training {job.source}: {job.recipe.describe()}; on {inputs(job)}; output in {job.out}")
    progress = Progress(TextColumn("{task.description}"), MofNCompleteColumn(), BarColumn(),
                        TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), console=out)
    bars: dict[str, int] = {}

    def on_progress(phase: str, done: int, total: int) -> None:
        if phase not in bars:
            bars[phase] = progress.add_task(phase, total=total, completed=done - 1)
        if done % 10 == 0 or done == total:
            progress.update(bars[phase], completed=done)

    with progress:
        report = run_job(job, dev, on_progress)
    _print_report(report)
    if report.get("reused"):
        out.print(f"Kept from an earlier run with the same settings: {', '.join(report['reused'])}.")
    for phase, step in report.get("resumed", {}).items():
        out.print(f"{phase} resumed from its checkpoint at step {step}.")
    out.print(f"Report: {job.out / 'report.md'}; weights: {job.out / 'student.pt'}")


def _print_report(r: dict) -> None:
    from nas_student.full_training import format_mean_sd

    ppl = "perplexity" in r["teacher"]  # language models: perplexity first (lower is better)
    table = Table(title=f"{r['task']}: student vs teacher")
    for col in ("model", *(["test perplexity"] if ppl else []), "test accuracy", "retention"):
        table.add_column(col, justify="left" if col == "model" else "right")
    t_acc = r["teacher"]["accuracy"]
    table.add_row("teacher", *([f"{r['teacher']['perplexity']:.3f}"] if ppl else []), f"{t_acc:.4f}", "100 %")
    for kind, label in (("kd", "student (distilled)"), ("ce", "student (CE only)")):
        if kind in r:
            a = r[kind]["accuracy"]
            ppl_cell = [format_mean_sd(r[kind]["perplexity"])] if ppl else []
            table.add_row(label, *ppl_cell, format_mean_sd(a), f"{100 * a['mean'] / t_acc:.1f} %")
    out.print(table)
    out.print(f"MACs {r['macs_ratio']:.2%} and params {r['params_ratio']:.2%} of the teacher; "
              f"latency speedup {r['latency_speedup']:.2f}x (measured)")
    if "int8" in r:
        from nas_student.full_training_int8 import markdown

        out.print("\n".join(markdown(r["int8"], r["kd"]["accuracy"]["mean"])[1:]), soft_wrap=True, highlight=False)
