"""Fuzzing with 400 mutated ONNX files and 700 mutated artifacts: whatever the mutation, the
compiler builds, or loads and runs, or stops with its own one-line error; no other exception and
no warning escapes."""

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from neurocompile.compiler import BuildOptions, compile_network
from neurocompile.errors import NeurocompileError
from neurocompile.targets import load_target

from conftest import GRAPHS

TARGET = load_target("loihi2-sim")
OPS = ["MatMul", "Add", "Mul", "Div", "Relu", "Clip", "Floor", "Softmax", "Reshape", "Transpose", "Concat", "Gemm", "Conv", "MaxPool",
       "RandomUniformLike", "Greater", "Cast", "LayerNormalization", "Nonsense"]


def _seed_model() -> onnx.ModelProto:
    """x [1, 4, 8] -> QCFS(x W) -> masked -> (q k^T) softmax -> LayerNorm: most handler families."""
    consts = {"up": 1.0, "L": 8.0, "half": 0.5, "zero": 0.0, "one": 1.0, "r": 0.5}
    inits = [numpy_helper.from_array(np.array(v, np.float32), k) for k, v in consts.items()]
    rng = np.random.default_rng(0)
    inits += [numpy_helper.from_array(rng.normal(0, 0.5, (8, 8)).astype(np.float32), n) for n in ("Wq", "Wk")]
    inits += [numpy_helper.from_array(np.ones(4, np.float32), "g"), numpy_helper.from_array(np.zeros(4, np.float32), "b")]
    nodes = []
    for t in ("q", "k"):
        chain = [("MatMul", ["x", f"W{t}"], f"{t}0"), ("Div", [f"{t}0", "up"], f"{t}1"), ("Mul", [f"{t}1", "L"], f"{t}2"), ("Add", [f"{t}2", "half"], f"{t}3"),
                 ("Floor", [f"{t}3"], f"{t}4"), ("Div", [f"{t}4", "L"], f"{t}5"), ("Clip", [f"{t}5", "zero", "one"], f"{t}6"), ("Mul", [f"{t}6", "up"], t)]
        nodes += [helper.make_node(op, ins, [out], name=f"{t}/{op}_{k}") for k, (op, ins, out) in enumerate(chain)]
    nodes += [
        helper.make_node("RandomUniformLike", ["q"], ["u"], name="q_mask/RandomUniformLike"), helper.make_node("Greater", ["u", "r"], ["keep"]),
        helper.make_node("Cast", ["keep"], ["keepf"], to=TensorProto.FLOAT), helper.make_node("Mul", ["q", "keepf"], ["qm"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]), helper.make_node("MatMul", ["qm", "kt"], ["s"]),
        helper.make_node("Softmax", ["s"], ["p"], axis=-1), helper.make_node("LayerNormalization", ["p", "g", "b"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(nodes, "seed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


SEED = _seed_model()
SEED_BYTES = SEED.SerializeToString()


def _mutate(model: onnx.ModelProto, data) -> bytes:
    g = model.graph
    kind = data.draw(st.sampled_from(["op", "drop", "input", "init", "dims", "attr", "bytes", "truncate"]))
    if kind == "bytes":
        raw = bytearray(SEED_BYTES)
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        return bytes(raw)
    if kind == "truncate":
        return SEED_BYTES[: data.draw(st.integers(0, len(SEED_BYTES) - 1))]
    node = g.node[data.draw(st.integers(0, len(g.node) - 1))]
    if kind == "op":
        node.op_type = data.draw(st.sampled_from(OPS))
    elif kind == "drop":
        g.node.remove(node)
    elif kind == "input" and node.input:
        names = [v for n in g.node for v in n.output] + [i.name for i in g.initializer] + ["x", "", "ghost"]
        node.input[data.draw(st.integers(0, len(node.input) - 1))] = data.draw(st.sampled_from(names))
    elif kind == "init":
        init = g.initializer[data.draw(st.integers(0, len(g.initializer) - 1))]
        shape = data.draw(st.lists(st.integers(0, 5), min_size=0, max_size=3))
        fill = data.draw(st.sampled_from([0.0, -1.0, 1e30, float("nan"), float("inf"), 2.0]))
        init.CopyFrom(numpy_helper.from_array(np.full(shape, fill, np.float32), init.name))
    elif kind == "dims":
        dim = g.input[0].type.tensor_type.shape.dim[data.draw(st.integers(0, 2))]
        choice = data.draw(st.sampled_from(["zero", "neg", "sym", "big"]))
        if choice == "sym":
            dim.dim_param = "n"
        else:
            dim.dim_value = {"zero": 0, "neg": -3, "big": 1 << 12}[choice]
    elif kind == "attr" and node.attribute:
        attr = node.attribute[data.draw(st.integers(0, len(node.attribute) - 1))]
        if attr.type == onnx.AttributeProto.INT:
            attr.i = data.draw(st.integers(-5, 40))
        elif attr.type == onnx.AttributeProto.INTS:
            attr.ints[:] = data.draw(st.lists(st.integers(-3, 3), max_size=4))
        elif attr.type == onnx.AttributeProto.FLOAT:
            attr.f = data.draw(st.sampled_from([0.0, -1.0, float("nan")]))
    return model.SerializeToString()


def test_the_seed_model_builds():
    # Otherwise every mutation would fail for the same reason and the fuzzing would test little.
    compile_network_from_bytes(SEED_BYTES)


def compile_network_from_bytes(raw: bytes, tmp=None):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.onnx"
        path.write_bytes(raw)
        return compile_network(path, TARGET, BuildOptions(input_range=2.0))


@pytest.mark.filterwarnings("error::RuntimeWarning")
@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_models_fail_only_with_the_projects_error(data):
    model = onnx.ModelProto()
    model.CopyFrom(SEED)
    raw = SEED_BYTES
    for _ in range(data.draw(st.integers(1, 3))):
        raw = _mutate(model, data)
        if raw is not None and not raw == model.SerializeToString():
            break  # a byte-level mutation: the proto is no longer the thing mutated
    try:
        compile_network_from_bytes(raw)
    except NeurocompileError as e:
        assert str(e) and "\n" not in str(e)


# Mutated artifacts: a file edited and its manifest hash recomputed (what the hashes alone cannot
# catch), then loaded and, when the load accepts it, simulated. Whatever the edit, the result is
# a run or the project's one-line error.
ODD_VALUES = [-1, 0, 1, 7, 2**40, -(2**63), 1e308, float("nan"), float("inf"), 0.5, "x", "", None, True, [], {}, [1, 2]]


@pytest.fixture(scope="module")
def base_artifact(tmp_path_factory):
    from neurocompile.compiler import build

    path, _ = build(GRAPHS / "digits_mlp.onnx", tmp_path_factory.mktemp("fuzz") / "m.ncx", BuildOptions())
    return path


def _leaves(doc, path=()):
    """Every (path, value) below a JSON document, containers included."""
    yield path, doc
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        yield from _leaves(v, path + (k,))


def _mutate_json(doc, data):
    paths = [p for p, _ in _leaves(doc) if p]
    path = data.draw(st.sampled_from(paths))
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if isinstance(parent, dict) and data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(st.sampled_from(ODD_VALUES))
    return doc


def _mutate_arrays(arrays, data):
    name = data.draw(st.sampled_from(sorted(arrays)))
    a = arrays[name]
    how = data.draw(st.sampled_from(["float", "shorter", "huge", "nan", "empty", "2d"]))
    if how == "float":
        arrays[name] = a.astype(np.float64) + 0.5
    elif how == "shorter":
        arrays[name] = a.ravel()[: max(0, a.size - 1)]
    elif how == "huge":
        arrays[name] = np.full(a.shape, 2**40 if a.dtype.kind in "iu" else 1e30, dtype=np.int64 if a.dtype.kind in "iu" else np.float64)
    elif how == "nan":
        arrays[name] = np.full(a.shape, np.nan)
    elif how == "empty":
        arrays[name] = np.zeros((0,), a.dtype)
    else:
        arrays[name] = a.reshape(1, -1)
    return arrays


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a warning is a line of noise the user did not ask for
@settings(max_examples=700, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_artifacts_fail_only_with_the_projects_error(base_artifact, tmp_path_factory, data):
    import hashlib
    import io
    import json
    import shutil

    from neurocompile.backends.sim import Simulator
    from neurocompile.compiler.artifact import load_artifact

    path = tmp_path_factory.mktemp("mutant") / "m.ncx"
    shutil.copytree(base_artifact, path)
    name = data.draw(st.sampled_from(["graph.json", "graph.json", "graph.json", "params.npz", "placement.json", "report.json", "manifest.json"]))
    if name == "params.npz":
        with np.load(path / name, allow_pickle=False) as z:
            arrays = _mutate_arrays({k: z[k] for k in z.files}, data)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        (path / name).write_bytes(buf.getvalue())
    else:
        (path / name).write_text(json.dumps(_mutate_json(json.loads((path / name).read_text()), data)))
    if name != "manifest.json":
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["files"][name] = hashlib.sha256((path / name).read_bytes()).hexdigest()
        (path / "manifest.json").write_text(json.dumps(manifest))
    try:
        art = load_artifact(path)
        x = np.load(GRAPHS / "digits_test_x.npy")[:1].astype(np.float64)
        Simulator(art.net, art.target.numerics).run(x, 3)
    except NeurocompileError as e:
        assert str(e) and "\n" not in str(e)
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)
