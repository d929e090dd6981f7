"""Multi-node patterns recognised before symbolic execution, each replaced by one node.

QCFS (clip-floor-shift) is exported as seven nodes around one Floor:

    Div(x, up) -> Mul(., L) -> Add(., 0.5) -> Floor -> Div(., L) -> Clip(., 0, 1) -> Mul(., up)

(`Mul(x, 1/up)` for the first Div, and either operand order for Mul and Add, are accepted). The
group becomes one virtual node `QCFS(x) {up, levels}` placed where its last node was.

Layer norm below opset 17 (which has no LayerNormalization) is exported decomposed:

    m = ReduceMean(x) ; d = Sub(x, m) ; v = ReduceMean(Pow(d, 2)) ; Div(d, Sqrt(Add(v, eps)))
    [-> Mul(., gamma) -> Add(., beta)]

over one axis, and becomes one `DecomposedLayerNormalization(x, gamma, beta) {axis, epsilon}`,
which the frontend runs as the layer-norm host op.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .registry import attrs


def constant_values(nodes: list[onnx.NodeProto], initial: dict) -> dict[str, np.ndarray]:
    """Tensors whose value is known without running the model: initializers, Constant nodes and
    Identity of those."""
    known = {k: v for k, v in initial.items() if isinstance(v, np.ndarray)}
    for node in nodes:
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


class Wiring:
    """Who produces and who reads each tensor of a list of nodes."""

    def __init__(self, nodes: list[onnx.NodeProto]):
        self.producer = {out: n for n in nodes for out in n.output}
        self.consumers: dict[str, list] = {}
        for n in nodes:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)

    def readers(self, tensor: str) -> int:
        return len(self.consumers.get(tensor, []))

    def only_consumer(self, tensor: str, op_type: str) -> onnx.NodeProto | None:
        """The one node reading the tensor, if it is an op_type."""
        users = self.consumers.get(tensor, [])
        return users[0] if len(users) == 1 and users[0].op_type == op_type else None

    def made_by(self, tensor: str, op_type: str, readers: int = 1) -> onnx.NodeProto | None:
        """The op_type node producing the tensor, if exactly `readers` nodes read it."""
        node = self.producer.get(tensor)
        return node if node is not None and node.op_type == op_type and self.readers(tensor) == readers else None


def _replaced(nodes: list[onnx.NodeProto], replaced: dict[int, list[onnx.NodeProto]], dropped: set[int]) -> list[onnx.NodeProto]:
    """The nodes with each group's last node replaced by its fused node(s), the rest of the group dropped."""
    out = []
    for node in nodes:
        if id(node) in replaced:
            out.extend(replaced[id(node)])
        elif id(node) not in dropped:
            out.append(node)
    return out


def fuse_qcfs(nodes: list[onnx.NodeProto], initial: dict) -> list[onnx.NodeProto]:
    known = constant_values(nodes, initial)
    wiring = Wiring(nodes)
    producer, consumers, only_consumer = wiring.producer, wiring.consumers, wiring.only_consumer
    replaced: dict[int, list[onnx.NodeProto]] = {}  # id of the group's last node -> fused node
    dropped: set[int] = set()
    for floor in nodes:
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
        replaced[id(mul_up)] = [fused]
        dropped.update(id(n) for n in group)
    return _replaced(nodes, replaced, dropped)


def _reduce_axes(node: onnx.NodeProto, known: dict) -> list[int] | None:
    """A ReduceMean's axes (attribute before opset 18, input since), None when not constant."""
    if len(node.input) > 1 and node.input[1]:
        axes = known.get(node.input[1])
        return None if axes is None else [int(a) for a in np.ravel(axes)]
    axes = attrs(node).get("axes")
    return None if axes is None else [int(a) for a in axes]


def fuse_layer_norm(nodes: list[onnx.NodeProto], initial: dict) -> list[onnx.NodeProto]:
    known = constant_values(nodes, initial)
    wiring = Wiring(nodes)
    single, made_by = wiring.only_consumer, wiring.made_by
    replaced: dict[int, list[onnx.NodeProto]] = {}
    dropped: set[int] = set()
    for sqrt in nodes:
        if sqrt.op_type != "Sqrt":
            continue
        add_eps = made_by(sqrt.input[0], "Add")
        eps = _other(add_eps, known) if add_eps is not None else None
        var = made_by(eps[0], "ReduceMean") if eps else None
        square = made_by(var.input[0], "Pow") if var is not None else None
        if square is None or _scalar(known, square.input[1]) != 2.0:
            continue
        diff = made_by(square.input[0], "Sub", readers=2)
        mean = made_by(diff.input[1], "ReduceMean") if diff is not None else None
        div = single(sqrt.output[0], "Div")
        if mean is None or div is None or div.input[0] != diff.output[0] or mean.input[0] != diff.input[0] or diff.input[0] in known:
            continue
        axes = _reduce_axes(mean, known)
        if axes is None or len(axes) != 1 or _reduce_axes(var, known) != axes or not all(attrs(n).get("keepdims", 1) for n in (mean, var)):
            continue
        group, last, extra = [mean, diff, square, var, add_eps, sqrt, div], div, []
        gamma = beta = None
        mul = single(div.output[0], "Mul")
        if mul is not None and _affine_operand(mul, known) is not None:
            gamma, last = _affine_operand(mul, known), mul
            group.append(mul)
            add = single(mul.output[0], "Add")
            if add is not None and _affine_operand(add, known) is not None:
                beta, last = _affine_operand(add, known), add
                group.append(add)
        base = (mean.name or mean.output[0]).rsplit("/", 1)[0]
        if gamma is None:
            gamma = f"{last.output[0]}::gamma"
            extra.append(helper.make_node("Constant", [], [gamma], value=numpy_helper.from_array(np.ones(1, np.float32))))
        if beta is None:
            beta = f"{last.output[0]}::beta"
            extra.append(helper.make_node("Constant", [], [beta], value=numpy_helper.from_array(np.zeros(1, np.float32))))
        fused = helper.make_node("DecomposedLayerNormalization", [diff.input[0], gamma, beta], [last.output[0]],
                                 name=f"{base}/LayerNormalization", axis=axes[0], epsilon=float(eps[1]))
        replaced[id(last)] = extra + [fused]
        dropped.update(id(n) for n in group)
    return _replaced(nodes, replaced, dropped)


def _affine_operand(node: onnx.NodeProto, known: dict) -> str | None:
    """The constant operand's name of a Mul or Add with one (gamma or beta)."""
    a, b = node.input[0], node.input[1]
    if b in known and a not in known:
        return b
    if a in known and b not in known:
        return a
    return None


PATTERNS = [fuse_qcfs, fuse_layer_norm]


def fused(graph: onnx.GraphProto, initial: dict) -> list[onnx.NodeProto]:
    """The graph's nodes with every pattern replaced by its one node."""
    nodes = list(graph.node)
    for pattern in PATTERNS:
        nodes = pattern(nodes, initial)
    return nodes
