"""Ops with no neuron form, run on the host each step: softmax, layer normalization, and the
matrix product of two spiking tensors (attention's Q K^T and A V)."""

from __future__ import annotations

import numpy as np

from ...errors import NeurocompileError
from ...ir.interpret import layernorm_float, softmax_float
from ...ir.nodes import HostOp, Product, size
from ..registry import attrs, describe, handles
from ..values import Affine, Failure, Gather, Scale, is_const, scale, shape_of
from .constants import require_const


def _last_axis(node, value, axis: int) -> None:
    rank = len(shape_of(value))
    if axis % rank != rank - 1:
        raise NeurocompileError(f"{describe(node)}: normalizing over axis {axis} of a rank-{rank} tensor; only the last axis is supported")


@handles("Softmax")
def softmax(ctx, node, inputs):
    x = inputs[0]
    axis = attrs(node).get("axis", -1)
    if is_const(x):
        return [np.moveaxis(softmax_float(np.moveaxis(x, axis, -1)), -1, axis)]
    _last_axis(node, x, axis)
    return [ctx.to_population(x, node, lambda name, shape, bias: HostOp(name=name, shape=shape, op="softmax", bias=bias))]


@handles("LayerNormalization", "DecomposedLayerNormalization")  # the second: frontend/patterns.py
def layer_norm(ctx, node, inputs):
    x = inputs[0]
    if len([o for o in node.output if o]) > 1:
        raise NeurocompileError(f"{describe(node)}: the Mean and InvStdDev outputs of LayerNormalization are not supported")
    a = attrs(node)
    axis, eps = a.get("axis", -1), float(a.get("epsilon", 1e-5))
    width = shape_of(x)[-1]
    gamma = np.broadcast_to(np.asarray(require_const(node, inputs[1], "the scale"), np.float64), (width,)).copy()
    beta = np.broadcast_to(np.asarray(require_const(node, inputs[2], "the bias"), np.float64), (width,)).copy() if len(inputs) > 2 and inputs[2] is not None else np.zeros(width)
    if is_const(x):
        return [layernorm_float(np.asarray(x, np.float64), eps, gamma, beta)]
    _last_axis(node, x, axis)
    return [ctx.to_population(x, node, lambda name, shape, bias: HostOp(name=name, shape=shape, op="layernorm", bias=bias, epsilon=eps, gamma=gamma, beta=beta))]


def operand_view(node, value: Affine, which: str) -> tuple[str, np.ndarray | None, float, Failure | None]:
    """A product operand must be one population seen through layout ops and a uniform factor:
    returns (source, index map or None, factor, its mask or None)."""
    if len(value.terms) != 1 or np.any(value.offset):
        raise NeurocompileError(f"{describe(node)}: operand {which} of the spike product is not a single spiking tensor (it sums {len(value.terms)} sources or adds a constant)")
    term = value.terms[0]
    index, factor = None, 1.0
    for op in term.ops:
        if isinstance(op, Gather):
            index = op.index
        elif isinstance(op, Scale) and np.all(op.w == op.w.flat[0]):
            factor = float(op.w.flat[0])
        else:
            raise NeurocompileError(f"{describe(node)}: operand {which} of the spike product passes through weights; only layout ops and constant factors are supported")
    n_src = size(term.source_shape)
    if index is not None and index.size == n_src and np.array_equal(index.ravel(), np.arange(n_src)):
        index = None
    return term.source, index, factor, term.failure


def spike_product(ctx, node, a: Affine, b: Affine) -> Affine:
    a_src, a_index, a_gain, a_fail = operand_view(node, a, "A")
    b_src, b_index, b_gain, b_fail = operand_view(node, b, "B")
    a_shape, b_shape = shape_of(a), shape_of(b)
    if len(a_shape) < 2 or len(b_shape) < 2 or a_shape[-1] != b_shape[-2]:
        raise NeurocompileError(f"{describe(node)}: cannot multiply {list(a_shape)} by {list(b_shape)}")
    if a_src == b_src:
        raise NeurocompileError(f"{describe(node)}: both operands of the spike product come from population '{a_src}'; not supported")
    shape = tuple(np.broadcast_shapes(a_shape[:-2], b_shape[:-2])) + (a_shape[-2], b_shape[-1])
    prod = Product(name=ctx.population_name(node), shape=shape, a_shape=a_shape, b_shape=b_shape, a_index=a_index, b_index=b_index, origin=describe(node))
    if a_fail is not None:
        prod.failure_a, prod.failure_group_a = a_fail.p, a_fail.group
    if b_fail is not None:
        prod.failure_b, prod.failure_group_b = b_fail.p, b_fail.group
    ctx.net.connect_operands(prod, a_src, b_src)
    out = Affine.of_population(prod.name, shape)
    return out if a_gain * b_gain == 1.0 else scale(out, np.array(a_gain * b_gain))
