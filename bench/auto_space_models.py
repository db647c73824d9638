"""Teachers for the user-style cases of ``bench/auto_space.py`` (a user's factory file)."""

from torch import nn


def mlp_teacher(in_features: int, classes: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_features, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, classes))


def _block(conv: type[nn.Module], pool: type[nn.Module], cin: int, cout: int, k: int) -> list[nn.Module]:
    norm = nn.BatchNorm2d if conv is nn.Conv2d else nn.BatchNorm1d
    return [conv(cin, cout, k, padding=k // 2), norm(cout), nn.ReLU(),
            conv(cout, cout, k, padding=k // 2), norm(cout), nn.ReLU(), pool(2)]


def cnn_teacher(channels: int, classes: int) -> nn.Module:
    return nn.Sequential(*_block(nn.Conv2d, nn.MaxPool2d, channels, 32, 3), *_block(nn.Conv2d, nn.MaxPool2d, 32, 64, 3),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))


def cnn1d_teacher(channels: int, classes: int) -> nn.Module:
    return nn.Sequential(*_block(nn.Conv1d, nn.MaxPool1d, channels, 64, 5), *_block(nn.Conv1d, nn.MaxPool1d, 64, 128, 5),
                         nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(128, classes))
