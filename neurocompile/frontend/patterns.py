"""Multi-node patterns recognised before symbolic execution.

QCFS (clip-floor-shift) is exported as seven nodes around one Floor:

    Div(x, up) -> Mul(., L) -> Add(., 0.5) -> Floor -> Div(., L) -> Clip(., 0, 1) -> Mul(., up)

(`Mul(x, 1/up)` for the first Div, and either operand order for Mul and Add, are accepted). The
group becomes one virtual node `QCFS(x) {up, levels}` placed where its last node was.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .registry import attrs


def constant_values(graph: onnx.GraphProto, initial: dict) -> dict[str, np.ndarray]:
    """Tensors whose value is known without running the model: initializers, Constant nodes and
    Identity of those."""
    known = {k: v for k, v in initial.items() if isinstance(v, np.ndarray)}
    for node in graph.node:
        if node.op_type == "Constant":
            (name, value), = attrs(node).items()
            known[node.output[0]] = numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else np.asarray(value)
        elif node.op_type == "Identity" and node.input[0] in known:
            known[node.output[0]] = known[node.input[0]]
    return known


def _scalar(known: dict, name: str) -> float | None:
    v = known.get(name)
    if v is None or np.size(v) != 1:
        return None
    return float(np.asarray(v).ravel()[0])


def _other(node: onnx.NodeProto, known: dict, value: float | None = None) -> tuple[str, float] | None:
    """For a binary node with one constant scalar operand: (the other input, the constant)."""
    a, b = node.input[0], node.input[1]
    for data, const in ((a, b), (b, a)):
        c = _scalar(known, const)
        if c is not None and data not in known and (value is None or np.isclose(c, value)):
            return data, c
    return None


def fuse_qcfs(graph: onnx.GraphProto, initial: dict) -> Iterator[onnx.NodeProto]:
    known = constant_values(graph, initial)
    producer = {out: n for n in graph.node for out in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def only_consumer(tensor: str, op_type: str):
        users = consumers.get(tensor, [])
        return users[0] if len(users) == 1 and users[0].op_type == op_type else None

    replaced: dict[int, onnx.NodeProto] = {}  # id of the group's last node -> fused node
    dropped: set[int] = set()
    for floor in graph.node:
        if floor.op_type != "Floor":
            continue
        add = producer.get(floor.input[0])
        if add is None or add.op_type != "Add" or len(consumers.get(add.output[0], [])) != 1:
            continue
        add_in = _other(add, known, 0.5)
        mul_l = producer.get(add_in[0]) if add_in else None
        if mul_l is None or mul_l.op_type != "Mul" or len(consumers.get(mul_l.output[0], [])) != 1:
            continue
        mul_in = _other(mul_l, known)
        if mul_in is None:
            continue
        levels = mul_in[1]
        head = producer.get(mul_in[0])
        if head is None or len(consumers.get(head.output[0], [])) != 1:
            continue
        if head.op_type == "Div" and _scalar(known, head.input[1]) is not None and head.input[0] not in known:
            x, up = head.input[0], _scalar(known, head.input[1])
        elif head.op_type == "Mul" and _other(head, known):
            x, inv = _other(head, known)
            up = 1.0 / inv if inv else None
        else:
            continue
        div_l = only_consumer(floor.output[0], "Div")
        clip = only_consumer(div_l.output[0], "Clip") if div_l is not None else None
        mul_up = only_consumer(clip.output[0], "Mul") if clip is not None else None
        if mul_up is None or _scalar(known, div_l.input[1]) is None or not np.isclose(_scalar(known, div_l.input[1]), levels):
            continue
        lo = _scalar(known, clip.input[1]) if len(clip.input) > 1 and clip.input[1] else None
        hi = _scalar(known, clip.input[2]) if len(clip.input) > 2 and clip.input[2] else None
        out_in = _other(mul_up, known)
        if lo != 0.0 or hi != 1.0 or out_in is None or up is None or not np.isclose(out_in[1], up, rtol=1e-6):
            continue
        group = [head, mul_l, add, floor, div_l, clip, mul_up]
        fused = helper.make_node("QCFS", [x], [mul_up.output[0]], name=head.name or mul_up.name)
        fused.attribute.extend([helper.make_attribute("up", float(up)), helper.make_attribute("levels", float(levels))])
        replaced[id(mul_up)] = fused
        dropped.update(id(n) for n in group)

    for node in graph.node:
        if id(node) in replaced:
            yield replaced[id(node)]
        elif id(node) not in dropped:
            yield node
