"""Layout ops: pure data movement. On spiking tensors they become index maps (free on cores)."""

from __future__ import annotations

import numpy as np

from ...errors import NeurocompileError
from ..registry import attrs, describe, handles
from ..values import is_const, layout, shape_of
from .constants import check_size, require_const


def _axis(axis: int, rank: int, node) -> int:
    if not -rank <= axis < rank:
        raise NeurocompileError(f"{describe(node)}: axis {axis} is out of range for rank {rank}")
    return axis % rank


def reshape_target(node, shape: tuple[int, ...], spec, allowzero: int = 0) -> tuple[int, ...]:
    dims = [int(d) for d in spec]
    if not allowzero:
        dims = [shape[k] if d == 0 else d for k, d in enumerate(dims)]
    if dims.count(-1) > 1:
        raise NeurocompileError(f"{describe(node)}: more than one -1 in the target shape {dims}")
    total = int(np.prod(shape))
    if -1 in dims:
        known = int(np.prod([d for d in dims if d != -1]))
        if known == 0 or total % known:
            raise NeurocompileError(f"{describe(node)}: cannot reshape {list(shape)} into {dims}")
        dims[dims.index(-1)] = total // known
    if int(np.prod(dims)) != total:
        raise NeurocompileError(f"{describe(node)}: cannot reshape {list(shape)} into {dims}")
    return tuple(dims)


@handles("Reshape")
def reshape(ctx, node, inputs):
    target = reshape_target(node, shape_of(inputs[0]), require_const(node, inputs[1], "the target shape"), attrs(node).get("allowzero", 0))
    return [layout(lambda a, fill: a.reshape(target), inputs[:1])]


@handles("Flatten")
def flatten(ctx, node, inputs):
    shape = shape_of(inputs[0])
    axis = attrs(node).get("axis", 1)
    axis = axis % len(shape) if axis < 0 else axis
    target = (int(np.prod(shape[:axis])), int(np.prod(shape[axis:])))
    return [layout(lambda a, fill: a.reshape(target), inputs[:1])]


@handles("Transpose")
def transpose(ctx, node, inputs):
    perm = attrs(node).get("perm")
    return [layout(lambda a, fill: np.transpose(a, perm), inputs[:1])]


def _axes_input(node, inputs, index: int = 1):
    """The optional `axes` input (an attribute before version 13)."""
    if len(inputs) > index and inputs[index] is not None:
        return [int(v) for v in require_const(node, inputs[index], "axes")]
    return None


@handles("Squeeze", since=13)
def squeeze(ctx, node, inputs):
    shape = shape_of(inputs[0])
    axes = _axes_input(node, inputs)
    axes = tuple(k for k, d in enumerate(shape) if d == 1) if axes is None else tuple(_axis(a, len(shape), node) for a in axes)
    return [layout(lambda a, fill: np.squeeze(a, axis=axes), inputs[:1])]


@handles("Unsqueeze", since=13)
def unsqueeze(ctx, node, inputs):
    axes = _axes_input(node, inputs)
    rank = len(shape_of(inputs[0])) + len(axes)
    axes = sorted(_axis(a, rank, node) for a in axes)

    def fn(a, fill):
        for ax in axes:
            a = np.expand_dims(a, ax)
        return a

    return [layout(fn, inputs[:1])]


@handles("Slice")
def slice_(ctx, node, inputs):
    shape = shape_of(inputs[0])
    starts = require_const(node, inputs[1], "starts")
    ends = require_const(node, inputs[2], "ends")
    axes = require_const(node, inputs[3], "axes") if len(inputs) > 3 and inputs[3] is not None else np.arange(len(starts))
    steps = require_const(node, inputs[4], "steps") if len(inputs) > 4 and inputs[4] is not None else np.ones(len(starts), np.int64)
    index = [slice(None)] * len(shape)
    for s, e, ax, st in zip(starts, ends, axes, steps):
        if st == 0:
            raise NeurocompileError(f"{describe(node)}: slice step 0")
        index[_axis(int(ax), len(shape), node)] = slice(int(s), int(e), int(st))
    index = tuple(index)
    return [layout(lambda a, fill: a[index], inputs[:1])]


@handles("Concat")
def concat(ctx, node, inputs):
    rank = len(shape_of(inputs[0]))
    axis = _axis(attrs(node)["axis"], rank, node)
    return [layout(lambda *arrs, fill: np.concatenate(arrs, axis=axis), inputs)]


@handles("Split")
def split(ctx, node, inputs):
    a = attrs(node)
    shape = shape_of(inputs[0])
    axis = _axis(a.get("axis", 0), len(shape), node)
    if len(inputs) > 1 and inputs[1] is not None:
        sizes = [int(v) for v in require_const(node, inputs[1], "split sizes")]
    elif "split" in a:
        sizes = list(a["split"])
    else:
        n = len(node.output)
        step = -(-shape[axis] // n)
        sizes = [min(step, shape[axis] - k * step) for k in range(n)]
    bounds = np.cumsum([0] + sizes)
    outs = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        index = tuple(slice(int(lo), int(hi)) if k == axis else slice(None) for k in range(len(shape)))
        outs.append(layout(lambda arr, fill, index=index: arr[index], inputs[:1]))
    return outs


@handles("Gather")
def gather(ctx, node, inputs):
    indices = require_const(node, inputs[1], "gather indices (on a spiking tensor)").astype(np.int64)
    shape = shape_of(inputs[0])
    axis = _axis(attrs(node).get("axis", 0), len(shape), node)
    if indices.size and (indices.min() < -shape[axis] or indices.max() >= shape[axis]):
        raise NeurocompileError(f"{describe(node)}: gather index out of range for axis of size {shape[axis]}")
    indices = np.where(indices < 0, indices + shape[axis], indices)
    return [layout(lambda a, fill: np.take(a, indices, axis=axis), inputs[:1])]


@handles("Expand")
def expand(ctx, node, inputs):
    target = check_size(node, np.broadcast_shapes(shape_of(inputs[0]), tuple(int(d) for d in require_const(node, inputs[1], "the target shape"))))
    return [layout(lambda a, fill: np.broadcast_to(a, target).copy(), inputs[:1])]


@handles("Pad")
def pad(ctx, node, inputs):
    a = attrs(node)
    if a.get("mode", b"constant") not in (b"constant", "constant"):
        raise NeurocompileError(f"{describe(node)}: only constant padding is supported")
    pads = require_const(node, inputs[1], "pads").astype(np.int64)
    value = float(require_const(node, inputs[2], "the pad value").ravel()[0]) if len(inputs) > 2 and inputs[2] is not None else 0.0
    rank = len(shape_of(inputs[0]))
    axes = [int(v) for v in require_const(node, inputs[3], "axes")] if len(inputs) > 3 and inputs[3] is not None else list(range(rank))
    widths = [(0, 0)] * rank
    for k, ax in enumerate(axes):
        widths[_axis(ax, rank, node)] = (int(pads[k]), int(pads[k + len(axes)]))
    if (pads < 0).any():
        raise NeurocompileError(f"{describe(node)}: negative pads are not supported")
    if not is_const(inputs[0]) and value != 0.0:
        raise NeurocompileError(f"{describe(node)}: padding a spiking tensor with {value} (only 0 is supported)")
    return [layout(lambda arr, fill: np.pad(arr, widths, constant_values=value if is_const(inputs[0]) else fill), inputs[:1])]
