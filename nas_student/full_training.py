"""Full training of a chosen student (``nas-student train``): distil it with a recipe, train
the same student with cross-entropy only on the same budget, and report both against the
teacher (accuracy retention, MACs and params ratios, measured latency speedup).

Work is split in phases (``kd`` and ``ce`` for each seed; with ``quantize="int8"`` also the int8
phases of :mod:`nas_student.full_training_int8`). Each phase checkpoints its whole
state every ``checkpoint_every`` steps and writes ``<phase>.json`` when done; running the same
command again skips finished phases and resumes an interrupted one from its checkpoint, ending
exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from nas_student.config import RunConfig, differences
from nas_student.cost.price import price, price_teacher
from nas_student.distill import evaluate, train
from nas_student.distill.recipe import ProxyRecipe, Recipe
from nas_student.errors import NasStudentError
from nas_student.families import build
from nas_student.spaces import arch_hash
from nas_student.tasks import Task, task_for_config
from nas_student.trial_record import TrialRecord

#: Full training, unless a recipe says otherwise: the search's proxy recipe, this many times
#: longer (the proxy then costs 5 % of full training, what ``bench/proxy_fidelity.py`` measures).
FULL_FACTOR = 20

Progress = Callable[[str, int, int], None]  # (phase, steps done, total steps)


@dataclass
class TrainJob:
    """What to train (``arch``), on what (``cfg``: the task), how (``recipe``), where (``out``)."""

    arch: dict[str, Any]
    cfg: RunConfig
    recipe: Recipe
    out: Path
    seeds: list[int] = field(default_factory=lambda: [0])
    baseline: bool = True  # also train the same student with CE only
    source: str = ""
    checkpoint_every: int = 200
    quantize: str | None = None  # "int8": also the int8 phases (training_int8)
    generations: int = 1  # born-again: generations 2.. distilled from the previous one (full_training_ban)
    mutual: int = 0  # a cohort of this many students trained together (full_training_mutual); 0: none

    def phases(self) -> list[tuple[str, int]]:
        kinds = ["kd", "ce"] if self.baseline else ["kd"]
        if self.generations > 1:
            from nas_student.full_training_ban import kinds as ban_kinds

            kinds += ban_kinds(self.generations)
        if self.mutual:
            kinds.append("mutual")
        if self.quantize:
            from nas_student.full_training_int8 import kinds as int8_kinds

            kinds += int8_kinds(self.arch)
        return [(k, s) for s in self.seeds for k in kinds]


#: Per-token outputs (language models) keep the proxy's temperature 1 in full training: soft
#: targets over a vocabulary at T = 4 are too flat. Text task, GRU student at 1/10 of the
#: teacher's MACs, 1,000 steps: test perplexity 4.82 at T = 1 vs 6.09 at T = 4 (CE only 4.75);
#: word-level KD at T = 1 as in Kim & Rush 2016, "Sequence-Level Knowledge Distillation".
PER_TOKEN_KEEPS = ("temperature",)


def default_recipe(proxy: Recipe, *, per_token: bool = False) -> Recipe:
    """Full training when no recipe is given: the run's proxy recipe, :data:`FULL_FACTOR` times
    the steps. Settings the run left at the proxy's own defaults (``lr``, ``temperature``:
    chosen to rank students quickly) take full training's defaults (:class:`Recipe`), except
    :data:`PER_TOKEN_KEEPS` for ``per_token`` students (language models)."""
    data = proxy.model_dump()
    data.pop("family_lr", None)  # the proxy's ranking aids; full training uses Recipe's lr and steps
    data.pop("family_step_factor", None)
    data.pop("depth_power", None)
    data.pop("reference_depth", None)
    for name, f in ProxyRecipe.model_fields.items():
        if name not in Recipe.model_fields or per_token and name in PER_TOKEN_KEEPS:
            continue
        if f.default != Recipe.model_fields[name].default and data[name] == f.default:
            data[name] = Recipe.model_fields[name].default
    if proxy.epochs is not None:  # a budget in epochs stays one, FULL_FACTOR times longer
        data.pop("steps")
        return Recipe.model_validate({**data, "epochs": proxy.epochs * FULL_FACTOR})
    return Recipe.model_validate({**data, "steps": proxy.steps * FULL_FACTOR})


def job_from_run(run_dir: Path, number: int, recipe: Recipe | None, out: Path | None, **kw: Any) -> TrainJob:
    """A job for trial ``number`` of a finished or running search."""
    from nas_student.results.runs import open_run, run_io, trained_trial

    view = open_run(run_dir)
    t = trained_trial(view, number)
    cfg = RunConfig.model_validate(view.config)
    per_token = run_io(view).per_token
    return TrainJob(TrialRecord.from_trial(t).arch, cfg, recipe or default_recipe(cfg.budget, per_token=per_token),
                    out or run_dir / "train" / f"trial-{number}", source=f"{run_dir} trial {number}", **kw)


def job_from_arch(path: Path, cfg: RunConfig, recipe: Recipe | None, out: Path | None, **kw: Any) -> TrainJob:
    """A job for an architecture file: a bare architecture, or ``export``'s arch.json."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise NasStudentError(f"{path}: cannot read architecture JSON ({e})") from None
    arch = data.get("arch", data) if isinstance(data, dict) else data
    if not isinstance(arch, dict) or "family" not in arch:
        raise NasStudentError(f"{path}: expected an architecture (a mapping with `family`)")
    stored = data.get("io") if isinstance(data, dict) else None
    per_token = _per_token(cfg, stored)
    if stored and not cfg.custom_task:  # an export says what it was built for: it must be this task's
        from nas_student.families.base import ModelIO
        from nas_student.tasks import task_io

        built, want = ModelIO.from_dict(stored), task_io(cfg.task)
        if (built.input_shape, built.num_outputs) != (want.input_shape, want.num_outputs):
            raise NasStudentError(
                f"{path}: built for inputs {built.input_shape} and {built.num_outputs} outputs, but task "
                f"{cfg.task!r} has inputs {want.input_shape} and {want.num_outputs} outputs; name its task with --task")
    return TrainJob(arch, cfg, recipe or default_recipe(cfg.budget, per_token=per_token),
                    out or path.parent / f"train-{arch_hash(arch)}", source=str(path), **kw)


