"""Commands that read a finished (or running) search: pareto, show, export, compare; and the
helpers that print results. Nothing here writes to the study (a search may be running)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

import typer
from rich import box
from rich.table import Table

from nas_student.cli.app import app, one_line_errors, out

RUN_ARG = typer.Argument(..., help="A run name (under --results-dir) or a run folder.")
RESULTS_DIR = typer.Option(Path("results"), help="Folder that holds the run folders.")


@app.command()
@one_line_errors
def pareto(run: str = RUN_ARG,
           objectives: Optional[str] = typer.Option(
               None, help="Comma-separated objectives of the front, e.g. accuracy,macs "
                          "(default: the search's)."),
           recommend: Optional[str] = typer.Option(
               None, help="Which student to recommend: within:X (the cheapest within X accuracy points of the "
                          "front's best), knee or best (default: the run's, best unless it set one)."),
           results_dir: Path = RESULTS_DIR) -> None:
    """Print a run's Pareto front and its recommended student; write pareto.csv,
    pareto.parquet, pareto.png and pareto.html (an interactive plot, opens offline) and
    trials.csv. Works while the search is still running. A front over other objectives than
    the search's goes to pareto-OBJ1-OBJ2.* (the search's own files are kept)."""
    from nas_student.results import pareto_front
    from nas_student.results.hypervolume import front_hypervolume, scales
    from nas_student.results.recommend import recommend as pick
    from nas_student.results.runs import (
        check_measured,
        open_run,
        parse_objectives,
        resolve_run,
    )

    run_dir = resolve_run(run, results_dir)
    view = open_run(run_dir)
    objs = parse_objectives(objectives, view.objectives)
    check_measured(view, objs)
    stem = "pareto" if objs == list(view.objectives) else "pareto-" + "-".join(objs)
    trials = view.trials
    front = pareto_front(trials, objs)
    rule = run_rule(view, recommend)
    chosen = pick(front, objs, rule)
    attrs = {**view.attrs, "objectives": objs}
    from nas_student.results.files import write_front_files

    write_front_files(run_dir, trials, front, attrs, chosen, stem)
    print_front(front, attrs, run_dir, recommended=chosen, rule=rule)
    if recommend is not None and str(rule) != view.recommend:
        out.print(f"(show, export, train and cost without --trial keep the run's own rule, {view.recommend}; "
                  f"`nas-student search --run {run_dir.name} --recommend {rule}` makes {rule} the run's rule.)",
                  soft_wrap=True)
    if not front.empty:
        hv = front_hypervolume(front, objs, scales(objs, view.attrs))
        out.print(f"Hypervolume ({', '.join(objs)}; normalised, reference = accuracy 0 and costs "
                  f"at the bound): {hv:.4f}")
    print_summary(trials, run_dir, stem)
    out.print(f"Plots: {run_dir / f'{stem}.png'}, {run_dir / f'{stem}.html'}; "
              f"table: {run_dir / f'{stem}.parquet'}", soft_wrap=True)


def run_rule(view: Any, given: str | None) -> Any:
    """The recommendation rule: the one given, else the run's own (one line if malformed)."""
    from nas_student.errors import NasStudentError
    from nas_student.results.recommend import parse_rule

    try:
        return parse_rule(given if given is not None else view.recommend)
    except ValueError as e:
        raise NasStudentError(f"--recommend: {e}") from None


