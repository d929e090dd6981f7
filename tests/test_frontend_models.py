"""The shipped converted networks, end to end through the frontend: the IR in ANN mode computes
what onnxruntime computes, before and after lowering, and QCFS becomes IF populations."""

import json

import numpy as np
import onnxruntime as ort
import pytest

from neurocompile.frontend import onnx_to_ir
from neurocompile.ir.interpret import evaluate

from conftest import GRAPHS


@pytest.mark.parametrize("model", ["digits_mlp", "digits_cnn", "digits_mlp_relu"])
def test_ann_mode_matches_onnxruntime(model, digits):
    x = digits[0][:64]
    path = GRAPHS / f"{model}.onnx"
    ref = ort.InferenceSession(str(path)).run(None, {"image": x.astype(np.float32)})[0]
    net = onnx_to_ir(path)
    before = evaluate(net, x)["post"][net.readout.name]
    net.validate()
    after = evaluate(net, x)["post"][net.readout.name]
    np.testing.assert_allclose(before, ref, rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(after, ref, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("model", ["digits_mlp", "digits_cnn"])
def test_qcfs_becomes_if_populations_with_learned_thresholds(model):
    learned = json.loads((GRAPHS / "digits_models.json").read_text())["models"][model]["qcfs_up"]
    net = onnx_to_ir(GRAPHS / f"{model}.onnx")
    pops = [p for p in net.populations() if p.kind == "if"]
    assert [p.activation for p in pops] == ["qcfs"] * len(learned)
    assert all(p.levels == 8 for p in pops)
    np.testing.assert_allclose(sorted(p.threshold for p in pops), sorted(learned), rtol=1e-6)


def test_batchnorm_and_pooling_fold_into_structured_kernels():
    net = onnx_to_ir(GRAPHS / "digits_mlp.onnx")  # Gemm -> BatchNormalization -> QCFS
    assert [b.kernel.kind for b in net.synapses()] == ["dense"] * 3
    net = onnx_to_ir(GRAPHS / "digits_cnn.onnx")  # AveragePool -> Conv; GlobalAveragePool -> Flatten -> Gemm
    assert "sparse" not in {b.kernel.kind for b in net.synapses()}
    residual = [b for b in net.synapses() if b.kernel.kind == "elementwise"]
    assert len(residual) == 1  # the skip connection: one-to-one synapses into the add's population
