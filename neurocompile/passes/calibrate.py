"""Thresholds from data, for populations converted from plain ReLU (or unbounded Clip).

Data-based normalisation: a population's threshold is a high percentile of its positive ANN
activations on calibration inputs, so that the IF neuron's rate range covers nearly all of them.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import NeurocompileError
from ..ir.graph import Network
from ..ir.interpret import evaluate
from ..ir.nodes import IFPopulation


def needs_calibration(net: Network) -> list[str]:
    return [p.name for p in net.populations() if isinstance(p, IFPopulation) and not math.isfinite(p.threshold)]


def calibrate_thresholds(net: Network, x: np.ndarray, percentile: float = 99.9) -> dict[str, float]:
    if not 0 < percentile <= 100:
        raise NeurocompileError(f"calibration percentile {percentile} must be in (0, 100]")
    pending = needs_calibration(net)
    if not pending:
        return {}
    post = evaluate(net, x)["post"]  # ReLU populations evaluate without their threshold
    chosen = {}
    for name in pending:
        acts = post[name]
        positive = acts[acts > 0]
        if positive.size == 0:
            raise NeurocompileError(f"population '{name}' is never active on the calibration data; cannot choose its threshold")
        chosen[name] = float(np.percentile(positive, percentile))
        net.node(name).threshold = chosen[name]
    return chosen
