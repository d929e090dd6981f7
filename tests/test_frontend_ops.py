"""Per-op tests of the ONNX frontend, in the style of onnx2torch's: one small model per op and
attribute combination, run by onnxruntime and by the IR in ANN mode (before and after
lower_linear_chains), outputs compared. Error cases check that unsupported models are refused
with a NeurocompileError that says why."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from neurocompile.errors import NeurocompileError
from neurocompile.frontend import onnx_to_ir

from onnx_builders import check_model, const_node, f32, i64, kernel_kinds, make_model, node, rand, single_op_model


@pytest.fixture
def path(tmp_path):
    return tmp_path / "model.onnx"


def if_populations(net):
    return [p for p in net.populations() if p.kind == "if"]


# ---------------------------------------------------------------------------------------------
# Conv

CONV_CASES = {
    # id: (in_channels, out_channels, kernel, attrs)
    "k1": (4, 6, (1, 1), {}),
    "k3": (4, 6, (3, 3), {}),
    "k3-pad1": (4, 6, (3, 3), {"pads": [1, 1, 1, 1]}),
    "k3-stride2-pad1": (4, 6, (3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "k2x3-stride2x1-asym-pads": (4, 6, (2, 3), {"strides": [2, 1], "pads": [0, 1, 1, 2]}),
    "k3-asym-pads": (4, 6, (3, 3), {"pads": [2, 0, 0, 1]}),
    "k3-dilation2": (4, 6, (3, 3), {"dilations": [2, 2], "pads": [2, 2, 2, 2]}),
    "k2x3-dilation2x1-stride2": (4, 6, (2, 3), {"dilations": [2, 1], "strides": [2, 2]}),
    "group2": (4, 6, (3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),
    "depthwise": (4, 4, (3, 3), {"group": 4, "pads": [1, 1, 1, 1]}),
    "depthwise-multiplier2-stride2": (4, 8, (3, 3), {"group": 4, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "same-upper-k3-stride2": (4, 6, (3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    "same-upper-k2x3": (4, 6, (2, 3), {"auto_pad": "SAME_UPPER"}),
    "same-lower-k2x3-stride2": (4, 6, (2, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 2]}),
    "valid-k3-stride2": (4, 6, (3, 3), {"auto_pad": "VALID", "strides": [2, 2]}),
}


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv(path, case, bias):
    cin, cout, k, attrs = CONV_CASES[case]
    group = attrs.get("group", 1)
    inits = {"w": rand((cout, cin // group) + k, seed=1)}
    if bias:
        inits["b"] = rand(cout, seed=2)
    single_op_model(path, "Conv", [1, cin, 7, 8], inits, dict(attrs, kernel_shape=list(k)))
    net = check_model(path)
    assert kernel_kinds(net) == ["conv2d"]


def test_conv_symbolic_batch(path):
    single_op_model(path, "Conv", ["batch", 3, 6, 6], {"w": rand((5, 3, 3, 3), 1), "b": rand(5, 2)}, {"pads": [1, 1, 1, 1]})
    check_model(path, batch=4)


def test_conv_then_conv_composes_to_one_block(path):
    """Two kernels in a row (no activation between) compose into one explicit sparse matrix."""
    nodes = [node("Conv", ["x", "w1", "b1"], "h", pads=[1, 1, 1, 1]), node("Conv", ["h", "w2"], "y", strides=[2, 2])]
    make_model(path, nodes, [1, 2, 6, 6], {"w1": rand((3, 2, 3, 3), 1), "b1": rand(3, 2), "w2": rand((4, 3, 2, 2), 3)})
    net = check_model(path)
    assert kernel_kinds(net) == ["sparse"]


# ---------------------------------------------------------------------------------------------
# Gemm and MatMul

@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize(
    "alpha, beta, bias_shape",
    [(1.0, 1.0, (6,)), (1.0, 1.0, (1, 6)), (0.5, 2.0, (6,)), (-1.5, 0.25, (1, 6)), (2.0, 3.0, ()), (1.0, 1.0, None)],
)
def test_gemm(path, trans_b, alpha, beta, bias_shape):
    w = rand((6, 5) if trans_b else (5, 6), 1)
    inits = {"w": w} if bias_shape is None else {"w": w, "c": rand(bias_shape, 2)}
    single_op_model(path, "Gemm", [1, 5], inits, {"transB": trans_b, "alpha": alpha, "beta": beta})
    net = check_model(path, batch=3)
    assert kernel_kinds(net) == ["dense"]


def test_gemm_trans_a(path):
    """transA=1 on a [1, K] input: A^T is [K, 1], so B must have one row."""
    single_op_model(path, "Gemm", [1, 5], {"w": rand((1, 3), 1), "c": rand(3, 2)}, {"transA": 1})
    check_model(path)


def test_gemm_symbolic_batch(path):
    single_op_model(path, "Gemm", ["N", 5], {"w": rand((4, 5), 1), "c": rand(4, 2)}, {"transB": 1})
    check_model(path, batch=5)


@pytest.mark.parametrize(
    "input_shape, w_shape",
    [([1, 6], (6, 4)), ([1, 5, 6], (6, 3)), ([1, 2, 5, 6], (6, 3)), ([1, 5, 6], (1, 6, 3))],
    ids=["2d", "tokens-3d", "4d", "3d-const-with-unit-batch"],
)
def test_matmul_constant_right(path, input_shape, w_shape):
    single_op_model(path, "MatMul", input_shape, {"w": rand(w_shape, 1)})
    net = check_model(path)
    assert kernel_kinds(net) == ["dense"]


def test_matmul_constant_right_keeps_rank_of_broadcast_result(path):
    """[1, 6] @ [1, 6, 3] is [1, 1, 3] in ONNX (numpy matmul broadcasting)."""
    single_op_model(path, "MatMul", [1, 6], {"w": rand((1, 6, 3), 1)})
    check_model(path)


def test_matmul_constant_right_vector(path):
    """x [1, T, C] @ w [C]: ONNX drops the appended axis, the result is [1, T]; an Add of a [T]
    constant then broadcasts to [1, T] (not [1, T, T])."""
    nodes = [node("MatMul", ["x", "w"], "t"), node("Add", ["t", "c"], "y")]
    make_model(path, nodes, [1, 4, 6], {"w": rand(6, 1), "c": rand(4, 2)})
    check_model(path)


@pytest.mark.parametrize("input_shape, a_shape", [([1, 5, 6], (3, 5)), ([1, 2, 5, 6], (4, 5)), ([1, 6], (3, 1))], ids=["3d", "4d", "2d"])
def test_matmul_constant_left(path, input_shape, a_shape):
    single_op_model(path, "MatMul", input_shape, {"a": rand(a_shape, 1)}, inputs=["a", "x"])
    check_model(path)


def test_matmul_token_wise_then_mix_tokens(path):
    """A Linear on channels then one on tokens: two kernels, composed into one sparse block."""
    nodes = [node("MatMul", ["x", "w"], "h"), node("MatMul", ["a", "h"], "y")]
    make_model(path, nodes, [1, 5, 6], {"w": rand((6, 3), 1), "a": rand((2, 5), 2)})
    check_model(path)


# ---------------------------------------------------------------------------------------------
# BatchNormalization

def bn_inits(c: int, seed: int = 10) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "gamma": f32(rng.uniform(0.5, 2.0, c)),
        "beta": f32(rng.normal(size=c)),
        "mean": f32(rng.normal(size=c)),
        "var": f32(rng.uniform(0.1, 3.0, c)),
    }


@pytest.mark.parametrize("epsilon", [1e-5, 0.1])
@pytest.mark.parametrize("input_shape", [[1, 4, 5, 5], [1, 4], [1, 4, 7]], ids=["4d", "2d", "3d"])
def test_batchnorm_on_input(path, input_shape, epsilon):
    single_op_model(path, "BatchNormalization", input_shape, bn_inits(4), {"epsilon": epsilon})
    check_model(path)


@pytest.mark.parametrize("epsilon", [1e-5, 0.1])
def test_conv_batchnorm_folds_into_conv(path, epsilon):
    nodes = [node("Conv", ["x", "w", "b"], "h", pads=[1, 1, 1, 1]), node("BatchNormalization", ["h", "gamma", "beta", "mean", "var"], "y", epsilon=epsilon)]
    make_model(path, nodes, [1, 3, 6, 6], {"w": rand((4, 3, 3, 3), 1), "b": rand(4, 2), **bn_inits(4)})
    net = check_model(path)
    assert kernel_kinds(net) == ["conv2d"]


def test_gemm_batchnorm_folds_into_dense(path):
    nodes = [node("Gemm", ["x", "w", "b"], "h", transB=1), node("BatchNormalization", ["h", "gamma", "beta", "mean", "var"], "y", epsilon=1e-3)]
    make_model(path, nodes, [1, 6], {"w": rand((4, 6), 1), "b": rand(4, 2), **bn_inits(4)})
    net = check_model(path)
    assert kernel_kinds(net) == ["dense"]


def test_batchnorm_then_conv_folds_into_conv(path):
    """BatchNorm before a conv: the per-channel scale folds into the input side of the weights."""
    nodes = [node("BatchNormalization", ["x", "gamma", "beta", "mean", "var"], "h"), node("Conv", ["h", "w"], "y", pads=[1, 1, 1, 1])]
    make_model(path, nodes, [1, 4, 5, 5], {"w": rand((3, 4, 3, 3), 1), **bn_inits(4)})
    net = check_model(path)
    assert kernel_kinds(net) == ["conv2d"]


# ---------------------------------------------------------------------------------------------
# Pooling and reductions

@pytest.mark.parametrize(
    "attrs",
    [
        {"kernel_shape": [2, 2], "strides": [2, 2]},
        {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1], "count_include_pad": 0},
        {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1], "count_include_pad": 1},
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 0},
        {"kernel_shape": [2, 3], "strides": [1, 2], "pads": [0, 1, 1, 0], "count_include_pad": 0},
        {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]},
        {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1},  # no effect on 6x6: same size
    ],
    ids=["k2s2", "k3s1p1-exclude-pad", "k3s1p1-include-pad", "k3s2p1-exclude-pad", "k2x3-asym", "same-upper", "ceil-no-effect"],
)
def test_average_pool(path, attrs):
    single_op_model(path, "AveragePool", [1, 3, 6, 6], attrs=attrs)
    check_model(path)


def test_average_pool_dilations_opset19(path):
    single_op_model(path, "AveragePool", [1, 2, 7, 7], attrs={"kernel_shape": [2, 2], "dilations": [2, 2]}, opset=19)
    check_model(path)


def test_global_average_pool(path):
    single_op_model(path, "GlobalAveragePool", [1, 3, 5, 4])
    check_model(path)


def test_global_average_pool_flatten_gemm_is_one_dense_block(path):
    nodes = [node("GlobalAveragePool", ["x"], "p"), node("Flatten", ["p"], "f"), node("Gemm", ["f", "w", "b"], "y", transB=1)]
    make_model(path, nodes, [1, 3, 4, 4], {"w": rand((5, 3), 1), "b": rand(5, 2)})
    net = check_model(path)
    assert kernel_kinds(net) == ["dense"]


@pytest.mark.parametrize(
    "size, pool_attrs, conv_attrs, merged",
    [
        (6, {}, {"pads": [1, 1, 1, 1]}, True),
        (6, {"pads": [1, 1, 1, 1], "count_include_pad": 1}, {"pads": [1, 1, 1, 1]}, True),
        (8, {}, {"pads": [1, 0, 0, 1], "strides": [2, 2]}, True),
        # Edge windows divide by fewer elements: not a uniform pool, composed as a sparse matrix.
        (6, {"pads": [1, 1, 1, 1], "count_include_pad": 0}, {"pads": [1, 1, 1, 1]}, False),
        # The last input row is outside every window: the merged conv would read it.
        (7, {}, {"pads": [1, 1, 1, 1]}, False),
    ],
    ids=["plain", "padded-include-pad", "strided-asym-conv", "padded-exclude-pad", "odd-size"],
)
def test_average_pool_then_conv(path, size, pool_attrs, conv_attrs, merged):
    """A non-overlapping pool followed by a conv lowers to one strided conv where that is exact."""
    nodes = [node("AveragePool", ["x"], "p", kernel_shape=[2, 2], strides=[2, 2], **pool_attrs), node("Conv", ["p", "w", "b"], "y", **conv_attrs)]
    make_model(path, nodes, [1, 3, size, size], {"w": rand((4, 3, 3, 3), 1), "b": rand(4, 2)})
    net = check_model(path)
    assert kernel_kinds(net) == (["conv2d"] if merged else ["sparse"])


def test_depthwise_nonoverlapping_conv_then_conv_merges(path):
    nodes = [node("Conv", ["x", "w1"], "a", group=3, strides=[2, 2]), node("Conv", ["a", "w2"], "y", pads=[1, 1, 1, 1])]
    make_model(path, nodes, [1, 3, 6, 6], {"w1": rand((3, 1, 2, 2), 1), "w2": rand((4, 3, 3, 3), 2)})
    net = check_model(path)
    assert kernel_kinds(net) == ["conv2d"]


def test_conv_flatten_gemm_is_one_dense_block(path):
    nodes = [node("Conv", ["x", "w1", "b1"], "a"), node("Flatten", ["a"], "f"), node("Gemm", ["f", "w2", "b2"], "y", transB=1)]
    make_model(path, nodes, [1, 2, 4, 4], {"w1": rand((3, 2, 3, 3), 1), "b1": rand(3, 2), "w2": rand((5, 12), 3), "b2": rand(5, 4)})
    net = check_model(path)
    assert kernel_kinds(net) == ["dense"]


def test_average_pool_batchnorm_conv(path):
    nodes = [
        node("AveragePool", ["x"], "p", kernel_shape=[2, 2], strides=[2, 2]),
        node("BatchNormalization", ["p", "gamma", "beta", "mean", "var"], "q"),
        node("Conv", ["q", "w"], "y", pads=[1, 1, 1, 1]),
    ]
    make_model(path, nodes, [1, 4, 6, 6], {"w": rand((2, 4, 3, 3), 1), **bn_inits(4)})
    check_model(path)


@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("axes", [[2, 3], [-1], [1], [1, 3]])
def test_reduce_mean_opset17_attribute(path, axes, keepdims):
    single_op_model(path, "ReduceMean", [1, 3, 4, 5], attrs={"axes": axes, "keepdims": keepdims})
    check_model(path)


@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("axes", [[2, 3], [-2]])
def test_reduce_mean_opset18_input(path, axes, keepdims):
    single_op_model(path, "ReduceMean", [1, 3, 4, 5], {"axes": i64(*axes)}, {"keepdims": keepdims}, opset=18)
    check_model(path)


def test_reduce_mean_all_axes(path):
    single_op_model(path, "ReduceMean", [1, 3, 4], attrs={"keepdims": 0})
    check_model(path)


@pytest.mark.parametrize("opset", [13, 18])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_sum_axes_input(path, opset, keepdims):
    single_op_model(path, "ReduceSum", [1, 3, 4, 5], {"axes": i64(1, -1)}, {"keepdims": keepdims}, opset=opset)
    check_model(path)


def test_reduce_sum_noop_with_empty_axes(path):
    # (onnxruntime 1.23 fails on an omitted axes input here; an explicit empty tensor works.)
    nodes = [node("ReduceSum", ["x", "axes"], "t", noop_with_empty_axes=1), node("Mul", ["t", "c"], "y")]
    make_model(path, nodes, [1, 3, 4], {"axes": np.zeros(0, np.int64), "c": f32(2.0)})
    check_model(path)


def test_reduce_sum_explicit_empty_axes_reduces_all(path):
    single_op_model(path, "ReduceSum", [1, 3, 4], {"axes": np.zeros(0, np.int64)}, {"keepdims": 1})
    check_model(path)


# ---------------------------------------------------------------------------------------------
# Layout

@pytest.mark.parametrize(
    "input_shape, target",
    [([1, 3, 4, 5], (1, -1)), ([1, 3, 4, 5], (0, 3, 20)), ([1, 3, 4, 5], (0, -1, 2)), ([1, 12], (1, 2, 3, 2)), ([1, 3, 4, 5], (-1,))],
    ids=["flatten", "zero-keeps-dim", "zero-and-minus-one", "split-dims", "to-1d"],
)
def test_reshape(path, input_shape, target):
    single_op_model(path, "Reshape", input_shape, {"shape": i64(*target)})
    check_model(path)


def test_reshape_transpose_reshape_pixel_shuffle(path):
    """Depth-to-space written with Reshape/Transpose: one index map, an elementwise block."""
    nodes = [
        node("Reshape", ["x", "s1"], "a"),
        node("Transpose", ["a"], "b", perm=[0, 1, 4, 2, 5, 3]),
        node("Reshape", ["b", "s2"], "y"),
    ]
    make_model(path, nodes, [1, 8, 3, 3], {"s1": i64(1, 2, 2, 2, 3, 3), "s2": i64(1, 2, 6, 6)})
    net = check_model(path)
    assert kernel_kinds(net) == ["elementwise"]


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
def test_flatten(path, axis):
    single_op_model(path, "Flatten", [1, 3, 4, 5], attrs={"axis": axis})
    check_model(path)


@pytest.mark.parametrize("perm", [[0, 2, 3, 1], [0, 3, 1, 2], [1, 0, 3, 2], None], ids=str)
def test_transpose(path, perm):
    single_op_model(path, "Transpose", [1, 2, 3, 4], attrs={} if perm is None else {"perm": perm})
    check_model(path)


@pytest.mark.parametrize("axes", [[2], [-1], [2, 4], None], ids=str)
def test_squeeze(path, axes):
    inits = {} if axes is None else {"axes": i64(*axes)}
    single_op_model(path, "Squeeze", [1, 3, 1, 4, 1], inits)
    check_model(path)


@pytest.mark.parametrize("axes", [[1], [-1], [0, 3], [1, -1]], ids=str)
def test_unsqueeze(path, axes):
    single_op_model(path, "Unsqueeze", [1, 3, 4], {"axes": i64(*axes)})
    check_model(path)


SLICE_CASES = {
    # id: (starts, ends, axes or None, steps or None)
    "basic": ([1], [3], [1], None),
    "negative-start-end": ([-3], [-1], [3], None),
    "step2": ([0, 1], [4, 6], [2, 3], [2, 2]),
    "step-minus1-reverse": ([-1], [-1000], [3], [-1]),
    "step-minus2": ([5], [0], [3], [-2]),
    "axes-subset-negative-axis": ([1], [100], [-2], None),
    "no-axes": ([0, 1, 1, 2], [1, 3, 4, 6], None, None),
    "ends-beyond": ([2], [2**62], [1], None),
    "middle-block": ([1, 1], [2, 3], [1, 2], [1, 1]),
}


@pytest.mark.parametrize("case", list(SLICE_CASES))
def test_slice(path, case):
    starts, ends, axes, steps = SLICE_CASES[case]
    inits = {"starts": i64(*starts), "ends": i64(*ends)}
    if axes is not None:
        inits["axes"] = i64(*axes)
    if steps is not None:
        inits["steps"] = i64(*steps)
    single_op_model(path, "Slice", [1, 3, 4, 6], inits)
    check_model(path)


def test_concat_two_branches_of_the_input(path):
    nodes = [
        node("Conv", ["x", "w"], "a"),
        node("Mul", ["x", "s"], "b"),
        node("Concat", ["a", "b"], "y", axis=1),
    ]
    make_model(path, nodes, [1, 2, 4, 4], {"w": rand((3, 2, 1, 1), 1), "s": rand((2, 1, 1), 2)})
    check_model(path)


@pytest.mark.parametrize("axis", [1, 2, -1])
def test_concat_input_with_constant(path, axis):
    shape = [1, 2, 3, 4]
    cshape = list(shape)
    cshape[axis] = 2
    single_op_model(path, "Concat", shape, {"c": rand(cshape, 1)}, {"axis": axis}, inputs=["c", "x", "c"])
    check_model(path)


def test_concat_input_with_itself(path):
    single_op_model(path, "Concat", [1, 3, 2], attrs={"axis": 2}, inputs=["x", "x"])
    check_model(path)


@pytest.mark.parametrize(
    "indices, axis",
    [(np.int64(2), 1), (np.int64(-1), 1), (i64(0, 2, 2), 1), (i64(-1, 0), 3), (np.array([[1, 0], [3, -4]], np.int64), 2), (i64(0), 0)],
    ids=["scalar", "scalar-negative", "vector-repeat", "vector-negative", "matrix", "batch-axis"],
)
def test_gather_constant_indices(path, indices, axis):
    single_op_model(path, "Gather", [1, 3, 4, 5], {"idx": indices}, {"axis": axis})
    check_model(path)


@pytest.mark.parametrize("combine", ["Concat", "Add"])
def test_split_in_two_equal(path, combine):
    # The parts go back in swapped order, so an identity split would fail.
    nodes = [node("Split", ["x"], ["a", "b"], axis=1), node(combine, ["b", "a"], "y", **({"axis": 1} if combine == "Concat" else {}))]
    make_model(path, nodes, [1, 4, 3])
    check_model(path)


def test_split_of_dense_output_prunes_unused_outputs(path):
    """q/k/v-style split of one token-wise Linear, two parts used: each block keeps its rows."""
    nodes = [node("MatMul", ["x", "w"], "h"), node("Split", ["h"], ["q", "k", "v"], axis=-1), node("Add", ["q", "v"], "y")]
    make_model(path, nodes, [1, 5, 4], {"w": rand((4, 9), 1)})
    net = check_model(path)
    assert kernel_kinds(net) == ["dense", "dense"]
    assert all(b.kernel.weight.shape == (3, 4) for b in net.synapses())


@pytest.mark.parametrize(
    "nodes, inits, input_shape",
    [
        ([node("Slice", ["x", "s", "e", "a"], "y")], {"s": i64(0), "e": i64(2), "a": i64(1)}, [1, 4]),
        ([node("Gather", ["x", "i"], "y", axis=1)], {"i": np.int64(0)}, [1, 3, 2]),
        ([node("Mul", ["x", "c"], "h"), node("Slice", ["h", "s", "e", "a"], "y")], {"c": rand(4, 1), "s": i64(0), "e": i64(2), "a": i64(1)}, [1, 4]),
        ([node("Conv", ["x", "w"], "h"), node("Slice", ["h", "s", "e", "a"], "y")], {"w": rand((4, 2, 1, 1), 1), "s": i64(0), "e": i64(2), "a": i64(1)}, [1, 2, 3, 3]),
    ],
    ids=["slice-first-half", "gather-first-row", "scale-then-slice", "conv-then-first-channels"],
)
def test_leading_block_selection(path, nodes, inits, input_shape):
    make_model(path, nodes, input_shape, inits)
    check_model(path)


def test_concat_input_with_conv_of_input_then_conv(path):
    """DenseNet-style: Conv(Concat(x, Conv(x))), one block per path from the input."""
    nodes = [node("Conv", ["x", "w1"], "a", pads=[1, 1, 1, 1]), node("Concat", ["x", "a"], "c", axis=1), node("Conv", ["c", "w2", "b2"], "y")]
    make_model(path, nodes, [1, 2, 4, 4], {"w1": rand((3, 2, 3, 3), 1), "w2": rand((4, 5, 1, 1), 2), "b2": rand(4, 3)})
    net = check_model(path)
    assert sorted(kernel_kinds(net)) == ["conv2d", "sparse"]


def test_split_sizes_input_into_three(path):
    nodes = [
        node("Split", ["x", "sizes"], ["a", "b", "c"], axis=-1),
        node("Concat", ["c", "a", "b"], "y", axis=-1),
    ]
    make_model(path, nodes, [1, 2, 7], {"sizes": i64(1, 2, 4)})
    check_model(path)


def test_split_three_parts_add(path):
    nodes = [node("Split", ["x"], ["a", "b", "c"], axis=2), node("Add", ["a", "b"], "ab"), node("Sub", ["ab", "c"], "y")]
    make_model(path, nodes, [1, 2, 6])
    check_model(path)


def test_split_num_outputs_opset18_uneven(path):
    """Opset 18: num_outputs=3 on an axis of 7 gives parts of 3, 3 and 1."""
    nodes = [node("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3), node("Concat", ["c", "b", "a"], "y", axis=1)]
    make_model(path, nodes, [1, 7, 2], opset=18)
    check_model(path)


@pytest.mark.parametrize(
    "input_shape, target",
    [([1, 3, 1], (1, 3, 4)), ([1, 3, 1], (3, 5)), ([1, 1, 4], (2, 3, 1, 1)), ([1, 3], (1,))],
    ids=["last-axis", "lower-rank-target", "higher-rank-target", "no-op"],
)
def test_expand(path, input_shape, target):
    single_op_model(path, "Expand", input_shape, {"shape": i64(*target)})
    check_model(path)


@pytest.mark.parametrize(
    "pads, with_value",
    [((0, 0, 1, 2, 0, 0, 2, 1), False), ((0, 1, 0, 0, 0, 2, 1, 1), True)],
    ids=["spatial", "channels-explicit-zero"],
)
def test_pad_constant_zero(path, pads, with_value):
    inits = {"pads": i64(*pads)}
    if with_value:
        inits["v"] = f32(0.0)
    single_op_model(path, "Pad", [1, 2, 3, 4], inits, {"mode": "constant"})
    check_model(path)


def test_pad_axes_input_opset18(path):
    single_op_model(path, "Pad", [1, 2, 3, 4], {"pads": i64(1, 0, 2, 3), "v": f32(0.0), "axes": i64(-1, 1)}, opset=18)
    check_model(path)


def test_pad_then_conv(path):
    nodes = [node("Pad", ["x", "pads"], "p"), node("Conv", ["p", "w", "b"], "y")]
    make_model(path, nodes, [1, 2, 4, 4], {"pads": i64(0, 0, 1, 0, 0, 0, 0, 1), "w": rand((3, 2, 2, 2), 1), "b": rand(3, 2)})
    check_model(path)


# ---------------------------------------------------------------------------------------------
# Elementwise arithmetic

CONST_SHAPES = [(), (1,), (5,), (3, 1, 1), (1, 3, 4, 5), (4, 1), (2, 1, 1, 1, 1)]


@pytest.mark.parametrize("const_first", [False, True], ids=["x-op-c", "c-op-x"])
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul"])
@pytest.mark.parametrize("cshape", CONST_SHAPES, ids=str)
def test_binary_with_constant(path, op, cshape, const_first):
    inputs = ["c", "x"] if const_first else ["x", "c"]
    single_op_model(path, op, [1, 3, 4, 5], {"c": rand(cshape, 1)}, inputs=inputs)
    check_model(path)


@pytest.mark.parametrize("cshape", CONST_SHAPES, ids=str)
def test_div_by_constant(path, cshape):
    c = rand(cshape, 1)
    c = np.where(np.abs(c) < 0.2, 0.5, c).astype(np.float32)
    single_op_model(path, "Div", [1, 3, 4, 5], {"c": c})
    check_model(path)


def test_arithmetic_with_constant_node_operands(path):
    nodes = [
        const_node("k", f32([[1.5], [-2.0], [0.25]])),
        helper.make_node("Constant", [], ["s"], name="Constant_s", value_float=3.0),
        node("Mul", ["x", "k"], "a"),
        node("Add", ["s", "a"], "y"),
    ]
    make_model(path, nodes, [1, 3, 4])
    check_model(path)


def test_neg(path):
    single_op_model(path, "Neg", [1, 3, 4])
    check_model(path)


@pytest.mark.parametrize("op", ["Add", "Sub"])
def test_residual_two_branches(path, op):
    """x (op) Conv(x): two synapse blocks from the input into the readout."""
    nodes = [node("Conv", ["x", "w", "b"], "h", pads=[1, 1, 1, 1]), node(op, ["x", "h"], "y")]
    make_model(path, nodes, [1, 3, 5, 5], {"w": rand((3, 3, 3, 3), 1), "b": rand(3, 2)})
    net = check_model(path)
    assert len(net.synapses()) == 2


def test_sub_of_two_linear_branches(path):
    nodes = [node("MatMul", ["x", "w1"], "a"), node("Mul", ["x", "s"], "b"), node("Gemm", ["b", "w2", "c"], "bb"), node("Sub", ["a", "bb"], "y")]
    make_model(path, nodes, [1, 6], {"w1": rand((6, 4), 1), "s": rand(6, 2), "w2": rand((6, 4), 3), "c": rand(4, 4)})
    check_model(path)


def test_add_input_to_itself_and_scale(path):
    nodes = [node("Add", ["x", "x"], "a"), node("Sub", ["a", "x"], "b"), node("Div", ["b", "c"], "y")]
    make_model(path, nodes, [1, 4], {"c": f32(4.0)})
    check_model(path)


def test_residual_broadcast_branches(path):
    """Adding a per-channel summary of x back to x: two branches of different shapes."""
    nodes = [node("ReduceMean", ["x"], "m", axes=[2, 3], keepdims=1), node("Sub", ["x", "m"], "y")]
    make_model(path, nodes, [1, 2, 3, 3])
    check_model(path)


# ---------------------------------------------------------------------------------------------
# Constant folding of shape arithmetic


def test_torch_style_flatten(path):
    """x.view(x.size(0), -1) as torch exports it (Gather with a scalar index)."""
    nodes = [
        node("Shape", ["x"], "s"),
        const_node("zero", np.int64(0)),
        node("Gather", ["s", "zero"], "b", axis=0),
        const_node("ax0", i64(0)),
        node("Unsqueeze", ["b", "ax0"], "bu"),
        const_node("minus1", i64(-1)),
        node("Concat", ["bu", "minus1"], "shape", axis=0),
        node("Reshape", ["x", "shape"], "flat"),
        node("Gemm", ["flat", "w", "c"], "y", transB=1),
    ]
    make_model(path, nodes, ["batch", 2, 3, 3], {"w": rand((4, 18), 1), "c": rand(4, 2)})
    check_model(path, batch=3)


def test_flatten_with_shape_gather_vector_index(path):
    """The same as the torch flatten with a [1]-shaped Gather index (no Unsqueeze needed)."""
    nodes = [
        node("Shape", ["x"], "s"),
        node("Gather", ["s", "zero"], "b", axis=0),
        node("Concat", ["b", "minus1"], "shape", axis=0),
        node("Reshape", ["x", "shape"], "flat"),
        node("Gemm", ["flat", "w", "c"], "y", transB=1),
    ]
    make_model(path, nodes, ["batch", 2, 3, 3], {"zero": i64(0), "minus1": i64(-1), "w": rand((4, 18), 1), "c": rand(4, 2)})
    check_model(path, batch=3)


def test_shape_slice_reshape(path):
    """x.view(*x.shape[:2], -1)."""
    nodes = [node("Shape", ["x"], "s"), node("Slice", ["s", "st", "en"], "s2"), node("Concat", ["s2", "m1"], "t", axis=0), node("Reshape", ["x", "t"], "y")]
    make_model(path, nodes, ["b", 2, 3, 4], {"st": i64(0), "en": i64(2), "m1": i64(-1)})
    net = check_model(path, batch=3)
    assert net.meta["output_shape"] == [2, 12]


@pytest.mark.parametrize(
    "nodes, inits",
    [
        ([node("Add", ["a", "b"], "c"), node("Mul", ["x", "c"], "y")], {"a": f32(1.5), "b": f32(0.5)}),
        ([node("Div", ["a", "b"], "c"), node("Mul", ["x", "c"], "y")], {"a": f32(2.5), "b": f32(0.5)}),
        ([node("Sub", ["a", "b"], "c"), node("Div", ["x", "c"], "y")], {"a": f32(2.5), "b": f32(0.5)}),
        ([node("Neg", ["a"], "c"), node("Mul", ["x", "c"], "y")], {"a": f32(1.5)}),
        ([node("ReduceSum", ["a"], "c", keepdims=0), node("Mul", ["x", "c"], "y")], {"a": f32([1.5, 2.0])}),
        ([node("Shape", ["x"], "s"), node("Gather", ["s", "i"], "c", axis=0), node("Cast", ["c"], "cf", to=TensorProto.FLOAT), node("Div", ["x", "cf"], "y")], {"i": np.int64(1)}),
    ],
    ids=["add", "div", "sub", "neg", "reduce-to-scalar", "shape-gather-scalar"],
)
def test_scalar_constant_arithmetic(path, nodes, inits):
    make_model(path, nodes, [1, 3], inits)
    check_model(path)


def test_shape_with_start_end_and_size(path):
    """Reshape to [C, H*W] where the sizes come from Shape(start, end) and Size."""
    nodes = [
        node("Shape", ["x"], "chw", start=1),
        node("Shape", ["x"], "c", start=1, end=2),
        node("Size", ["x"], "n"),
        node("Div", ["n", "c"], "hw"),  # [1]: Size is 0-d, c is [1]
        node("Concat", ["c", "hw"], "target", axis=0),
        node("Reshape", ["x", "target"], "r"),
        node("ReduceSum", ["chw", "ax0"], "total", keepdims=1),  # 3 + 4 + 5 = 12, folded
        node("Cast", ["total"], "totalf", to=TensorProto.FLOAT),
        node("Mul", ["r", "totalf"], "y"),
    ]
    make_model(path, nodes, [1, 3, 4, 5], {"ax0": i64(0)})
    check_model(path)


@pytest.mark.parametrize("fill", [None, 0.5], ids=["default-zero", "half"])
def test_constant_of_shape(path, fill):
    attrs = {} if fill is None else {"value": helper.make_tensor("v", TensorProto.FLOAT, [1], [fill])}
    nodes = [node("Shape", ["x"], "s"), node("ConstantOfShape", ["s"], "c", **attrs), node("Add", ["x", "c"], "y")]
    make_model(path, nodes, [1, 3, 4])
    check_model(path)


def test_range_as_gather_indices(path):
    nodes = [
        const_node("start", np.int64(3)),
        const_node("limit", np.int64(-1)),
        const_node("delta", np.int64(-2)),
        node("Range", ["start", "limit", "delta"], "idx"),  # [3, 1]
        node("Gather", ["x", "idx"], "y", axis=2),
    ]
    make_model(path, nodes, [1, 2, 5])
    check_model(path)


def test_folded_comparisons_and_where(path):
    """A mask computed from constants only (Equal, Where, Not...) folds; the product is linear."""
    nodes = [
        node("Equal", ["k", "two"], "m"),
        node("Not", ["m"], "nm"),
        node("Where", ["nm", "one", "zero"], "mask"),
        node("Mul", ["x", "mask"], "y"),
    ]
    make_model(path, nodes, [1, 4], {"k": i64(1, 2, 3, 2), "two": np.int64(2), "one": f32(1.0), "zero": f32(0.0)})
    check_model(path)


@pytest.mark.parametrize("to", [TensorProto.FLOAT, TensorProto.DOUBLE])
def test_cast_to_float(path, to):
    nodes = [node("Cast", ["x"], "c", to=to), node("Cast", ["c"], "y", to=TensorProto.FLOAT)]
    make_model(path, nodes, [1, 3, 2])
    check_model(path)


def test_cast_constant_to_float(path):
    nodes = [node("Cast", ["k"], "kf", to=TensorProto.FLOAT), node("Mul", ["x", "kf"], "y")]
    make_model(path, nodes, [1, 3], {"k": i64(1, -2, 3)})
    check_model(path)


@pytest.mark.parametrize("op", ["Identity", "Dropout"])
def test_identity_and_dropout(path, op):
    single_op_model(path, op, [1, 3, 4], {"c": f32(1.5)}, inputs=["x"], extra_nodes=[node("Mul", ["t", "c"], "y")])
    check_model(path)


def test_dropout_with_ratio_and_mask_output(path):
    nodes = [node("Dropout", ["x", "ratio"], ["h", "mask"]), node("Mul", ["h", "c"], "y")]
    make_model(path, nodes, [1, 3, 4], {"ratio": f32(0.3), "c": f32(1.5)})
    check_model(path)


# ---------------------------------------------------------------------------------------------
# Activations

CONV = {"w": rand((4, 3, 3, 3), 1), "b": rand(4, 2)}


@pytest.mark.parametrize(
    "act, act_inputs, inits, threshold",
    [
        ("Relu", [], {}, None),
        ("Clip", ["lo", "hi"], {"lo": f32(0.0), "hi": f32(1.5)}, 1.5),
        ("Clip", ["lo", "hi"], {"lo": f32(0.0), "hi": f32(6.0)}, 6.0),
        ("Clip", ["lo"], {"lo": f32(0.0)}, None),  # no max: a ReLU
    ],
    ids=["relu", "clip-1.5", "relu6", "clip-min-only"],
)
def test_activation_after_conv(path, act, act_inputs, inits, threshold):
    nodes = [node("Conv", ["x", "w", "b"], "h", pads=[1, 1, 1, 1]), node(act, ["h", *act_inputs], "y")]
    make_model(path, nodes, [1, 3, 5, 5], {**CONV, **inits})
    net = check_model(path, scale=2.0)
    pops = if_populations(net)
    assert len(pops) == 1
    if threshold is None:
        assert pops[0].activation == "relu" and np.isnan(pops[0].threshold)
    else:
        assert pops[0].activation == "clip" and pops[0].threshold == threshold


def test_relu_then_gemm(path):
    """An activation in the middle: the readout is fed by the IF population, not the input."""
    nodes = [node("Gemm", ["x", "w1", "b1"], "h", transB=1), node("Relu", ["h"], "r"), node("Gemm", ["r", "w2", "b2"], "y", transB=1)]
    make_model(path, nodes, [1, 6], {"w1": rand((5, 6), 1), "b1": rand(5, 2), "w2": rand((3, 5), 3), "b2": rand(3, 4)})
    net = check_model(path, batch=4)
    assert len(if_populations(net)) == 1
    assert [net.source_of(b).kind for b in net.incoming(net.readout.name)] == ["if"]


UP = 2.5
LEVELS = 8


def qcfs_nodes(x: str, out: str, *, head: str = "div", mul_l_swapped: bool = False, add_swapped: bool = False) -> list:
    """The seven-node QCFS export: up * clip(floor(x / up * L + 0.5) / L, 0, 1)."""
    first = node("Div", [x, "up"], "q0") if head == "div" else node("Mul", [x, "inv_up"], "q0")
    return [
        first,
        node("Mul", ["L", "q0"] if mul_l_swapped else ["q0", "L"], "q1"),
        node("Add", ["half", "q1"] if add_swapped else ["q1", "half"], "q2"),
        node("Floor", ["q2"], "q3"),
        node("Div", ["q3", "L"], "q4"),
        node("Clip", ["q4", "zero", "one"], "q5"),
        node("Mul", ["q5", "up"], out),
    ]


QCFS_INITS = {"up": f32(UP), "L": f32(LEVELS), "half": f32(0.5), "zero": f32(0.0), "one": f32(1.0)}


def qcfs_inits(head: str = "div", **_) -> dict:
    return dict(QCFS_INITS, inv_up=f32(1.0 / UP)) if head == "mul" else dict(QCFS_INITS)


@pytest.mark.parametrize(
    "variant",
    [{}, {"head": "mul"}, {"mul_l_swapped": True}, {"add_swapped": True}, {"head": "mul", "mul_l_swapped": True, "add_swapped": True}],
    ids=["div-up", "mul-inverse-up", "mul-L-swapped", "add-swapped", "all-variants"],
)
def test_qcfs_after_gemm(path, variant):
    nodes = [node("Gemm", ["x", "w", "b"], "h", transB=1), *qcfs_nodes("h", "y", **variant)]
    make_model(path, nodes, [1, 6], {"w": rand((5, 6), 1), "b": rand(5, 2), **qcfs_inits(**variant)})
    net = check_model(path, batch=8, scale=2.0)
    pops = if_populations(net)
    assert len(pops) == 1
    assert pops[0].activation == "qcfs" and pops[0].levels == LEVELS
    assert pops[0].threshold == pytest.approx(UP, rel=1e-6)


def test_two_qcfs_layers_share_constants(path):
    second = [
        node("Div", ["g", "up"], "r0"),
        node("Mul", ["r0", "L"], "r1"),
        node("Add", ["r1", "half"], "r2"),
        node("Floor", ["r2"], "r3"),
        node("Div", ["r3", "L"], "r4"),
        node("Clip", ["r4", "zero", "one"], "r5"),
        node("Mul", ["up", "r5"], "y"),
    ]
    nodes = [node("Gemm", ["x", "w", "b"], "h", transB=1), *qcfs_nodes("h", "a"), node("Gemm", ["a", "w2"], "g", transB=1), *second]
    make_model(path, nodes, [1, 6], {"w": rand((5, 6), 1), "b": rand(5, 2), "w2": rand((3, 5), 3), **QCFS_INITS})
    net = check_model(path, batch=6, scale=2.0)
    assert [(p.levels, p.threshold) for p in if_populations(net)] == [(LEVELS, UP)] * 2


def test_qcfs_with_constant_nodes_between_layers(path):
    """Pattern constants as Constant nodes, and a second layer after the QCFS population."""
    consts = [const_node(k, v) for k, v in QCFS_INITS.items()]  # Constant nodes, not initializers
    nodes = [
        *consts,
        node("Conv", ["x", "w", "b"], "h", pads=[1, 1, 1, 1]),
        *qcfs_nodes("h", "a"),
        node("GlobalAveragePool", ["a"], "p"),
        node("Flatten", ["p"], "f"),
        node("Gemm", ["f", "w2", "b2"], "y", transB=1),
    ]
    make_model(path, nodes, [1, 3, 5, 5], {**CONV, "w2": rand((3, 4), 3), "b2": rand(3, 4)})
    net = check_model(path, batch=3, scale=2.0)
    (pop,) = if_populations(net)
    assert pop.levels == LEVELS and pop.threshold == pytest.approx(UP)


# ---------------------------------------------------------------------------------------------
# Errors

def assert_refused(path, *words):
    with pytest.raises(NeurocompileError) as info:
        onnx_to_ir(path)
    message = str(info.value)
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    return message


@pytest.mark.parametrize(
    "op, attrs",
    [("MaxPool", {"kernel_shape": [2, 2]}), ("Sigmoid", {}), ("LeakyRelu", {"alpha": 0.1}), ("HardSigmoid", {})],
)
def test_unsupported_op_names_node_and_op(path, op, attrs):
    make_model(path, [node("Conv", ["x", "w"], "h"), node(op, ["h"], "y", name="my_layer/act", **attrs)], [1, 3, 4, 4], {"w": rand((2, 3, 1, 1))})
    assert_refused(path, "my_layer/act", op, "not supported")


def test_unsupported_lstm(path):
    h = 3
    inits = {"W": rand((1, 4 * h, 2), 1), "R": rand((1, 4 * h, h), 2)}
    make_model(path, [node("LSTM", ["x", "W", "R"], ["y"], name="rnn", hidden_size=h)], [1, 1, 2], inits)
    assert_refused(path, "rnn", "LSTM")


def test_floor_outside_qcfs(path):
    single_op_model(path, "Floor", [1, 4])
    assert_refused(path, "Floor", "QCFS")


def test_qcfs_pattern_with_wrong_shift_is_a_lone_floor(path):
    inits = dict(QCFS_INITS, half=f32(0.4))
    make_model(path, [node("Gemm", ["x", "w"], "h"), *qcfs_nodes("h", "y")], [1, 3], {"w": rand((3, 2)), **inits})
    assert_refused(path, "Floor", "QCFS")


@pytest.mark.parametrize("op", ["Mul", "MatMul"])
def test_product_of_two_input_tensors(path, op):
    nodes = [node("Transpose", ["x"], "xt", perm=[1, 0]), node(op, ["x", "xt"] if op == "MatMul" else ["x", "x"], "y")]
    make_model(path, nodes, [1, 3])
    assert_refused(path, op, "spike product")


def test_div_by_non_constant(path):
    single_op_model(path, "Div", [1, 3], {"c": f32(1.0)}, inputs=["c", "x"])
    assert_refused(path, "Div", "divides by a spiking tensor")


def test_div_by_zero_constant(path):
    single_op_model(path, "Div", [1, 3], {"c": f32([1.0, 0.0, 2.0])})
    assert_refused(path, "divides by zero")


@pytest.mark.parametrize("lo, hi, word", [(-1.0, 1.0, "Clip(-1.0, 1.0)"), (0.0, -2.0, "positive")])
def test_clip_that_is_not_a_clipped_relu(path, lo, hi, word):
    single_op_model(path, "Clip", [1, 3], {"lo": f32(lo), "hi": f32(hi)})
    assert_refused(path, "Clip", word)


def test_reshape_shape_from_non_constant(path):
    """An (ill-typed, but checker-accepted) model whose Reshape target is computed from the input."""
    nodes = [node("Flatten", ["x"], "f"), node("Reshape", ["x", "f"], "y")]
    make_model(path, nodes, [1, 2], output_shape=[1, 2])
    assert_refused(path, "Reshape", "target shape", "constant")


def test_cast_of_input_to_integer(path):
    nodes = [node("Cast", ["x"], "i", to=TensorProto.INT64), node("Cast", ["i"], "y", to=TensorProto.FLOAT)]
    make_model(path, nodes, [1, 3])
    assert_refused(path, "Cast", "int64")


def test_dynamic_non_batch_dimension(path):
    single_op_model(path, "Relu", [1, "seq", 4])
    assert_refused(path, "dynamic", "seq", "axis 1")


def test_input_without_batch_dimension(path):
    single_op_model(path, "Relu", [5])
    assert_refused(path, "batch")


def test_integer_input(path):
    make_model(path, [node("Cast", ["x"], "y", to=TensorProto.FLOAT)], [1, 3], input_type=TensorProto.INT64)
    assert_refused(path, "INT64", "float")


@pytest.mark.parametrize("opset", [11, 12, 21])
def test_opset_out_of_range(path, opset):
    single_op_model(path, "Relu", [1, 3], opset=opset)
    assert_refused(path, f"opset {opset}", "13 to 20")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_initializer_with_nan_or_inf(path, bad):
    w = rand((3, 2))
    w[1, 0] = bad
    single_op_model(path, "MatMul", [1, 3], {"weights": w})
    assert_refused(path, "weights", "NaN or inf")


def test_two_inputs(path):
    extra = helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 3])
    make_model(path, [node("Add", ["x", "x2"], "y")], [1, 3], extra_inputs=[extra])
    assert_refused(path, "exactly one data input", "x2")


def test_two_outputs(path):
    make_model(path, [node("Relu", ["x"], "y"), node("Neg", ["x"], "z")], [1, 3], extra_outputs=["z"])
    assert_refused(path, "exactly one output")


def test_output_independent_of_input(path):
    nodes = [node("Shape", ["x"], "s"), node("ConstantOfShape", ["s"], "y", value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]))]
    make_model(path, nodes, [1, 3])
    assert_refused(path, "'y'", "does not depend on the input")


def test_nonstandard_domain(path):
    make_model(path, [helper.make_node("Gelu", ["x"], ["y"], name="g", domain="com.microsoft")], [1, 3], output_shape=[1, 3], check=False)
    assert_refused(path, "domain", "com.microsoft")


def test_missing_and_truncated_files(tmp_path):
    with pytest.raises(NeurocompileError, match="does not exist"):
        onnx_to_ir(tmp_path / "absent.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not a model\xff\xff")
    with pytest.raises(NeurocompileError, match="not an ONNX model"):
        onnx_to_ir(garbage)


@pytest.mark.parametrize(
    "op, inits, attrs, words",
    [
        ("Pad", {"pads": i64(0, 1, 0, 1), "v": f32(1.0)}, {}, ["padding a spiking tensor"]),
        ("Pad", {"pads": i64(0, 1, 0, 1)}, {"mode": "reflect"}, ["only constant padding"]),
        ("Pad", {"pads": i64(0, -1, 0, 0)}, {}, ["negative pads"]),
        ("Gather", {"idx": i64(3)}, {"axis": 1}, ["out of range"]),
        ("Reshape", {"shape": i64(-1, -1)}, {}, ["more than one -1"]),
        ("Reshape", {"shape": i64(1, 4)}, {}, ["cannot reshape"]),
        ("Squeeze", {"axes": i64(2)}, {}, ["out of range"]),
    ],
    ids=["pad-nonzero", "pad-reflect", "pad-negative", "gather-out-of-range", "reshape-two-minus1", "reshape-size", "squeeze-axis"],
)
def test_layout_errors(path, op, inits, attrs, words):
    make_model(path, [node(op, ["x", *inits], "y", **attrs)], [1, 3], inits, output_shape=[1, 3])
    assert_refused(path, op, *words)


def test_batchnorm_training_mode(path):
    inits = bn_inits(2)
    make_model(path, [node("BatchNormalization", ["x", *inits], "y", training_mode=1)], [1, 2, 3, 3], inits, output_shape=[1, 2, 3, 3])
    assert_refused(path, "training mode")


def test_average_pool_ceil_mode_that_changes_size(path):
    single_op_model(path, "AveragePool", [1, 2, 5, 5], attrs={"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1})
    assert_refused(path, "ceil_mode")


def test_conv_1d_is_refused(path):
    single_op_model(path, "Conv", [1, 2, 5], {"w": rand((3, 2, 3))})
    assert_refused(path, "2-D convolutions")


def test_gather_after_gather_and_scale(path):
    # Transpose (a gather), a per-element scale, then a slice (a second gather): the scale must be
    # re-indexed by the slice alone, not by the composed gather.
    rng = np.random.default_rng(3)
    nodes = [node("Transpose", ["x"], ["t"], perm=[0, 2, 1]), node("Mul", ["t", "w"], ["m"]),
             node("Slice", ["m", "st", "en", "ax"], ["y"])]
    make_model(path, nodes, [1, 4, 6], {"w": rng.normal(size=(1, 6, 4)).astype(np.float32), "st": np.array([1]), "en": np.array([5]), "ax": np.array([1])})
    check_model(path)
