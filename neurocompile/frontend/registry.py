"""Op handlers, registered by (ONNX op type, since-version).

A handler is written against one version of an op's schema and serves every later version until
a handler registered for a later one takes over: `@handles("ReduceMean", since=18)` for the form
whose axes are an input. Which version a node has is resolved through `onnx.defs` from the
model's opset. Ops of the frontend's own (the fused QCFS pattern) have no ONNX schema and are
registered at version 1.

A handler takes the conversion context, the node and its input values (constants or Affine
expressions; None for an omitted optional input) and returns one value per node output.
"""

from __future__ import annotations

from typing import Callable

import onnx
from onnx import helper

from ..errors import NeurocompileError

Handler = Callable[..., list]
HANDLERS: dict[str, dict[int, Handler]] = {}  # op type -> {since-version: handler}


def handles(*op_types: str, since: int = 1):
    def register(fn: Handler) -> Handler:
        for op in op_types:
            versions = HANDLERS.setdefault(op, {})
            if since in versions:
                raise RuntimeError(f"two handlers registered for ONNX op {op} since version {since}")
            versions[since] = fn
        return fn

    return register


def schema_version(op_type: str, opset: int) -> int:
    """The since-version of the op's schema at this opset (1 for the frontend's own ops)."""
    if not onnx.defs.has(op_type):
        return 1
    return onnx.defs.get_schema(op_type, opset).since_version


def handler_for(node: onnx.NodeProto, opset: int) -> Handler:
    versions = HANDLERS.get(node.op_type)
    if not versions:
        raise unsupported(node, opset)
    version = schema_version(node.op_type, opset)
    usable = [since for since in versions if since <= version]
    if not usable:
        first = min(versions)
        raise unsupported(node, opset, f"version {version} of {node.op_type} is not supported; re-export with opset >= {first}")
    return versions[max(usable)]


def attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def describe(node: onnx.NodeProto) -> str:
    return f"node '{node.name or node.output[0]}' ({node.op_type})"


def unsupported(node: onnx.NodeProto, opset: int, why: str = "") -> NeurocompileError:
    supported = ", ".join(sorted(HANDLERS))
    reason = f": {why}" if why else " is not supported"
    return NeurocompileError(f"{describe(node)} at opset {opset}{reason}. Supported ops: {supported}")
