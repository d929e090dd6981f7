"""Small ONNX models for frontend tests, and the two ways of running them.

Every model is built with onnx.helper at IR version 8 (onnxruntime 1.23 rejects newer IR versions),
one float input named "x" and one output named "y". `run_ort` is the reference; `ir_outputs`
converts the model and evaluates the IR in ANN mode before and after `lower_linear_chains`.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from neurocompile.frontend.convert import convert as convert_unlowered
from neurocompile.frontend.lower import lower_linear_chains
from neurocompile.ir.graph import Network
from neurocompile.ir.interpret import evaluate

IR_VERSION = 8
RTOL = ATOL = 1e-5

_names = itertools.count()


def node(op_type: str, inputs: Sequence[str], outputs: Sequence[str] | str, name: str | None = None, **attrs) -> onnx.NodeProto:
    """helper.make_node with a default name ("<Op>_<k>") and a single output given as a string."""
    outputs = [outputs] if isinstance(outputs, str) else list(outputs)
    return helper.make_node(op_type, list(inputs), outputs, name=name or f"{op_type}_{next(_names)}", **attrs)


def const_node(name: str, value) -> onnx.NodeProto:
    """A Constant node producing `value` (dtype kept: use np.int64 arrays for shapes and axes)."""
    return helper.make_node("Constant", [], [name], name=f"Constant_{name}", value=numpy_helper.from_array(np.asarray(value), name))


def i64(*values) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def rand(shape, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def make_model(
    path: str | Path,
    nodes: Iterable[onnx.NodeProto],
    input_shape: Sequence[int | str] | None,
    inits: dict[str, np.ndarray] | None = None,
    *,
    opset: int = 17,
    input_name: str = "x",
    input_type: int = TensorProto.FLOAT,
    output_name: str = "y",
    extra_inputs: Sequence[onnx.ValueInfoProto] = (),
    extra_outputs: Sequence[str] = (),
    ir_version: int = IR_VERSION,
    output_shape: Sequence[int | str] | None = None,
    check: bool = True,
) -> Path:
    """Saves a one-input one-output model (shapes of the output left to inference).

    `input_shape` entries may be strings (symbolic dimensions); None gives an input of unknown rank.
    `inits` become initializers (numpy dtypes kept). Output types come from ONNX shape inference
    (the checker wants them); `output_shape` gives the first output's shape where inference cannot."""
    inits = inits or {}
    graph = helper.make_graph(
        list(nodes),
        "g",
        [helper.make_tensor_value_info(input_name, input_type, None if input_shape is None else list(input_shape)), *extra_inputs],
        [helper.make_empty_tensor_value_info(n) for n in (output_name, *extra_outputs)],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version)
    _type_outputs(model, output_shape)
    if check:
        onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def _type_outputs(model: onnx.ModelProto, output_shape) -> None:
    """Fills the graph outputs' types from shape inference (or `output_shape` for the first)."""
    try:
        inferred = {o.name: o.type for o in onnx.shape_inference.infer_shapes(model).graph.output}
    except Exception:
        inferred = {}
    for k, out in enumerate(model.graph.output):
        if k == 0 and output_shape is not None:
            out.type.CopyFrom(helper.make_tensor_type_proto(TensorProto.FLOAT, list(output_shape)))
        elif out.name in inferred and inferred[out.name].HasField("tensor_type"):
            out.type.CopyFrom(inferred[out.name])
        else:
            out.type.CopyFrom(helper.make_tensor_type_proto(TensorProto.FLOAT, None))


def single_op_model(
    path: str | Path,
    op_type: str,
    input_shape: Sequence[int | str],
    inits: dict[str, np.ndarray] | None = None,
    attrs: dict | None = None,
    *,
    inputs: Sequence[str] | None = None,
    extra_nodes: Sequence[onnx.NodeProto] = (),
    opset: int = 17,
) -> Path:
    """x -> op_type(x, *inits) -> y. With `inputs`, the op reads those names instead (use "" for an
    omitted optional input). With `extra_nodes`, the op writes "t" and the extra nodes must turn
    "t" into "y"."""
    inits = inits or {}
    op_inputs = list(inputs) if inputs is not None else ["x", *inits]
    out = "t" if extra_nodes else "y"
    nodes = [node(op_type, op_inputs, out, **(attrs or {})), *extra_nodes]
    return make_model(path, nodes, input_shape, inits, opset=opset)


def input_shape_of(path: str | Path, batch: int = 1) -> tuple[tuple[int, ...], bool]:
    """(the input shape with the batch dimension set to `batch`, whether the batch is symbolic)."""
    model = onnx.load(str(path))
    (inp,) = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    dims = inp.type.tensor_type.shape.dim
    symbolic = not dims[0].HasField("dim_value")
    return (batch,) + tuple(d.dim_value for d in dims[1:]), symbolic


