"""All the costs of one model as a flat dict: what the search records and constrains."""

from __future__ import annotations

import torch
from torch import nn

from nas_student.config import LatencySettings
from nas_student.cost.latency import measure_latency, model_size_bytes
from nas_student.cost.profile import Cost, profile
from nas_student.families.base import ModelIO

MB = 1e6


def price(model: nn.Module, io: ModelIO, device: torch.device, latency: LatencySettings | None
          ) -> tuple[Cost, dict[str, float]]:
    """MACs and params (batch 1), fp32 size in MB, and with ``latency`` the median ms of one
    forward pass at ``latency.batch_size`` on ``device``."""
    cost = profile(model, io.example_input().to(device))
    out: dict[str, float] = {"macs": cost.macs, "params": cost.params,
                             "size_mb": model_size_bytes(model, "fp32") / MB}
    if latency is not None:
        out["latency_ms"] = measure_latency(
            model, io.example_input(latency.batch_size).to(device), warmup=latency.warmup,
            repeats=latency.repeats, threads=latency.threads, device=device)
    return cost, out
