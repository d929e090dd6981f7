"""ONNX -> IR: load and check the model, execute it symbolically node by node, then lower each
synapse block's chain of linear ops (lower.py). What leaves the frontend is a lowered, valid IR."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import NeurocompileError
from ..ir.graph import Network
from ..ir.kernels import Kernel
from ..ir.nodes import InputPopulation, Readout, Relay, SynapseBlock
from .lower import lower_linear_chains
from .ops.constants import TENSOR_ELEMENTS_MAX
from .ops.masks import mask_names
from .patterns import fused
from .registry import describe, handler_for
from .values import Affine, Gather, RandomValue, Scale, Term, Value, apply_kernel, fan_in_map, is_const

OPSET_RANGE = (13, 20)


class Context:
    """What handlers need: the network under construction, the opset, population naming."""

    def __init__(self, net: Network, opset: int, max_fan_in: int | None = None, relay_sums: int | None = None):
        self.net = net
        self.opset = opset
        self.max_fan_in = max_fan_in  # a core's fan-in axons: beyond it, kernels read a relay
        self.relay_sums = relay_sums  # a sum of at least this many populations becomes a relay (--relay-sums)
        self.chains: dict[str, Term] = {}  # synapse block -> its linear ops, until lowering
        self.mask_names: dict[str, str] = {}  # random draw's output -> its mask's name (ops/masks.py)

    def population_name(self, node: onnx.NodeProto, suffix: str = "") -> str:
        # "/layer1/act/Mul_1" -> "layer1.act": the module path, without the op that ends it.
        raw = node.name or node.output[0]
        parts = [p for p in raw.split("/") if p]
        if len(parts) > 1 and re.fullmatch(r"[A-Z][A-Za-z]*(_\d+)?", parts[-1]):
            parts = parts[:-1]
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", ".".join(parts)).strip("_.") or "pop"
        return self.net.unique_name(base + suffix)

    def apply_kernel(self, node: onnx.NodeProto, value: Affine, kernel: Kernel) -> Affine:
        """The kernel on every term of `value`, unless that would give an output more source
        neurons than a core has fan-in axons: composing a sum of terms with a kernel makes
        each output read every source neuron of every term under the kernel's window (the
        residual stream seen through a dense layer: blocks x channels). Then the sum becomes a
        population of relay neurons first, and the kernel reads only those."""
        if self.max_fan_in is None:
            return apply_kernel(value, kernel)
        pattern = (kernel.weight != 0).astype(np.float64)
        per_element = sum(fan_in_map(t) for t in value.terms)
        needed = int(kernel.apply(per_element[None], pattern).max())
        window = int(kernel.apply(np.ones((1,) + value.shape), pattern).max())  # what it reads from a relay
        if needed <= self.max_fan_in or window >= needed:
            return apply_kernel(value, kernel)
        value = self.to_population(value, node, lambda name, shape, bias: Relay(name=name, shape=shape, bias=bias), suffix=".relay")
        relay = self.net.node(value.terms[0].source)
        relay.origin = f"relay before {describe(node)}: composed, one of its outputs would read {needed} neurons; a core has {self.max_fan_in} fan-in axons"
        return apply_kernel(value, kernel)

    def relay_sum(self, node: onnx.NodeProto, value: Value) -> Value:
        """A sum read from as many populations as `relay_sums` or more (the residual stream,
        which lowering would otherwise compose into every later reader: each stream neuron then
        feeds every block of its stage) becomes a population of relay neurons, read once by
        each of its consumers, at one step of latency."""
        if self.relay_sums is None or not isinstance(value, Affine):
            return value
        sources = len({t.source for t in value.terms})
        if sources < self.relay_sums:
            return value
        value = self.to_population(value, node, lambda name, shape, bias: Relay(name=name, shape=shape, bias=bias), suffix=".relay")
        relay = self.net.node(value.terms[0].source)
        relay.origin = f"relay of {describe(node)}: a sum of {sources} populations (--relay-sums {self.relay_sums})"
        return value

    def to_population(self, value: Value, node: onnx.NodeProto, make: Callable[[str, tuple, np.ndarray], object], suffix: str = "") -> Affine:
        """Ends a linear expression in a population fed by one synapse block per term."""
        if is_const(value) or not value.terms:
            raise NeurocompileError(f"{describe(node)} applies an activation to a constant tensor; fold it before export")
        name = self.population_name(node, suffix)
        pop = make(name, value.shape, np.array(value.offset, np.float64).ravel())
        pop.origin = describe(node)
        self.net.add(pop)
        for term in value.terms:
            block = SynapseBlock(name=self.net.unique_name(f"{term.source}->{name}"), view_shape=(), origin=describe(node))
            self.chains[block.name] = term
            if term.failure is not None:
                block.failure, block.failure_group = term.failure.p, term.failure.group
            self.net.connect(block, term.source, name)
        return Affine.of_population(name, value.shape)


def load_model(path: str | Path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise NeurocompileError(f"model file {path} does not exist")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf raises several types for truncated or foreign files
        raise NeurocompileError(f"{path} is not an ONNX model or is truncated ({type(e).__name__}: {e})") from None
    if not model.graph.node:
        raise NeurocompileError(f"{path} is not an ONNX model or is truncated: it has no graph nodes")
    try:
        onnx.checker.check_model(model)
        # Type inference too, so that what ONNX Runtime would refuse (MatMul of float32 with
        # an int8 weight) is refused here, not built; shapes the frontend checks itself, with
        # the node named.
        onnx.shape_inference.infer_shapes(model, check_type=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NeurocompileError(f"{path} is not a valid ONNX model: {first}") from None
    return model


def model_opset(model: onnx.ModelProto) -> int:
    versions = {imp.domain or "ai.onnx": imp.version for imp in model.opset_import}
    opset = versions.get("ai.onnx")
    if opset is None:
        raise NeurocompileError("model imports no default-domain (ai.onnx) opset")
    lo, hi = OPSET_RANGE
    if not lo <= opset <= hi:
        raise NeurocompileError(f"model uses opset {opset}; neurocompile supports opsets {lo} to {hi} (re-export with opset_version={hi if opset > hi else lo}..{hi})")
    return opset


def _initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    consts = {}
    for init in model.graph.initializer:
        try:
            arr = numpy_helper.to_array(init)
        except Exception as e:  # its data and its declared shape or type disagree
            raise NeurocompileError(f"initializer '{init.name}' cannot be read ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise NeurocompileError(f"initializer '{init.name}' holds NaN or inf values")
        consts[init.name] = arr
    return consts


def _input_spec(model: onnx.ModelProto, consts: dict) -> tuple[str, tuple[int, ...]]:
    inputs = [i for i in model.graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise NeurocompileError(f"model must have exactly one data input, has {len(inputs)}: {[i.name for i in inputs]}")
    inp = inputs[0]
    ttype = inp.type.tensor_type
    if ttype.elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16):
        raise NeurocompileError(f"input '{inp.name}' has element type {onnx.TensorProto.DataType.Name(ttype.elem_type)}; a float input is required")
    dims = []
    for k, d in enumerate(ttype.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(d.dim_value)
        elif k == 0:
            dims.append(1)  # symbolic batch: samples run one at a time per batch row
        else:
            label = d.dim_param or "?"
            raise NeurocompileError(f"input '{inp.name}' has a dynamic dimension '{label}' at axis {k}; re-export with a static shape")
    if len(dims) < 2 or dims[0] != 1:
        raise NeurocompileError(f"input '{inp.name}' has shape {dims}; a leading batch dimension (1 or symbolic) is required")
    if math.prod(dims) > TENSOR_ELEMENTS_MAX:
        raise NeurocompileError(f"input '{inp.name}' of shape {dims} would hold {math.prod(dims):.3g} neurons; the limit is {TENSOR_ELEMENTS_MAX:.3g}")
    return inp.name, tuple(dims)


def _check_finite(node: onnx.NodeProto, value) -> None:
    """NaN or inf enters a network through a constant (a Constant node, or one folded from
    others: a division by zero); refused where it enters, with the node."""
    consts = [value] if isinstance(value, np.ndarray) else []
    if isinstance(value, Affine):  # its offset, and each term's newest op (the earlier ones were checked where they were added)
        newest = [t.ops[-1] for t in value.terms if t.ops and not isinstance(t.ops[-1], Gather)]
        consts = [value.offset] + [op.w if isinstance(op, Scale) else op.kernel.weight for op in newest]
    for c in consts:
        arr = np.asarray(c)
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            raise NeurocompileError(f"{describe(node)}: its result holds NaN or inf (from a constant that is or becomes non-finite)")


def onnx_to_ir(path: str | Path, encoding: str = "current", max_fan_in: int | None = None, relay_sums: int | None = None) -> Network:
    """The lowered, validated IR of an ONNX model. With `max_fan_in` (a core's fan-in axons),
    linear chains whose composition would exceed it keep a relay population
    (Context.apply_kernel); with `relay_sums`, so do sums of that many populations or more
    (Context.relay_sum)."""
    net, chains = convert(path, encoding, max_fan_in, relay_sums)
    lower_linear_chains(net, chains)
    net.validate()
    return net


def convert(path: str | Path, encoding: str = "current", max_fan_in: int | None = None,
            relay_sums: int | None = None) -> tuple[Network, dict[str, Term]]:
    """The IR before lowering: its synapse blocks have no kernel yet, and `chains` holds each
    block's linear ops (they evaluate on their own: the tests compare them with onnxruntime)."""
    model = load_model(path)
    opset = model_opset(model)
    graph = model.graph
    for k, node in enumerate(graph.node):
        if not isinstance(node.name, str):  # protobuf hands over what is not UTF-8 as bytes
            raise NeurocompileError(f"node #{k} ({node.op_type}): its name is not valid UTF-8")
        if node.domain not in ("", "ai.onnx"):
            raise NeurocompileError(f"{describe(node)} is in domain '{node.domain}'; only standard ONNX ops are supported")
    values: dict[str, Value] = dict(_initializers(model))
    input_name, input_shape = _input_spec(model, values)
    if len(graph.output) != 1:
        raise NeurocompileError(f"model must have exactly one output, has {len(graph.output)}")

    net = Network()
    ctx = Context(net, opset, max_fan_in, relay_sums)
    inp = InputPopulation(name=net.unique_name(re.sub(r"[^A-Za-z0-9_.-]+", "_", input_name) or "input"), shape=input_shape, encoding=encoding, origin=f"graph input '{input_name}'")
    net.add(inp)
    values[input_name] = Affine.of_population(inp.name, input_shape)

    nodes = fused(graph, values)
    ctx.mask_names = mask_names(nodes)
    out_name = graph.output[0].name
    # A tensor's value is dropped after the last node that reads it: a Swin-T's intermediate
    # index maps and constants would otherwise all stay alive until the end.
    last_read = {name: k for k, node in enumerate(nodes) for name in node.input if name}
    for k, node in enumerate(nodes):
        handler = handler_for(node, opset)
        args = []
        for name in node.input:
            if name == "":
                args.append(None)
            elif name not in values:
                raise NeurocompileError(f"{describe(node)} reads tensor '{name}' that nothing produces")
            else:
                args.append(values[name])
        try:
            with np.errstate(all="ignore"):  # a division by zero becomes inf, named below, not a warning
                outs = handler(ctx, node, args)
        except NeurocompileError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError, OverflowError) as e:
            # Handlers check what converted networks contain; anything else malformed (shapes
            # that do not broadcast, attributes out of range, ...) still ends here, named.
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise NeurocompileError(f"{describe(node)}: cannot convert its inputs ({detail})") from None
        for name, value in zip(node.output, outs):
            if name:
                # numpy turns 0-d results into scalars; a constant is always an ndarray here.
                values[name] = value if value is None or isinstance(value, (Affine, RandomValue)) else np.asarray(value)
                _check_finite(node, values[name])
        for name in node.input:
            if name and name != out_name and last_read.get(name) == k:
                values.pop(name, None)

    result = values.get(out_name)
    if result is None or is_const(result):
        raise NeurocompileError(f"model output '{out_name}' does not depend on the input")
    readout_node = onnx.helper.make_node("Identity", [out_name], [out_name], name=re.sub(r"[^A-Za-z0-9_.-]+", "_", out_name) or "output")
    ctx.to_population(result, readout_node, lambda name, shape, bias: Readout(name=name, shape=shape, bias=bias))
    net.meta.update(
        input_name=input_name,
        input_shape=list(input_shape[1:]),
        output_name=out_name,
        output_shape=list(result.shape[1:]),
        opset=opset,
    )
    return net, ctx.chains
