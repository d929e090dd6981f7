"""Activations: where a linear expression ends in a population of integrate-and-fire neurons."""

from __future__ import annotations

import math

import numpy as np

from ...errors import NeurocompileError
from ...ir.nodes import IFPopulation
from ..registry import attrs, describe, handles
from ..values import is_const
from .constants import require_const


def _if_population(ctx, node, value, threshold: float, activation: str, levels: int = 0):
    def make(name, shape, bias):
        return IFPopulation(name=name, shape=shape, threshold=threshold, activation=activation, levels=levels, bias=bias)

    return ctx.to_population(value, node, make)


@handles("QCFS")
def qcfs(ctx, node, inputs):
    a = attrs(node)
    up, levels = a["up"], a["levels"]
    if not math.isfinite(up) or up <= 0:
        raise NeurocompileError(f"{describe(node)}: QCFS threshold up = {up} must be positive and finite")
    if levels < 1 or levels != int(levels):
        raise NeurocompileError(f"{describe(node)}: QCFS levels L = {levels} must be a positive integer")
    return [_if_population(ctx, node, inputs[0], float(up), "qcfs", int(levels))]


@handles("Relu")
def relu(ctx, node, inputs):
    x = inputs[0]
    if is_const(x):
        return [np.maximum(x, 0)]
    # The threshold comes from data (the calibrate pass); until then it is unknown.
    return [_if_population(ctx, node, x, float("nan"), "relu")]


@handles("Clip", since=11)
def clip(ctx, node, inputs):
    """Clip with min and max as optional inputs (the form of every supported opset)."""
    x = inputs[0]
    lo = require_const(node, inputs[1], "min") if len(inputs) > 1 and inputs[1] is not None else None
    hi = require_const(node, inputs[2], "max") if len(inputs) > 2 and inputs[2] is not None else None
    if is_const(x):
        return [np.clip(x, lo if lo is not None else -np.inf, hi if hi is not None else np.inf)]
    lo = float(np.ravel(lo)[0]) if lo is not None else -math.inf
    hi = float(np.ravel(hi)[0]) if hi is not None else math.inf
    if lo != 0.0:
        raise NeurocompileError(f"{describe(node)}: Clip({lo}, {hi}) on a spiking tensor; only Clip(0, max) (a clipped ReLU) converts to IF neurons")
    if not math.isfinite(hi):
        return [_if_population(ctx, node, x, float("nan"), "relu")]
    if hi <= 0:
        raise NeurocompileError(f"{describe(node)}: Clip max {hi} must be positive to serve as a threshold")
    return [_if_population(ctx, node, x, hi, "clip")]
