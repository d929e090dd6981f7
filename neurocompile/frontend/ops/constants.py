"""Constants and shape arithmetic: everything here folds to a numpy array at compile time."""

from __future__ import annotations

import math
import numpy as np
import onnx
from onnx import helper, numpy_helper

from ...errors import NeurocompileError
from ..registry import attrs, describe, handles
from ..values import is_const, shape_of


TENSOR_ELEMENTS_MAX = 2**28  # 1 GiB of float32: far above any layer of a Swin-T, far below what hangs a machine


def check_size(node, shape, what: str = "its output") -> tuple[int, ...]:
    """Refuses a tensor before it is allocated when it would exceed TENSOR_ELEMENTS_MAX."""
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise NeurocompileError(f"{describe(node)}: {what} has a negative dimension: {list(shape)}")
    n = math.prod(shape)
    if n > TENSOR_ELEMENTS_MAX:
        raise NeurocompileError(f"{describe(node)}: {what} of shape {list(shape)} would hold {n:.3g} elements; the limit is {TENSOR_ELEMENTS_MAX:.3g}")
    return shape


def require_const(node, value, what: str) -> np.ndarray:
    if value is None or not is_const(value):
        raise NeurocompileError(f"{describe(node)}: {what} must be a constant (static shapes only)")
    return value


@handles("Constant")
def constant(ctx, node, inputs):
    (name, value), = attrs(node).items()
    if isinstance(value, onnx.TensorProto):
        return [numpy_helper.to_array(value)]
    if name in ("sparse_value",):
        raise NeurocompileError(f"{describe(node)}: sparse constants are not supported")
    dtype = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64, "value_ints": np.int64}.get(name)
    return [np.asarray(value, dtype=dtype)]


@handles("Identity", "Dropout")
def identity(ctx, node, inputs):
    # Dropout at inference is the identity; its optional mask output is never consumed by a
    # converted network.
    if node.op_type == "Dropout" and len(inputs) > 2 and inputs[2] is not None:
        if not is_const(inputs[2]) or bool(np.asarray(inputs[2]).ravel()[0]):
            raise NeurocompileError(f"{describe(node)}: Dropout in training mode; export the model in eval mode")
    return [inputs[0]] + [None] * (len(node.output) - 1)


@handles("Shape")
def shape(ctx, node, inputs):
    a = attrs(node)
    dims = np.array(shape_of(inputs[0]), dtype=np.int64)
    return [dims[a.get("start", 0): a.get("end", None)]]


@handles("Size")
def size_(ctx, node, inputs):
    return [np.array(int(np.prod(shape_of(inputs[0]))), dtype=np.int64)]


@handles("ConstantOfShape")
def constant_of_shape(ctx, node, inputs):
    dims = require_const(node, inputs[0], "the shape").astype(np.int64)
    value = attrs(node).get("value")
    fill = numpy_helper.to_array(value) if value is not None else np.zeros(1, np.float32)
    return [np.full(check_size(node, dims), fill.ravel()[0], dtype=fill.dtype)]


@handles("Range")
def range_(ctx, node, inputs):
    start, limit, delta = (require_const(node, v, "range bounds") for v in inputs)
    if delta == 0:
        raise NeurocompileError(f"{describe(node)}: Range with delta 0")
    check_size(node, [max(0, math.ceil((float(limit) - float(start)) / float(delta)))])
    return [np.arange(start, limit, delta).astype(np.result_type(start, limit, delta))]


@handles("Cast")
def cast(ctx, node, inputs):
    to = helper.tensor_dtype_to_np_dtype(attrs(node)["to"])
    x = inputs[0]
    if is_const(x):
        return [x.astype(to)]
    if np.dtype(to).kind != "f":
        raise NeurocompileError(f"{describe(node)} casts a spiking tensor to {np.dtype(to)}; only float casts are supported")
    return [x]
