"""ResNet-18 at 224x224 (torchvision's architecture, written out: no torchvision here)."""

from __future__ import annotations

import torch
from torch import nn

from nas_student.cost import profile


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
        for i, (cin, cout, stride) in enumerate(widths, 1):
            blocks = nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1))
            setattr(self, f"layer{i}", blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def analytic_macs() -> dict[str, int]:
    """Per-layer conv/linear MACs: cout * cin * k*k * hout * wout."""
    macs = {"conv1": 64 * 3 * 49 * 112 * 112}
    size, cin = 56, 64
    for i, cout in enumerate([64, 128, 256, 512], 1):
        out = size if i == 1 else size // 2
        first = cout * cin * 9 * out * out
        downsample = cout * cin * out * out if cin != cout else 0
        macs[f"layer{i}"] = first + downsample + 3 * cout * cout * 9 * out * out
        size, cin = out, cout
    macs["fc"] = 512 * 1000
    return macs


def test_resnet18() -> None:
    expected = analytic_macs()
    cost = profile(ResNet18(), torch.randn(1, 3, 224, 224))
    assert cost.params == 11_689_512
    assert cost.macs == sum(expected.values()) == 1_814_073_344
    assert round(cost.macs / 1e9, 3) == 1.814  # torchvision's published 1.814 G(MAC)s
    assert {k: v for k, v in cost.by_module.items() if v} == expected
    assert cost.by_op == {"conv": cost.macs - 512_000, "linear": 512_000}
    # norms, activations, pooling and residual adds are reported, never in macs
    assert set(cost.other_ops) == {"batch_norm", "relu", "max_pool2d", "add", "adaptive_avg_pool2d"}