def print_front(front: Any, attrs: dict[str, Any], run_dir: Path, *, recommended: int | None,
                rule: Any) -> None:
    """The front as a table (teacher first); the recommended student is marked with * and named
    below with the rule that chose it."""
    from nas_student.families.base import describe
    from nas_student.results.recommend import axes_for, best_quality, knee_point

    objs = list(attrs.get("objectives") or ["accuracy", "macs", "params"])
    teacher = attrs.get("teacher", {})
    narrow = out.width < 100  # an 80-column terminal: no agreement, no rules between columns
    n = f"{len(front)} student{'s' if len(front) != 1 else ''}"
    table = Table(title=f"Pareto front ({', '.join(objs)}): {n} ({run_dir})",
                  box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD)
    extra = [o for o in objs if o in ("latency_ms", "size_mb")]  # searched costs beyond MACs and params
    cols = ["trial", "val acc", *([] if narrow else ["agree"]), "MACs", "params", *extra, "MACs %", "params %"]
    for col in cols:
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("architecture", overflow="fold", min_width=12 if narrow else 24)

    def row(trial: str, acc: str, agree: str, macs: str, params: str, more: list[str], *rest: str,
            style: str | None = None) -> None:
        table.add_row(trial, acc, *([] if narrow else [agree]), macs, params, *more, *rest, style=style)

    if teacher:
        row("teacher", f"{teacher.get('val_accuracy', math.nan):.4f}", "", f"{teacher['macs']:,}",
            f"{teacher['params']:,}", [_cell(o, teacher[o]) if o in teacher else "" for o in extra],
            "100", "100", "", style="dim")
    for _, r in front.iterrows():
        mark = " *" if r["trial"] == recommended else ""
        row(f"{r['trial']}{mark}", f"{r['accuracy']:.4f}", f"{r['agreement']:.4f}", f"{int(r['macs']):,}",
            f"{int(r['params']):,}", [_cell(o, r[o]) for o in extra], f"{100 * r['macs_ratio']:.2f}",
            f"{100 * r['params_ratio']:.2f}", describe(json.loads(r["arch"])), style="bold" if mark else None)
    out.print(table)
    if recommended is not None:
        _, quality = axes_for(objs)
        out.print(f"Recommended (*): trial {recommended}, {rule.explain(quality)} (--recommend {rule}; "
                  "others: within:X, knee, best).", soft_wrap=True)
        for name, other in (("Best", best_quality(front, objs)), ("Knee", knee_point(front, objs))):
            if other != recommended:
                b = front[front["trial"] == other].iloc[0]
                what = f"{quality} within the bounds" if name == "Best" else "(closest to the ideal point)"
                out.print(f"{name} {what}: trial {other} ({quality} {b[quality]:.4f}, "
                          f"MACs {100 * b['macs_ratio']:.2f} % and params {100 * b['params_ratio']:.2f} % "
                          "of the teacher's).", soft_wrap=True)


def print_summary(trials: Any, run_dir: Path, stem: str = "pareto") -> None:
    """One line that adds up: every trial asked is in exactly one of the counts."""
    queued = int((trials["state"] == "WAITING").sum())  # enqueued (first stage), not asked yet
    n = len(trials) - queued
    own = trials["feasible"] & trials["duplicate_of"].isna()
    early = int((own & trials["stopped_early"].notna()).sum()) if "stopped_early" in trials else 0
    trained = int(own.sum()) - early
    infeasible = int(((trials["state"] == "COMPLETE") & ~trials["feasible"]).sum())
    invalid = int((trials["state"] == "PRUNED").sum())
    dups = int(trials["duplicate_of"].notna().sum())
    failed = int((trials["state"] == "FAIL").sum())
    running = int((trials["state"] == "RUNNING").sum())
    out.print(f"{n} trials: {trained} trained" + (f", {early} stopped early" if early else "")
              + f", {infeasible} over the cost bounds (not trained), {invalid} breaking the space's rules, "
              f"{dups} repeats (not retrained), {failed} failed" + (f", {running} running" if running else "")
              + "." + (f" ({queued} queued by the first stage, not run.)" if queued else ""))
    files = [run_dir / f"{stem}.csv", run_dir / "trials.csv"]
    files += [run_dir / "study.db"] if (run_dir / "study.db").exists() else []
    out.print(f"Files: {', '.join(map(str, files))}")


def _cell(objective: str, value: Any) -> str:
    """A front value as the tables show it: counts with separators, the rest to 4 digits."""
    if objective in ("macs", "params"):
        return f"{int(value):,}"
    return f"{value:.4f}" if objective in ("accuracy", "agreement") else f"{value:.4g}"


TRIAL_HELP = "Trial number (see `nas-student pareto`). \\[default: the front's recommended student]"


def trial_or_recommended(view: Any, trial: int | None) -> int:
    """``trial``, or the run's recommended student, named in one line so the user knows which was taken."""
    if trial is not None:
        return trial
    from nas_student.results.recommend import axes_for
    from nas_student.results.runs import recommended_trial

    chosen, rule = recommended_trial(view)
    quality = axes_for(view.objectives)[1]
    out.print(f"Trial {chosen}: the front's recommended student, {rule.explain(quality)} (--trial N for another).",
              soft_wrap=True)
    return chosen