def _per_token(cfg: RunConfig, stored_io: dict[str, Any] | None) -> bool:
    """Whether the student outputs one prediction per token: from an export's stored interface,
    else the built-in task's; a user task's teacher is only known once loaded (taken as not)."""
    from nas_student.families.base import ModelIO
    from nas_student.tasks import task_io

    if stored_io:
        return bool(ModelIO.from_dict(stored_io).per_token)
    return False if cfg.custom_task else bool(task_io(cfg.task).per_token)


def _mean_sd(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values)}


def inputs(job: TrainJob) -> str:
    """What the student is trained on, in words (reports and the CLI say it)."""
    if job.cfg.data_free.enabled:
        return "data-free: inputs synthesised from the teacher alone (no training data)"
    return "the task's training data"


def settings(job: TrainJob) -> dict[str, Any]:
    """What a finished phase's result depends on besides its seed: the architecture, the recipe
    and where the training inputs come from (the data, or data-free synthesis)."""
    cfg = job.cfg
    free = cfg.data_free
    return {"arch": job.arch, "recipe": job.recipe.model_dump(mode="json"),
            "task": cfg.task, "teacher": cfg.teacher.model_dump(mode="json") if cfg.teacher else None,
            "data": cfg.data.model_dump(mode="json") if cfg.data else None,
            **({"teachers": [t.model_dump(mode="json") for t in cfg.teachers], "combine": cfg.combine}
               if cfg.teachers else {}),
            # synthetic inputs depend on the run's seed too
            "data_free": {**free.model_dump(mode="json"), "seed": cfg.search.seed} if free.enabled else None}


