"""Time profile() (median of 5 calls) on a few small models; writes a markdown record.

Reproduce: ``python bench/profile_time.py`` (writes results/records/profile_time.md).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package

from nas_student.cost import profile  # noqa: E402

OUT = ROOT / "results" / "records" / "profile_time.md"


class LstmHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(32, 64, 2, batch_first=True)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.lstm(x)[0][:, -1])


def models() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    cnn = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )
    mlp = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    return {
        "small CNN, 1x1x8x8": (cnn, torch.randn(1, 1, 8, 8)),
        "MLP 64-256-256-10, 1x64": (mlp, torch.randn(1, 64)),
        "Transformer encoder 2x(d=64,h=4,ff=128), 1x16x64": (encoder, torch.randn(1, 16, 64)),
        "LSTM 2x64 + head, 1x20x32": (LstmHead(), torch.randn(1, 20, 32)),
    }


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rows = []
    for name, (model, x) in models().items():
        profile(model, x)  # first call pays imports and lazy init
        times = []
        for _ in range(5):
            start = time.perf_counter()
            cost = profile(model, x)
            times.append((time.perf_counter() - start) * 1000)
        rows.append((name, cost.macs, cost.params, statistics.median(times)))
    lines = [
        "# profile() time",
        "",
        "Median of 5 calls of `nas_student.cost.profile` (after one warm-up call), 1 thread.",
        "",
        "Reproduce: `. .venv/bin/activate && python bench/profile_time.py`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores; "
        f"Python {sys.version.split()[0]}, torch {torch.__version__}.",
        "",
        "| model | MACs | params | profile() median ms |",
        "|---|---:|---:|---:|",
        *(f"| {n} | {m:,} | {p:,} | {t:.1f} |" for n, m, p, t in rows),
        "",
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
