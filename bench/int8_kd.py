"""int8 students on mnist1d: quantization-aware training with KD against the same student
converted after training, and against its float version.

    python bench/int8_kd.py [--seeds 3] [--out results/records/int8_kd.md]

For each student below and each seed: ``nas-student train --quantize int8`` as a library call
(full KD recipe: 3000 steps, lr 3e-3 cosine, T = 4; then QAT with KD for 300 steps at lr 3e-4,
and the post-training conversion calibrated on 2,048 training inputs). Latency: CPU, one
thread, batch 1 and 64, median of 200 calls after 20 warm-up calls; the float and int8 models
are measured alternately in one process (10 rounds of 20 calls each, medians), so load on the
machine hits both alike. Stored weight bytes: int8 tensors at 1 byte plus scales, floats at 4.
Every phase is kept in the job folder (``--work``), so a rerun resumes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from nas_student.config import RunConfig
from nas_student.cost.latency import model_size_bytes
from nas_student.distill.recipe import Recipe
from nas_student.families import build
from nas_student.families.base import describe
from nas_student.tasks import load_task
from nas_student.full_training import TrainJob, run_job
from nas_student.full_training_int8 import int8_of, weights_file
from nas_student import quantization as q8
from nas_student.quantization import int8_path as r8_path

STUDENTS = {
    # the proof benchmark's "best: within 1" student at 1/10 of the teacher's MACs (seed 0)
    "cnn1d": {"family": "cnn1d", "stem_width": 24, "stem_kernel": 3, "norm": "batch", "activation": "relu",
              "residual": False,
              "stages": [{"depth": 2, "width": 48, "kernel": 7, "block": "inverted", "expansion": 1, "downsample": "none"},
                         {"depth": 1, "width": 16, "kernel": 5, "block": "inverted", "expansion": 1,
                          "downsample": "maxpool"}]},
    "mlp": {"family": "mlp", "layers": [{"width": 64}, {"width": 32}], "activation": "relu"},
    "rnn": {"family": "rnn", "cell": "gru", "layers": 1, "hidden": 32},
}


def latency_pair(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor, rounds: int = 10, calls: int = 20
                 ) -> tuple[float, float]:
    """Median ms per call of ``a`` and ``b`` on ``x``, measured alternately."""
    times: dict[int, list[float]] = {0: [], 1: []}
    with torch.no_grad():
        for m in (a, b):
            for _ in range(20):
                m(x)
        for _ in range(rounds):
            for i, m in enumerate((a, b)):
                for _ in range(calls):
                    t0 = time.perf_counter()
                    m(x)
                    times[i].append(1000 * (time.perf_counter() - t0))
    return statistics.median(times[0]), statistics.median(times[1])


def ort_latency_pair(float_m: torch.nn.Module, int8: torch.nn.Module, io, x: torch.Tensor, folder: Path,
                     rounds: int = 10, calls: int = 20) -> tuple[float, float]:
    """The same pair through onnxruntime (one thread): the float ONNX export against the int8
    file ``export --quantize int8`` writes. Measured alternately, median ms per call."""
    import onnxruntime as ort

    f32, i8 = folder / "float.onnx", folder / "int8.onnx"
    with torch.no_grad():
        torch.onnx.export(float_m, (io.example_input(),), str(f32), dynamo=False, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "b"}, "logits": {0: "b"}})
    q8.export_onnx(int8, io, i8)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sessions = [ort.InferenceSession(str(f), opts, providers=["CPUExecutionProvider"]) for f in (f32, i8)]
    feed = {"input": x.numpy()}
    times: dict[int, list[float]] = {0: [], 1: []}
    for s in sessions:
        for _ in range(20):
            s.run(None, feed)
    for _ in range(rounds):
        for i, s in enumerate(sessions):
            for _ in range(calls):
                t0 = time.perf_counter()
                s.run(None, feed)
                times[i].append(1000 * (time.perf_counter() - t0))
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--students", default=",".join(STUDENTS))
    ap.add_argument("--work", default="/tmp/nas_student_bench/int8_kd")
    ap.add_argument("--out", default="results/records/int8_kd.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    task = load_task("mnist1d", seed=0)
    rows, per_seed = [], {}
    for name in args.students.split(","):
        arch = STUDENTS[name]
        out = Path(args.work) / name
        job = TrainJob(arch, RunConfig(task="mnist1d"), Recipe(steps=3000), out, seeds=list(range(args.seeds)),
                       baseline=False, quantize="int8")
        t0 = time.perf_counter()
        report = run_job(job, torch.device("cpu"))
        phases = {p.stem: json.loads(p.read_text()) for p in out.glob("*-s*.json")}
        per_seed[name] = {k: {m: v.get(m) for m in ("accuracy", "steps", "wall_s")} for k, v in sorted(phases.items())}
        float_m = build(arch, task.io)
        float_m.load_state_dict(torch.load(weights_file(out, 0), weights_only=True))
        float_m.eval()
        int8 = int8_of(arch, task, out, 0)
        lat = {bs: latency_pair(float_m, int8, task.test.x[:bs].contiguous()) for bs in (1, 64)}
        has_file = r8_path(arch) != "dynamic"  # static and weight-only students have an int8 ONNX file
        ort_lat = ({bs: ort_latency_pair(float_m, int8, task.io, task.test.x[:bs].contiguous(), out) for bs in (1, 64)}
                   if has_file else {})
        agreement = q8.onnx_agreement(out / "int8.onnx", int8, task.test.x) if has_file else None
        r8 = report["int8"]
        kd = [phases[f"kd-s{s}"]["accuracy"] for s in job.seeds]
        best = "qat" if "qat" in r8 else "ptq"
        q = [phases[f"{best}-s{s}"]["accuracy"] for s in job.seeds]
        p = [phases[f"ptq-s{s}"]["accuracy"] for s in job.seeds]
        loss = [100 * (a - b) for a, b in zip(kd, q)]
        rows.append({
            "student": describe(arch), "path": r8["path"], "kd": kd, "int8": q, "ptq": p, "loss_points": loss,
            "ptq_loss_points": [100 * (a - b) for a, b in zip(kd, p)],
            "bytes_float": model_size_bytes(float_m, "fp32"), "bytes_int8": model_size_bytes(int8, "fp32"),
            "latency_ms": {bs: {"float": f, "int8": i} for bs, (f, i) in lat.items()},
            "onnxruntime_latency_ms": {bs: {"float": f, "int8": i} for bs, (f, i) in ort_lat.items()},
            "onnx_agreement": agreement, "teacher_accuracy": report["teacher"]["accuracy"], "wall_s": time.perf_counter() - t0,
        })
        print(json.dumps(rows[-1]), flush=True)
    Path(args.out).with_suffix(".json").write_text(json.dumps({"rows": rows, "phases": per_seed}, indent=1))
    Path(args.out).write_text(render(rows, args.seeds))
    print(Path(args.out).read_text())


def render(rows: list[dict], seeds: int) -> str:
    def pair(d: dict | None) -> str:  # "float / int8 (speed-up)"
        return "n/a" if not d else f"{d['float']:.3f} / {d['int8']:.3f} ({d['float'] / d['int8']:.2f}x)"

    def agree(a: float | None) -> str:
        return "n/a" if a is None else f"{100 * a:.2f} %"

    def ms(v: list[float]) -> str:
        return f"{statistics.median(v):.2f} [{min(v):.2f}, {max(v):.2f}]"

    lines = ["## int8 students on mnist1d: QAT with KD vs conversion after training vs float", "",
             f"Reproduce: `python bench/int8_kd.py --seeds {seeds}` (one CPU thread). Each student distilled with the "
             "full recipe (3000 steps, T = 4), then QAT with KD (300 steps, lr 3e-4) and, for comparison, "
             "converted after training (calibrated on 2,048 training inputs). Accuracy: test split (4,000); "
             f"loss in points = float minus int8; median [min, max] over seeds 0-{seeds - 1}. Latency: one CPU "
             "thread, float and int8 measured alternately in one process, median ms per call.", "",
             "| student | int8 path | float acc % | int8 acc % | loss (points) | converted after training: loss | "
             "weights float / int8 (bytes) | smaller | PyTorch batch 1 ms float / int8 | PyTorch batch 64 | "
             "onnxruntime batch 1 | onnxruntime batch 64 | int8 file vs PyTorch int8 (top-1 agreement) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        l1, l64 = r["latency_ms"][1], r["latency_ms"][64]
        lines.append(
            f"| `{r['student']}` | {r['path']}{' (QAT)' if r['path'] == 'static' else ' (no QAT path)'} | "
            f"{ms([100 * v for v in r['kd']])} | {ms([100 * v for v in r['int8']])} | {ms(r['loss_points'])} | "
            f"{ms(r['ptq_loss_points'])} | {r['bytes_float']:,} / {r['bytes_int8']:,} | "
            f"{r['bytes_float'] / r['bytes_int8']:.1f}x | {pair(l1)} | {pair(l64)} | "
            f"{pair(r['onnxruntime_latency_ms'].get(1))} | {pair(r['onnxruntime_latency_ms'].get(64))} | "
            f"{agree(r.get('onnx_agreement'))} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
