"""Elementwise arithmetic. Linear forms (sum, difference, product or quotient with a constant)
stay symbolic; everything else must fold to a constant."""

from __future__ import annotations

import numpy as np

from ...errors import NeurocompileError
from ..registry import describe, handles
from ..values import add, is_const, scale
from .masks import Mask, apply_mask


def _onnx_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(np.result_type(a, b), np.integer):
        return np.trunc(np.true_divide(a, b)).astype(np.result_type(a, b))  # ONNX truncates
    return a / b


@handles("Add")
def add_(ctx, node, inputs):
    return [ctx.relay_sum(node, add(*inputs))]


@handles("Sub")
def sub(ctx, node, inputs):
    a, b = inputs
    if is_const(a) and is_const(b):
        return [a - b]
    return [add(a, scale(b, np.array(-1.0)) if not is_const(b) else -np.asarray(b, np.float64))]


@handles("Neg")
def neg(ctx, node, inputs):
    return [-inputs[0] if is_const(inputs[0]) else scale(inputs[0], np.array(-1.0))]


@handles("Mul")
def mul(ctx, node, inputs):
    a, b = inputs
    if isinstance(a, Mask) or isinstance(b, Mask):
        return [apply_mask(node, b, a) if isinstance(a, Mask) else apply_mask(node, a, b)]
    if is_const(a) and is_const(b):
        return [a * b]
    if not is_const(a) and not is_const(b):
        raise NeurocompileError(f"{describe(node)} multiplies two spiking tensors (a spike product); not supported by this build")
    data, const = (a, b) if is_const(b) else (b, a)
    return [scale(data, np.asarray(const, np.float64))]


@handles("Div")
def div(ctx, node, inputs):
    a, b = inputs
    if is_const(a) and is_const(b):
        return [_onnx_div(a, b)]
    if not is_const(b):
        raise NeurocompileError(f"{describe(node)} divides by a spiking tensor; only division by constants is supported")
    b = np.asarray(b, np.float64)
    if np.any(b == 0):
        raise NeurocompileError(f"{describe(node)} divides by zero")
    return [scale(a, 1.0 / b)]


# Ops that only ever see constants in a converted network (shape arithmetic, masks, ...).
FOLDABLE = {
    "Floor": np.floor, "Ceil": np.ceil, "Sqrt": np.sqrt, "Abs": np.abs, "Exp": np.exp, "Log": np.log,
    "Reciprocal": np.reciprocal, "Not": np.logical_not, "Sign": np.sign,
    "Pow": np.power, "Equal": np.equal, "And": np.logical_and,
    "Or": np.logical_or, "Min": np.minimum, "Max": np.maximum, "Mod": np.mod, "Where": np.where,
}


@handles(*FOLDABLE)
def fold(ctx, node, inputs):
    if not all(is_const(v) for v in inputs):
        hint = " outside a QCFS clip-floor-shift pattern (Div, Mul, Add 0.5, Floor, Div, Clip 0..1, Mul)" if node.op_type == "Floor" else " on a spiking tensor"
        raise NeurocompileError(f"{describe(node)}: {node.op_type}{hint} is not supported")
    fn = FOLDABLE[node.op_type]
    if node.op_type in ("Min", "Max"):
        out = inputs[0]
        for v in inputs[1:]:
            out = fn(out, v)
        return [out]
    return [np.asarray(fn(*inputs))]
