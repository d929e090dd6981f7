"""Small networks for the 1x8x8 scikit-learn digits images (10 classes), and the data split and
training set-up that every digits example shares."""

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from .qcfs import QCFS

def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): images as float32 [N, 1, 8, 8] in [0, 1] (raw pixels
    are 0..16), int64 labels; 360 test images, stratified, the split of graphs/digits_test_*.npy."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=360, stratify=y, random_state=0)
    return x_train, y_train, x_test, y_test


def make_deterministic() -> None:
    # One thread: multi-threaded CPU reductions may sum in a different order from run to run.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


# Initial QCFS threshold: inputs to each activation are batch-normalised, so most of the
# positive mass lies below ~2; training then adjusts every threshold on its own.
UP_INIT = 2.0


class DigitsMLP(nn.Module):
    """3-layer QCFS MLP: 64 -> 128 -> 64 -> 10."""

    def __init__(self, levels: int = 8):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, 128),
            nn.BatchNorm1d(128),
            QCFS(levels, UP_INIT),
            nn.Linear(128, 64),
            nn.BatchNorm1d(64),
            QCFS(levels, UP_INIT),
            nn.Linear(64, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout))


class DigitsCNN(nn.Module):
    """QCFS CNN with one residual block: stem conv, residual block, avgpool, conv, GAP, linear."""

    def __init__(self, levels: int = 8):
        super().__init__()
        self.stem = _conv_bn(1, 16)
        self.stem_act = QCFS(levels, UP_INIT)
        self.res1 = _conv_bn(16, 16)
        self.res1_act = QCFS(levels, UP_INIT)
        self.res2 = _conv_bn(16, 16)
        self.res_out_act = QCFS(levels, UP_INIT)  # applied after the skip addition
        self.pool = nn.AvgPool2d(2)  # 8x8 -> 4x4
        self.conv2 = _conv_bn(16, 32)
        self.conv2_act = QCFS(levels, UP_INIT)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_act(self.stem(x))
        h = self.res1_act(self.res1(x))
        x = self.res_out_act(self.res2(h) + x)
        x = self.conv2_act(self.conv2(self.pool(x)))
        return self.fc(self.flatten(self.gap(x)))


class DigitsReluMLP(nn.Module):
    """Plain ReLU MLP (64 -> 128 -> 64 -> 10); the compiler calibrates its thresholds from data."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, 128),
            nn.ReLU(),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
