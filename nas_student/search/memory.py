"""Refuse students too large to train before allocating them (an estimate, on the safe side).

Training needs about 16 bytes per parameter (fp32 weights, gradients, Adam's two moments) plus
the activations kept for the backward pass. The parameter count comes from a build on the
``meta`` device (no memory), so a huge student is refused without ever being allocated.
"""

from __future__ import annotations

import torch
from torch import nn

BYTES_PER_PARAM = 16
SAFETY = 0.8  # never plan to use more than this share of what is free


def available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 2**62  # unknown: do not refuse


def meta_params(build) -> int:  # type: ignore[no-untyped-def]
    """Parameter count of ``build()`` run on the meta device (allocates nothing)."""
    with torch.device("meta"):
        model: nn.Module = build()
    return sum(p.numel() for p in model.parameters())


def training_bytes(params: int, activation_elems: int = 0, batch: int = 1) -> int:
    # activations: kept for backward, their gradients, and a temporary: ~3 fp32 copies
    return BYTES_PER_PARAM * params + 12 * activation_elems * batch


def fits(need: int, device: torch.device) -> tuple[bool, int]:
    free = available_bytes(device)
    return need <= SAFETY * free, free