def check_folder(job: TrainJob) -> None:
    """``job.out`` must hold no phase (finished or checkpointed), or phases of the same settings
    (then they are kept: more seeds, a resumed run). Phases of other settings are never mixed in."""
    if not (any(job.out.glob("*-s*.json")) or any(job.out.glob("*.ckpt"))):
        return  # nothing trained here yet: any settings may start
    mine, path = settings(job), job.out / "settings.json"
    if path.exists():
        theirs = json.loads(path.read_text())
    else:  # phases from before settings were recorded: their architecture and recipe files
        theirs = {k: json.loads((job.out / f"{k}.json").read_text()) if (job.out / f"{k}.json").exists() else None
                  for k in ("arch", "recipe")}
        theirs["arch"] = (theirs["arch"] or {}).get("arch")
        mine = {k: mine[k] for k in ("arch", "recipe")}
    if theirs != mine:
        what = "; ".join(differences(theirs, mine)[:3])
        raise NasStudentError(f"{job.out} holds a training with other settings ({what}); "
                              "give another --out, or delete that folder to train again there")


def check_recipe(job: TrainJob, task: Task) -> None:
    """Fail now, before any file is written, if the recipe's terms do not fit this pair of
    models (feature pairs that name no module, attention maps without Transformer layers)."""
    from nas_student.distill.terms import LossTerms

    if not job.recipe.uses_teacher_model:
        return
    if task.io.heads:
        raise NasStudentError(f"task {task.name!r} is multi-task: distil each task's outputs only; features "
                              "and attention maps need one teacher")
    if task.cross_modal:
        raise NasStudentError(f"task {task.name!r} is cross-modal (the teacher sees another input than the "
                              "student): distil its outputs only; features and attention maps need one input")
    device = next(iter(task.teacher.parameters()), torch.empty(0)).device
    LossTerms(job.recipe, build(job.arch, task.io).to(device), task.teacher, task.train.x[:2].to(device))


def run_job(job: TrainJob, device: torch.device, progress: Progress | None = None) -> dict[str, Any]:
    """Train every phase not finished yet, then write and return the report."""
    check_folder(job)
    phases = job.phases()  # a student without an int8 path is refused here, before any work
    task = task_for_config(job.cfg, str(device))
    check_recipe(job, task)
    if job.mutual and task.io.per_token:
        raise NasStudentError("--mutual is for classification; this task's students predict every token")
    if task.io.heads and (job.mutual or job.generations > 1 or job.quantize):
        raise NasStudentError(f"task {task.name!r} is multi-task ({len(task.io.heads)} tasks): it trains with KD from "
                              "each task's teacher; --mutual, --generations and --quantize are for one task")
    job.out.mkdir(parents=True, exist_ok=True)
    (job.out / "settings.json").write_text(json.dumps(settings(job), indent=2))
    (job.out / "arch.json").write_text(json.dumps({"arch": job.arch}, indent=2))
    (job.out / "recipe.json").write_text(job.recipe.model_dump_json(indent=2))
    x, y = task.distillation_set()
    teacher_logits = task.teacher_logits("train")
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for kind, seed in phases:
        done = job.out / f"{kind}-s{seed}.json"
        if done.exists():
            results[(kind, seed)] = {**json.loads(done.read_text()), "reused": True}
            continue
        record = _run_phase(job, task, kind, seed, x, y, teacher_logits, device, progress)
        done.write_text(json.dumps(record, indent=2))
        (job.out / f"{kind}-s{seed}.ckpt").unlink(missing_ok=True)
        results[(kind, seed)] = record
    report = _report(job, task, device, results)
    report["reused"] = [f"{k} seed {sd}" for (k, sd), r in sorted(results.items()) if r.get("reused")]
    report["resumed"] = {f"{k} seed {sd}": r["resumed_from"] for (k, sd), r in sorted(results.items())
                         if r.get("resumed_from") and not r.get("reused")}
    (job.out / "report.json").write_text(json.dumps(report, indent=2))
    (job.out / "report.md").write_text(report_markdown(report))
    return report


