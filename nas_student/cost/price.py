"""All the costs of one model as a flat dict: what the search records and constrains."""

from __future__ import annotations

import torch
from torch import nn

from nas_student.config import LatencySettings
from nas_student.cost.latency import measure_latency, model_size_bytes
from nas_student.cost.profile import Cost, profile
from nas_student.errors import NasStudentError
from nas_student.families.base import ModelIO

MB = 1e6


def price(model: nn.Module, io: ModelIO, device: torch.device, latency: LatencySettings | None,
          int8: str | None = None) -> tuple[Cost, dict[str, float]]:
    """MACs and params (batch 1), fp32 size in MB, and with ``latency`` the median ms of one
    forward pass at ``latency.batch_size`` on ``device``. With ``int8`` (the student's int8 path,
    :func:`nas_student.quantization.int8_path`) also its int8 version's stored size
    (``size_mb_int8``) and, with ``latency``, its latency on CPU (``latency_int8_ms``): the int8
    version is converted untrained (static ones calibrated on one random batch), which changes
    neither its size nor its kernels' speed."""
    cost = profile(model, io.example_input().to(device))
    out: dict[str, float] = {"macs": cost.macs, "params": cost.params,
                             "size_mb": model_size_bytes(model, "fp32") / MB}
    if latency is not None:
        out["latency_ms"] = measure_latency(
            model, io.example_input(latency.batch_size).to(device), warmup=latency.warmup,
            repeats=latency.repeats, threads=latency.threads, device=device)
    if int8 is not None:
        from nas_student import quantization as q8

        quantized = q8.int8_twin(model, io, int8)
        out["size_mb_int8"] = q8.stored_bytes(quantized) / MB
        if latency is not None:
            out["latency_int8_ms"] = measure_latency(
                quantized, io.example_input(latency.batch_size), warmup=latency.warmup,
                repeats=latency.repeats, threads=latency.threads, device="cpu")
    return cost, out


def price_teacher(teacher: nn.Module, io: ModelIO, device: torch.device, latency: LatencySettings | None,
                  against: str = "sum") -> tuple[Cost, dict[str, float]]:
    """The teacher's costs, what students are priced as a fraction of. Several teachers (an
    ensemble, or one per task: a module holding them in ``teachers``) cost their sum (all of
    them run) or, ``against="largest"``, the costs of the member with the most MACs."""
    members = list(getattr(teacher, "teachers", []))
    if against == "sum":
        return price(teacher, io, device, latency)
    if against != "largest":
        raise NasStudentError(f"price_against: {against!r} is not sum or largest")
    if not members:
        raise NasStudentError("price_against: largest prices students against the largest of several teachers, "
                              "but this task has one teacher; leave it at sum")
    macs = [price(m, io, device, None)[1]["macs"] for m in members]
    return price(members[macs.index(max(macs))], io, device, latency)