def run_ort(path: str | Path, x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """onnxruntime on x [B, ...]: ([B, n_out] flat, the output shape of one sample's run).

    A model with a symbolic batch dimension runs on the whole batch at once; a model with batch 1
    runs once per sample."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    _, symbolic = input_shape_of(path)
    if symbolic:
        (y,) = sess.run(None, {name: x})
        one = sess.run(None, {name: x[:1]})[0].shape
        return y.reshape(x.shape[0], -1).astype(np.float64), one
    ys = [sess.run(None, {name: x[k: k + 1]})[0] for k in range(x.shape[0])]
    return np.stack([y.ravel() for y in ys]).astype(np.float64), ys[0].shape


def convert(path: str | Path, x: np.ndarray) -> tuple[Network, np.ndarray, np.ndarray]:
    """(the lowered network, ANN-mode output before lowering, after lowering), outputs [B, n_out].
    Before lowering, each block is evaluated through its frontend chain."""
    net, chains = convert_unlowered(path)

    def through_chain(block, values):
        source = net.source_of(block)
        return chains[block.name].evaluate(values.reshape((values.shape[0],) + source.shape)).reshape(values.shape[0], -1)

    before = evaluate(net, x, apply=through_chain)["post"][net.readout.name]
    lower_linear_chains(net, chains)
    net.validate()
    after = evaluate(net, x)["post"][net.readout.name]
    return net, before, after


def ir_outputs(path: str | Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, before, after = convert(path, x)
    return before, after


def check_model(path: str | Path, x: np.ndarray | None = None, *, batch: int = 2, seed: int = 0, scale: float = 1.0) -> Network:
    """Asserts that the IR matches onnxruntime before and after lowering, and that the IR's output
    shape is ORT's; returns the lowered network for further checks."""
    if x is None:
        shape, _ = input_shape_of(path, batch)
        x = rand(shape, seed, scale)
    expected, one_shape = run_ort(path, x)
    net, before, after = convert(path, x)
    np.testing.assert_allclose(before, expected, rtol=RTOL, atol=ATOL, err_msg="IR before lowering differs from onnxruntime")
    np.testing.assert_allclose(after, expected, rtol=RTOL, atol=ATOL, err_msg="IR after lowering differs from onnxruntime")
    assert net.meta["output_shape"] == list(one_shape[1:]), f"IR output shape {net.meta['output_shape']} != ORT {list(one_shape[1:])}"
    return net


def kernel_kinds(net: Network) -> list[str]:
    return [b.kernel.kind for b in net.synapses()]


ATTENTION_TOKENS, ATTENTION_WIDTH = 4, 8


def _qcfs(inp: str, out: str, tag: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """The QCFS pattern with threshold 1 (constants L, half, zero, one shared by the model)."""
    names = [f"{tag}_{k}" for k in "dmafqc"]
    nodes = [
        helper.make_node("Div", [inp, f"up_{tag}"], [names[0]]), helper.make_node("Mul", [names[0], "L"], [names[1]]),
        helper.make_node("Add", [names[1], "half"], [names[2]]), helper.make_node("Floor", [names[2]], [names[3]]),
        helper.make_node("Div", [names[3], "L"], [names[4]]), helper.make_node("Clip", [names[4], "zero", "one"], [names[5]]),
        helper.make_node("Mul", [names[5], f"up_{tag}"], [out]),
    ]
    return nodes, [numpy_helper.from_array(np.array(1.0, np.float32), f"up_{tag}")]


def spike_projections(tags: str, rng: np.random.Generator, mean: float = 0.0) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """x [1, tokens, width] -> QCFS(x W_t) named t, for each tag t: the spike tensors of attention."""
    consts = {"L": 8.0, "half": 0.5, "zero": 0.0, "one": 1.0}
    inits = [numpy_helper.from_array(np.array(v, np.float32), k) for k, v in consts.items()]
    nodes = []
    for t in tags:
        inits.append(numpy_helper.from_array(rng.normal(mean, 0.5, (ATTENTION_WIDTH, ATTENTION_WIDTH)).astype(np.float32), f"W{t}"))
        nodes.append(helper.make_node("MatMul", ["x", f"W{t}"], [f"{t}_pre"]))
        n, i = _qcfs(f"{t}_pre", t, t)
        nodes, inits = nodes + n, inits + i
    return nodes, inits


def save_spike_model(path: Path, nodes, inits, output_shape: Sequence[int]) -> Path:
    """A model of input x [1, tokens, width] and output y, at IR version 8 and opset 17."""
    graph = helper.make_graph(nodes, path.stem, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, ATTENTION_TOKENS, ATTENTION_WIDTH])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(output_shape))], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=IR_VERSION), path)
    return path


def attention_onnx(path: Path) -> Path:
    """x -> QCFS(x Wq), QCFS(x Wk), QCFS(x Wv); softmax(q k^T / sqrt(d) + bias) v -> LayerNorm."""
    rng = np.random.default_rng(0)
    tokens, width = ATTENTION_TOKENS, ATTENTION_WIDTH
    nodes, inits = spike_projections("qkv", rng)
    inits += [numpy_helper.from_array(np.array(width**-0.5, np.float32), "s"),
              numpy_helper.from_array(rng.normal(0, 0.3, (1, tokens, tokens)).astype(np.float32), "bias"),
              numpy_helper.from_array(np.full(width, 1.5, np.float32), "g"), numpy_helper.from_array(np.full(width, 0.1, np.float32), "b")]
    nodes += [
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]), helper.make_node("MatMul", ["q", "kt"], ["qk"]),
        helper.make_node("Mul", ["qk", "s"], ["qks"]), helper.make_node("Add", ["qks", "bias"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["attn"], axis=-1), helper.make_node("MatMul", ["attn", "v"], ["av"]),
        helper.make_node("LayerNormalization", ["av", "g", "b"], ["y"], axis=-1, epsilon=1e-5),
    ]
    return save_spike_model(path, nodes, inits, [1, tokens, width])