def _run_phase(job: TrainJob, task: Task, kind: str, seed: int, x: torch.Tensor, y: torch.Tensor,
               teacher_logits: torch.Tensor, device: torch.device, progress: Progress | None) -> dict[str, Any]:
    """Train one phase (``kd``, ``ce``, a born-again generation, a mutual cohort or an int8
    phase) and return its record."""
    name = f"{kind} seed {seed}"
    if kind in ("ptq", "qat"):
        from nas_student import full_training_int8 as training_int8

        steps = training_int8.qat_recipe(job.recipe, len(x)).steps
        return training_int8.run_phase(
            kind, job.arch, job.recipe, task, job.out, seed, x, y, teacher_logits, device, job.checkpoint_every,
            (lambda s: progress(name, s, steps) or False) if progress and kind == "qat" else None)
    total = job.recipe.total_steps(len(x))
    on_step = (lambda s: progress(name, s, total) or False) if progress else None
    if kind == "mutual":
        from nas_student.full_training_mutual import run_cohort

        return run_cohort(job.arch, job.recipe, task, job.out, seed, job.mutual, x, y, teacher_logits, device,
                          job.checkpoint_every, on_step)
    if kind.startswith("ban"):
        from nas_student.full_training_ban import run_generation

        return run_generation(kind, job.arch, job.recipe, task, job.out, seed, x, y, device, job.checkpoint_every,
                              on_step)
    torch.manual_seed(seed)
    model = build(job.arch, task.io).to(device)
    res = train(model, x, y, job.recipe, seed=seed,
                teacher_logits=teacher_logits if kind == "kd" else None, teacher=task.teacher,
                checkpoint=job.out / f"{kind}-s{seed}.ckpt", checkpoint_every=job.checkpoint_every, on_step=on_step)
    if kind == "kd":
        weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save(weights, job.out / f"kd-s{seed}.pt")  # where the int8 phases and generation 2 start
        if seed == job.seeds[0]:
            torch.save(weights, job.out / "student.pt")
    return {"kind": kind, "seed": seed, "steps": res.steps, "wall_s": res.wall_s,
            "resumed_from": res.resumed_from, **evaluate(model, task.test.x, task.test.y)}


def _report(job: TrainJob, task: Task, device: torch.device, results: dict[tuple[str, int], dict[str, Any]]
            ) -> dict[str, Any]:
    student = build(job.arch, task.io).to(device)
    _, s_cost = price(student, task.io, device, job.cfg.latency)
    _, t_cost = price_teacher(task.teacher, task.teacher_interface(), device, job.cfg.latency,
                              job.cfg.price_against)
    teacher = evaluate(task.teacher, task.teacher_inputs("test"), task.test.y)
    tasks = list(task.io.head_names or [str(i) for i in range(len(task.io.heads))])
    metrics = [m for m in ("accuracy", "perplexity", *(f"accuracy_{i}" for i in range(len(tasks)))) if m in teacher]
    report: dict[str, Any] = {
        "source": job.source, "task": task.name, "arch": job.arch, "recipe": job.recipe.describe(),
        "seeds": job.seeds, "inputs": inputs(job), "teacher": {**teacher, **t_cost}, "student_cost": s_cost,
        "macs_ratio": s_cost["macs"] / t_cost["macs"], "params_ratio": s_cost["params"] / t_cost["params"],
        "latency_speedup": t_cost["latency_ms"] / s_cost["latency_ms"],
        **({"tasks": tasks, "price_against": job.cfg.price_against} if tasks else {}),
    }
    for kind in ("kd", "ce", *sorted({k for k, _ in results if k.startswith("ban")}, key=lambda k: int(k[3:]))):
        runs = [r for (k, _), r in sorted(results.items()) if k == kind]
        if runs:
            report[kind] = {m: _mean_sd([r[m] for r in runs]) for m in metrics}
            report[kind]["wall_s"] = _mean_sd([r["wall_s"] for r in runs])
    cohorts = [r for (k, _), r in sorted(results.items()) if k == "mutual"]
    if cohorts:  # each seed's cohort mean, and its best member
        report["mutual"] = {"accuracy": _mean_sd([r["accuracy"] for r in cohorts]),
                            "best_accuracy": _mean_sd([r["best_accuracy"] for r in cohorts]),
                            "cohort": cohorts[0]["cohort"], "wall_s": _mean_sd([r["wall_s"] for r in cohorts])}
    report["retention_pct"] = 100.0 * report["kd"]["accuracy"]["mean"] / teacher["accuracy"]
    if "ce" in report:
        report["kd_minus_ce"] = report["kd"]["accuracy"]["mean"] - report["ce"]["accuracy"]["mean"]
    if job.quantize:
        from nas_student import full_training_int8 as training_int8

        report["int8"] = training_int8.report(job.arch, task, job.out, job.seeds, job.cfg.latency.batch_size, results)
    return report


