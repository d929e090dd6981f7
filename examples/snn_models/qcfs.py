"""QCFS: the quantization clip-floor-shift activation used for ANN-to-SNN conversion.

    y = up * clamp(floor(x / up * L + 0.5) / L, 0, 1)

``up`` is a learned threshold (one scalar per activation) and ``L`` the number of quantization
levels. An ANN trained with QCFS converts to an integrate-and-fire SNN whose firing threshold
is ``up``: after ``L`` time steps the spike rate matches the ANN activation exactly.
"""

import torch
from torch import nn


def _floor(x: torch.Tensor) -> torch.Tensor:
    """Floor with a straight-through gradient in training, a plain Floor node in ONNX.

    floor has zero gradient almost everywhere, so training passes the gradient through
    unchanged. The export must not carry the STE's Sub/Add/detach arithmetic: the compiler
    pattern-matches the exact QCFS node sequence.
    """
    if torch.onnx.is_in_onnx_export():
        return torch.floor(x)
    return x + (torch.floor(x) - x).detach()


class QCFS(nn.Module):
    """Clip-floor-shift activation with ``levels`` steps and a learned scalar threshold ``up``.

    Exports to ONNX as exactly:
    Div(x, up) -> Mul(L) -> Add(0.5) -> Floor -> Div(L) -> Clip(0, 1) -> Mul(up).
    """

    def __init__(self, levels: int = 8, up: float = 1.0):
        super().__init__()
        self.levels = levels
        self.up = nn.Parameter(torch.tensor(float(up)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x / self.up
        x = _floor(x * self.levels + 0.5) / self.levels
        x = torch.clamp(x, 0, 1)
        return x * self.up

    def extra_repr(self) -> str:
        return f"levels={self.levels}, up={self.up.item():.4f}"
