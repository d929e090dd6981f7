"""Weighted linear ops: convolutions, matrix products, batch norm, pooling, reductions.

They become kernels on every term of an expression; constant parts (biases, BatchNorm shifts)
go to the offset, which later becomes the neurons' bias.
"""

from __future__ import annotations

import numpy as np

from ...errors import NeurocompileError
from ...ir.kernels import Conv2d, Dense
from ..registry import attrs, describe, handles
from ..values import Affine, add, is_const, layout, scale, shape_of
from .constants import require_const
from .host import spike_product


def _conv_pads(node, a: dict, in_hw, kernel_hw, strides, dilations) -> tuple[int, int, int, int]:
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", ""):
        pads = list(a.get("pads", [0, 0, 0, 0]))
        return (pads[0], pads[1], pads[2], pads[3])
    if auto == "VALID":
        return (0, 0, 0, 0)
    total = []
    for size, k, s, d in zip(in_hw, kernel_hw, strides, dilations):
        out = -(-size // s)
        total.append(max(0, (out - 1) * s + (k - 1) * d + 1 - size))
    lo = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in total]
    return (lo[0], lo[1], total[0] - lo[0], total[1] - lo[1])


def _conv_kernel(node, x_shape, weight, a: dict) -> Conv2d:
    if len(x_shape) != 4:
        raise NeurocompileError(f"{describe(node)}: only 2-D convolutions on [N, C, H, W] tensors are supported, input has shape {list(x_shape)}")
    strides = tuple(a.get("strides", [1, 1]))
    dilations = tuple(a.get("dilations", [1, 1]))
    pads = _conv_pads(node, a, x_shape[2:], weight.shape[2:], strides, dilations)
    return Conv2d(weight=np.asarray(weight, np.float64), strides=strides, pads=pads, dilations=dilations, group=a.get("group", 1))


@handles("Conv")
def conv(ctx, node, inputs):
    x, w = inputs[0], require_const(node, inputs[1], "the weight")
    if is_const(x):
        raise NeurocompileError(f"{describe(node)}: convolution of a constant input; fold it before export")
    kernel = _conv_kernel(node, shape_of(x), w, attrs(node))
    y = ctx.apply_kernel(node, x, kernel)
    if len(inputs) > 2 and inputs[2] is not None:
        y = add(y, require_const(node, inputs[2], "the bias").reshape(1, -1, 1, 1))
    return [y]


def _matmul_right(ctx, x, b: np.ndarray, node) -> Affine:
    """x @ b for a constant b [K], [K, N] or [1.., K, N]: a dense kernel on the last axis, then
    the output shape of ONNX MatMul (a 1-D b drops the last axis; b's unit batch axes
    broadcast against x's)."""
    b = np.asarray(b, np.float64)
    a_shape = shape_of(x)
    if b.ndim > 2 and any(d != 1 for d in b.shape[:-2]):
        raise NeurocompileError(f"{describe(node)}: batched constant operand of shape {list(b.shape)} is not supported")
    if b.ndim == 1:
        out_shape = a_shape[:-1]
        matrix = b[:, None]
    else:
        out_shape = tuple(np.broadcast_shapes(a_shape[:-2], b.shape[:-2])) + (a_shape[-2], b.shape[-1])
        matrix = b.reshape(b.shape[-2:])
    y = ctx.apply_kernel(node, x, Dense(weight=matrix.T.copy()))
    return y if shape_of(y) == out_shape else layout(lambda arr, fill: arr.reshape(out_shape), [y])


def _swap_last(v):
    rank = len(shape_of(v))
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    return layout(lambda arr, fill: np.transpose(arr, perm), [v])


@handles("MatMul")
def matmul(ctx, node, inputs):
    a, b = inputs
    if is_const(a) and is_const(b):
        return [a @ b]
    if not is_const(a) and not is_const(b):
        return [spike_product(ctx, node, a, b)]
    if is_const(b):
        if len(shape_of(a)) < 2 or len(np.shape(b)) < 1:
            raise NeurocompileError(f"{describe(node)}: unsupported operand ranks {list(shape_of(a))} @ {list(np.shape(b))}")
        return [_matmul_right(ctx, a, b, node)]
    # a @ x = (x^T @ a^T)^T: a dense kernel with weight a on x's second-to-last axis.
    a = np.asarray(a, np.float64)
    if a.ndim != 2 or len(shape_of(b)) < 2:
        raise NeurocompileError(f"{describe(node)}: unsupported operand ranks {list(np.shape(a))} @ {list(shape_of(b))}")
    return [_swap_last(ctx.apply_kernel(node, _swap_last(b), Dense(weight=a.copy())))]


@handles("Gemm")
def gemm(ctx, node, inputs):
    a_, b, c = inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None
    at = attrs(node)
    alpha, beta = at.get("alpha", 1.0), at.get("beta", 1.0)
    if is_const(a_) and is_const(b):
        aa = a_.T if at.get("transA", 0) else a_
        bb = b.T if at.get("transB", 0) else b
        y = alpha * (aa @ bb)
        return [y + beta * c if c is not None else y]
    if not is_const(b):
        raise NeurocompileError(f"{describe(node)}: Gemm with a spiking second operand is not supported")
    x = _swap_last(a_) if at.get("transA", 0) else a_
    bb = np.asarray(b, np.float64)
    bb = bb.T if at.get("transB", 0) else bb
    y = _matmul_right(ctx, x, alpha * bb, node)
    if c is not None:
        y = add(y, beta * np.asarray(require_const(node, c, "the bias"), np.float64))
    return [y]