def format_mean_sd(d: dict[str, float], with_n: bool = False) -> str:
    """``mean ± sd`` over seeds; one seed has no spread to show, so just its value."""
    if d.get("n", 1) <= 1:
        return f"{d['mean']:.4f}" + (" (n=1)" if with_n else "")
    return f"{d['mean']:.4f} ± {d['sd']:.4f}" + (f" (n={d['n']})" if with_n else "")


def report_markdown(r: dict[str, Any]) -> str:
    def ms(d: dict[str, float]) -> str:
        return format_mean_sd(d, with_n=True)

    lines = [f"# Full training report: {r['source']}", "",
             f"Task `{r['task']}`; recipe: {r['recipe']}; seeds {r['seeds']}; trained on "
             f"{r.get('inputs', 'the task training data')}.", "",
             "| model | test accuracy | " + ("perplexity |" if "perplexity" in r["teacher"] else ""),
             "|---|---|" + ("---|" if "perplexity" in r["teacher"] else "")]
    extra = "perplexity" in r["teacher"]
    lines.append(f"| teacher | {r['teacher']['accuracy']:.4f} | "
                 + (f"{r['teacher']['perplexity']:.3f} |" if extra else ""))
    labels = [("kd", "student, distilled"), ("ce", "student, CE only (same budget)")]
    labels += [(k, f"student, born-again generation {k[3:]} (taught by generation {int(k[3:]) - 1})")
               for k in r if k.startswith("ban")]
    if "mutual" in r:  # classification only: no perplexity column
        lines.append(f"| student, mutual learning (cohort of {r['mutual']['cohort']}: member mean) | "
                     f"{ms(r['mutual']['accuracy'])} |")
        lines.append(f"| student, mutual learning (best member of each cohort) | {ms(r['mutual']['best_accuracy'])} |")
    for kind, label in labels:
        if kind in r:
            lines.append(f"| {label} | {ms(r[kind]['accuracy'])} | "
                         + (f"{ms(r[kind]['perplexity'])} |" if extra else ""))
    lines += ["", f"- accuracy retention: **{r['retention_pct']:.1f} %** of the teacher",
              f"- MACs: {r['student_cost']['macs']:,.0f} ({r['macs_ratio']:.2%} of the teacher); "
              f"params: {r['student_cost']['params']:,.0f} ({r['params_ratio']:.2%})",
              f"- measured latency: {r['student_cost']['latency_ms']:.3f} ms vs {r['teacher']['latency_ms']:.3f} ms "
              f"(speedup {r['latency_speedup']:.2f}x)"]
    if "kd_minus_ce" in r:
        lines.append(f"- distillation vs CE only: {r['kd_minus_ce']:+.4f} accuracy")
    for i, name in enumerate(r.get("tasks", [])):  # a multi-task student: accuracy is the tasks' mean
        key = f"accuracy_{i}"
        lines.append(f"- task `{name}`: teacher {r['teacher'][key]:.4f}, distilled {ms(r['kd'][key])}"
                     + (f", CE only {ms(r['ce'][key])}" if "ce" in r else ""))
    if r.get("tasks"):
        lines.append(f"- costs are fractions of the {'sum' if r['price_against'] == 'sum' else 'largest'} "
                     "of the tasks' teachers")
    if "int8" in r:
        from nas_student.full_training_int8 import markdown

        lines += markdown(r["int8"], r["kd"]["accuracy"]["mean"])
    return "\n".join(lines) + "\n"