@app.command()
@one_line_errors
def show(run: str = RUN_ARG,
         trial: Optional[int] = typer.Option(None, "--trial", help=TRIAL_HELP),
         results_dir: Path = RESULTS_DIR) -> None:
    """Show one student: its layers (output shape, params, MACs), costs, metrics and status."""
    from nas_student.results.runs import (
        front_position,
        get_trial,
        layer_table,
        open_run,
        resolve_run,
        run_io,
        trial_model,
    )

    view = open_run(resolve_run(run, results_dir))
    trial = trial_or_recommended(view, trial)
    t = get_trial(view, trial)
    from nas_student.trial_record import TrialRecord

    record = TrialRecord.from_trial(t)
    arch, status = record.arch, record.status_line()
    out.print(f"[bold]Trial {t.number}[/] of {view.run_dir}: {status}", soft_wrap=True)
    if arch is None:
        out.print("No architecture was sampled.")
        return
    from nas_student.families.base import describe

    out.print(f"Architecture: {describe(arch)}", soft_wrap=True)
    out.print(f"  {json.dumps(arch, sort_keys=True)}", soft_wrap=True, highlight=False)
    if "record" not in t.user_attrs:  # broke the space's rules: cannot be built as asked
        return
    io = run_io(view)
    model = trial_model(view, t, weights=False)
    layers, total = layer_table(model, io)
    table = Table(title=f"Layers (input {'x'.join(map(str, io.input_shape))}, batch 1)")
    for col, just in (("module", "left"), ("type", "left"), ("output", "right"), ("params", "right"),
                      ("MACs", "right"), ("MACs %", "right")):
        table.add_column(col, justify=just, no_wrap=col != "module", overflow="fold")
    for r in layers.itertuples():
        table.add_row(r.module, r.type, r.output, f"{r.params:,}", f"{r.macs:,}",
                      f"{100 * r.macs / total:.1f}" if total else "")
    table.add_row("total", "", "", f"{int(layers['params'].sum()):,}", f"{total:,}", "100.0", style="bold")
    out.print(table)
    rec = record.metrics
    teacher = view.attrs.get("teacher", {}) or {}
    out.print(f"Costs: {rec['macs']:,} MACs ({100 * rec['macs_ratio']:.2f}% of the teacher's "
              f"{teacher.get('macs', 0):,}), {rec['params']:,} params ({100 * rec['params_ratio']:.2f}% "
              f"of {teacher.get('params', 0):,}); feasible: {'yes' if record.feasible else 'no'}",
              soft_wrap=True)
    if record.feasible:
        out.print(f"Metrics (val): accuracy {rec.get('accuracy', math.nan):.4f}, agreement "
                  f"{rec.get('agreement', math.nan):.4f}, KD loss {rec.get('kd_loss', math.nan):.4f} "
                  f"(teacher accuracy {teacher.get('val_accuracy', math.nan):.4f})", soft_wrap=True)
        pos = front_position(view, trial)
        where = (f"on the front, point {pos['rank']} of {pos['front_size']}"
                 + (" (the recommended student)" if pos["is_recommended"] else "") if pos["on_front"]
                 else f"not on the front ({pos['front_size']} points)")
        out.print(f"Pareto ({', '.join(pos['objectives'])}): {where}", soft_wrap=True)
    timing = record.timing
    if timing:
        out.print("Timing: " + ", ".join(f"{k} {v:.2f}" for k, v in timing.items()))


@app.command()
@one_line_errors
def export(run: str = RUN_ARG,
           trial: Optional[int] = typer.Option(None, "--trial", help=TRIAL_HELP),
           out_dir: Path = typer.Option(..., "--out", help="Folder to write the bundle into."),
           quantize: Optional[str] = typer.Option(
               None, help="int8: also write model_int8.onnx (the student `train --quantize int8` made, else the "
                          "trial converted after training), checked against PyTorch's int8 model on the test split."),
           results_dir: Path = RESULTS_DIR) -> None:
    """Export a trained student: arch.json, weights.pt, model.ts (TorchScript), model.onnx
    (checked with onnxruntime), recipe.json and MODEL_CARD.md; with --quantize int8 also
    model_int8.onnx and int8.json."""
    from nas_student.errors import NasStudentError
    from nas_student.results.export import export_trial
    from nas_student.results.runs import open_run, resolve_run

    if quantize not in (None, "int8"):
        raise NasStudentError(f"--quantize takes int8, not {quantize!r}")
    view = open_run(resolve_run(run, results_dir))
    trial = trial_or_recommended(view, trial)
    if quantize:
        from nas_student.quantization import require_onnx_int8
        from nas_student.trial_record import TrialRecord

        require_onnx_int8(TrialRecord.from_trial(view.study.trials[trial]).arch or {})  # before any file is written
    b = export_trial(view, trial, out_dir)
    out.print(f"Exported trial {trial} to {b.out}: {', '.join(p.name for p in b.files)}", soft_wrap=True)
    out.print(f"Checked on a fixed input: ONNX (onnxruntime) max abs diff {b.onnx_max_abs_diff:.2e}, "
              f"TorchScript {b.torchscript_max_abs_diff:.2e}", soft_wrap=True)
    out.print(f"Rebuild: nas_student.load_student('{b.out / 'arch.json'}', weights='{b.out / 'weights.pt'}')",
              soft_wrap=True, highlight=False)
    if quantize:
        from nas_student.results.export_int8 import FILE, add_int8

        info = add_int8(view, trial, b.out)
        out.print(f"int8: {b.out / FILE} ({info['source']}); agrees with PyTorch's int8 model on "
                  f"{info['agreement_with_pytorch_int8']:.2%} of the test split; test accuracy "
                  f"{info['test_accuracy_int8_pytorch']:.4f}", soft_wrap=True, highlight=False)


