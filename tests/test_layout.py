"""Token-major layout of convolution outputs read as tokens (the patch embedding)."""

import numpy as np
import pytest

from neurocompile.frontend import onnx_to_ir
from neurocompile.ir.interpret import evaluate
from neurocompile.passes.layout import token_major_convolutions

from conftest import GRAPHS


def _lowered(model: str):
    net = onnx_to_ir(GRAPHS / f"{model}.onnx")
    return net


@pytest.mark.parametrize("model, permuted", [("digits_mst", {"patch_embed.act": (1, 8, 8, 32)}), ("digits_cnn", {})])
def test_only_convolutions_read_as_tokens_are_permuted_and_the_function_stays(model, permuted):
    x = np.load(GRAPHS / ("digits_mst_test_x.npy" if model == "digits_mst" else "digits_test_x.npy"))[:16].astype(np.float64)
    before = _lowered(model)
    after = _lowered(model)
    assert token_major_convolutions(after) == list(permuted)
    for name, shape in permuted.items():
        assert after.node(name).shape == shape
        # every block reading it now reads whole tokens: identity or token gathers
        for block in after.outgoing(name):
            first = np.zeros(1, np.int64) if block.in_index is None else block.in_index.reshape(-1, shape[-1])[:, 0]
            assert np.all((first == -1) | (first % shape[-1] == 0))
    ref, got = evaluate(before, x)["post"], evaluate(after, x)["post"]
    np.testing.assert_array_equal(got[after.readout.name], ref[before.readout.name])
    for name in permuted:
        c = before.node(name).shape[1]
        np.testing.assert_array_equal(got[name].reshape(len(x), -1, c), ref[name].reshape(len(x), c, -1).transpose(0, 2, 1))
