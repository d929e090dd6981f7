"""Op handlers, registered by ONNX op type.

A handler takes the conversion context, the node and its input values (constants or Affine
expressions; None for an omitted optional input) and returns one value per node output.
"""

from __future__ import annotations

from typing import Callable

import onnx
from onnx import helper

from ..errors import NeurocompileError

Handler = Callable[..., list]
HANDLERS: dict[str, Handler] = {}


def handles(*op_types: str):
    def register(fn: Handler) -> Handler:
        for op in op_types:
            if op in HANDLERS:
                raise RuntimeError(f"two handlers registered for ONNX op {op}")
            HANDLERS[op] = fn
        return fn

    return register


def attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def describe(node: onnx.NodeProto) -> str:
    return f"node '{node.name or node.output[0]}' ({node.op_type})"


def unsupported(node: onnx.NodeProto, opset: int, why: str = "") -> NeurocompileError:
    supported = ", ".join(sorted(HANDLERS))
    reason = f": {why}" if why else " is not supported"
    return NeurocompileError(f"{describe(node)} at opset {opset}{reason}. Supported ops: {supported}")