@app.command()
@one_line_errors
def compare(run_a: str = typer.Argument(..., help="First run (name or folder)."),
            run_b: str = typer.Argument(..., help="Second run (name or folder)."),
            objectives: Optional[str] = typer.Option(
                None, help="Objectives to compare on (default: those both runs searched)."),
            results_dir: Path = RESULTS_DIR) -> None:
    """Two runs' fronts side by side, with their hypervolumes on one normalisation: quality as
    1 - value, costs divided by the larger of the two runs' bounds; reference point (1, ..., 1)
    (accuracy 0, cost at the bound). Larger is better; 1.0 would be a free, perfect student."""
    from rich.columns import Columns

    from nas_student.errors import NasStudentError
    from nas_student.results import pareto_front
    from nas_student.results.hypervolume import front_hypervolume, scales
    from nas_student.results.recommend import recommend as pick
    from nas_student.results.runs import (
        check_measured,
        open_run,
        parse_objectives,
        resolve_run,
    )

    views = [open_run(resolve_run(r, results_dir)) for r in (run_a, run_b)]
    common = [o for o in views[0].objectives if o in views[1].objectives]
    objs = parse_objectives(objectives, common)
    if not objs:
        raise NasStudentError("the two runs share no objective; pass --objectives")
    for v in views:
        check_measured(v, objs)
    if objectives is None and list(views[0].objectives) != list(views[1].objectives):
        out.print(f"warning: the runs searched different objectives ({', '.join(views[0].objectives)} vs "
                  f"{', '.join(views[1].objectives)}); compared on the shared ones: {', '.join(objs)}",
                  style="yellow", soft_wrap=True)
    per_run = [scales(objs, v.attrs) for v in views]
    scale = {o: max(s[o] for s in per_run) for o in per_run[0]}
    names = [v.run_dir.name for v in views]
    if names[0] == names[1]:  # same run name in two results folders: show the paths
        names = [str(v.run_dir) for v in views]
    tables, hvs = [], []
    for v, name in zip(views, names):
        front = pareto_front(v.trials, objs)
        chosen = pick(front, objs, run_rule(v, None))
        hv = front_hypervolume(front, objs, scale)
        hvs.append(hv)
        t = Table(title=f"{name}\n{len(front)} on the front, hypervolume {hv:.4f}")
        for col in ("trial", *objs):
            t.add_column(col, justify="right", no_wrap=True)
        for _, r in front.iterrows():
            t.add_row(f"{r['trial']}{' *' if r['trial'] == chosen else ''}", *(_cell(o, r[o]) for o in objs))
        tables.append(t)
    out.print(Columns(tables, padding=(0, 4)))
    teachers = [v.attrs.get("teacher", {}).get("macs") for v in views]
    if teachers[0] != teachers[1]:
        out.print("warning: the runs have different teachers; the comparison uses one scale "
                  "but the fronts answer different questions", style="yellow")
    parts = ["quality as 1 - value", *(f"{o} / {s:,.4g}" for o, s in scale.items())]
    out.print(f"Objectives: {', '.join(objs)}. Normalised: {'; '.join(parts)}; "
              f"reference point (1, ..., 1). * = each run's recommended student.", soft_wrap=True)
    if math.isclose(hvs[0], hvs[1], rel_tol=1e-9, abs_tol=1e-12):
        verdict = "equal hypervolumes"
    else:
        best = int(hvs[1] > hvs[0])
        verdict = f"{names[best]} is better by {abs(hvs[1] - hvs[0]):.4f}"
    out.print(f"Hypervolume: {names[0]} {hvs[0]:.4f} vs {names[1]} {hvs[1]:.4f}: {verdict}", soft_wrap=True)