@handles("BatchNormalization")
def batch_norm(ctx, node, inputs):
    x = inputs[0]
    gamma, beta, mean, var = (np.asarray(require_const(node, v, "BatchNorm statistics"), np.float64) for v in inputs[1:5])
    a = attrs(node)
    if a.get("training_mode", 0):
        raise NeurocompileError(f"{describe(node)}: BatchNormalization in training mode; export the model in eval mode")
    rank = len(shape_of(x))
    if np.any(var + a.get("epsilon", 1e-5) <= 0):
        raise NeurocompileError(f"{describe(node)}: BatchNorm variance plus epsilon is not positive")
    w = gamma / np.sqrt(var + a.get("epsilon", 1e-5))
    bshape = (1, -1) + (1,) * (rank - 2)
    return [add(scale(x, w.reshape(bshape)), (beta - mean * w).reshape(bshape))]


def _depthwise_pool(node, x, kernel_hw, strides, pads, weight_value, dilations=(1, 1)):
    channels = shape_of(x)[1]
    weight = np.full((channels, 1) + tuple(kernel_hw), weight_value)
    return Conv2d(weight=weight, strides=tuple(strides), pads=tuple(pads), dilations=tuple(dilations), group=channels)


@handles("AveragePool")
def average_pool(ctx, node, inputs):
    x = inputs[0]
    a = attrs(node)
    shape = shape_of(x)
    if len(shape) != 4:
        raise NeurocompileError(f"{describe(node)}: only 2-D average pooling is supported")
    k = tuple(a["kernel_shape"])
    strides = tuple(a.get("strides", [1, 1]))
    dilations = tuple(a.get("dilations", [1, 1]))
    pads = _conv_pads(node, a, shape[2:], k, strides, dilations)
    ones = Conv2d(weight=np.ones((1, 1) + k), strides=strides, pads=pads, dilations=dilations)
    out_hw = ones.out_shape((1, 1) + shape[2:])[2:]
    if a.get("ceil_mode", 0):
        ceil_hw = [-(-(s + p0 + p1 - kk) // st) + 1 for s, p0, p1, kk, st in zip(shape[2:], pads[:2], pads[2:], k, strides)]
        if list(out_hw) != ceil_hw:
            raise NeurocompileError(f"{describe(node)}: ceil_mode=1 changes the output size here; export with ceil_mode=0")
    if is_const(x):
        raise NeurocompileError(f"{describe(node)}: pooling a constant; fold it before export")
    y = ctx.apply_kernel(node, x, _depthwise_pool(node, x, k, strides, pads, 1.0, dilations))
    if a.get("count_include_pad", 0) or not any(pads):
        return [scale(y, np.array(1.0 / np.prod(k)))]
    # Edge windows divide by the number of real (unpadded) elements.
    counts = ones.apply(np.ones((1, 1, 1) + shape[2:]), ones.weight)[0, 0]
    return [scale(y, 1.0 / counts)]


@handles("GlobalAveragePool")
def global_average_pool(ctx, node, inputs):
    """The mean over every axis after [N, C]: images (a depthwise convolution over H x W) and
    token sequences alike (`nn.AdaptiveAvgPool1d(1)` on [B, C, L] exports as a 3-D one)."""
    x = inputs[0]
    shape = shape_of(x)
    if len(shape) < 3:
        raise NeurocompileError(f"{describe(node)}: global average pooling needs [N, C, ...] with at least one spatial axis, got shape {list(shape)}")
    if len(shape) == 4 and not is_const(x):
        hw = shape[2:]
        return [ctx.apply_kernel(node, x, _depthwise_pool(node, x, hw, (1, 1), (0, 0, 0, 0), 1.0 / np.prod(hw)))]
    return _reduce(ctx, node, inputs, list(range(2, len(shape))), mean=True, keepdims=True)


def _axes_input(node, inputs) -> list[int] | None:
    return [int(v) for v in require_const(node, inputs[1], "axes")] if len(inputs) > 1 and inputs[1] is not None else None


def _reduce(ctx, node, inputs, axes: list[int] | None, mean: bool, keepdims: bool | None = None):
    x = inputs[0]
    a = attrs(node)
    shape = shape_of(x)
    if axes is not None and len(axes) == 0:
        axes = None  # an empty axes list means "no axes given"
    if axes is None:
        if a.get("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(len(shape)))
    axes = sorted(ax % len(shape) for ax in axes)
    keep = a.get("keepdims", 1) if keepdims is None else keepdims
    if is_const(x):
        fn = np.mean if mean else np.sum
        return [fn(x, axis=tuple(axes), keepdims=bool(keep))]
    kept = [k for k in range(len(shape)) if k not in axes]
    r = int(np.prod([shape[k] for k in axes]))
    moved = layout(lambda arr, fill: np.transpose(arr, kept + axes).reshape([shape[k] for k in kept] + [r]), [x])
    y = ctx.apply_kernel(node, moved, Dense(weight=np.full((1, r), 1.0 / r if mean else 1.0)))
    out_shape = [1 if k in axes else shape[k] for k in range(len(shape))] if keep else [shape[k] for k in kept]
    return [layout(lambda arr, fill: arr.reshape(out_shape), [y])]


@handles("ReduceMean", since=13)
def reduce_mean_axes_attribute(ctx, node, inputs):
    return _reduce(ctx, node, inputs, attrs(node).get("axes"), mean=True)


@handles("ReduceMean", since=18)
def reduce_mean(ctx, node, inputs):
    return _reduce(ctx, node, inputs, _axes_input(node, inputs), mean=True)


@handles("ReduceSum", since=13)
def reduce_sum(ctx, node, inputs):
    return _reduce(ctx, node, inputs, _axes_input(node, inputs), mean=False)
