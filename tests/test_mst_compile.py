"""A Masked Spiking Transformer (the project's own model code, random weights) through the whole
compiler: window attention with spike products, softmax and the final layer norm on the host,
shifted windows (roll as Slice + Concat), relative position bias. ANN mode against onnxruntime;
simulator and Lava bit-identical."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from neurocompile.cli.runs import compare_results, run_backend
from neurocompile.compiler import BuildOptions, build
from neurocompile.compiler.artifact import load_artifact
from neurocompile.frontend import onnx_to_ir
from neurocompile.ir.interpret import evaluate
from snn_models.mst import MaskedSpikingTransformer, export_onnx

IMG = 8


@pytest.fixture(scope="module")
def tiny_mst(tmp_path_factory):
    """One stage of two blocks (the second with shifted windows), 4x4 tokens in 2x2 windows."""
    torch.manual_seed(0)
    model = MaskedSpikingTransformer(img_size=IMG, patch_size=2, in_chans=1, num_classes=4, embed_dim=8, depths=(2,),
                                     num_heads=(2,), window_size=2, mlp_ratio=2, levels=8).eval()
    path = tmp_path_factory.mktemp("mst") / "mst.onnx"
    ops = export_onnx(model, path, IMG, 1)
    assert {"Softmax", "LayerNormalization", "MatMul", "Slice", "Concat"} <= set(ops)
    return path


def _inputs(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 1, IMG, IMG))


def test_ann_mode_matches_onnxruntime(tiny_mst):
    x = _inputs(3)
    session = ort.InferenceSession(str(tiny_mst))
    ref = np.concatenate([session.run(None, {"image": x[i:i + 1].astype(np.float32)})[0] for i in range(3)])
    net = onnx_to_ir(tiny_mst)
    np.testing.assert_allclose(evaluate(net, x)["post"][net.readout.name], ref, rtol=1e-5, atol=2e-5)
    net.validate()
    np.testing.assert_allclose(evaluate(net, x)["post"][net.readout.name], ref, rtol=1e-5, atol=2e-5)
    kinds = [p.kind for p in net.populations()]
    assert kinds.count("product") == 4 and kinds.count("host") == 3  # 2 x (QK^T, AV), 2 softmax + final LN


def test_build_places_attention_on_the_host(tiny_mst, tmp_path):
    path, report = build(tiny_mst, tmp_path / "mst.ncx", BuildOptions())
    art = load_artifact(path)
    kinds = {h["kind"] for h in art.placement["host_ops"]}
    assert kinds == {"input", "product", "host"}
    assert 0 < report["operations"]["fraction_on_cores"] < 1
    assert report["warnings"] == []  # every block keeps its precision, host ops included


@pytest.mark.lava
def test_backends_bit_identical(tiny_mst, tmp_path):
    path, _ = build(tiny_mst, tmp_path / "mst.ncx", BuildOptions())
    art = load_artifact(path)
    x = _inputs(1, seed=1)
    # Each population starts when its last input arrives (the default): through the latency and
    # a few steps more, so that the last of them spikes too.
    steps = art.net.latency() + 3
    sim = run_backend(art, x, steps, "sim", 0, record=True)
    lava = run_backend(art, x, steps, "lava", 0, record=True)
    cmp = compare_results(sim, lava)
    assert cmp["identical"], cmp["divergence_text"] or cmp
    silent = [name for name, c in sim.counts.items() if c.sum() == 0]
    assert silent == [], silent


@pytest.mark.lava
def test_shipped_digits_mst_backends_bit_identical(tmp_path):
    # The trained digits MST (graphs/digits_mst.onnx, 2 stages, 42 QCFS, 8 spike products,
    # 5 host ops): every population identical on both backends, at every step, for one input
    # (state reset between samples is checked on the smaller networks of test_backends_agree).
    # Every population starts at step 0, so that all of them spike within 8 steps; started when
    # their inputs arrive (the default, covered by the tiny MST above), the deepest would stay
    # silent for the network's 40 steps of latency.
    from conftest import GRAPHS

    path, report = build(GRAPHS / "digits_mst.onnx", tmp_path / "mst.ncx", BuildOptions(start="zero"))
    assert report["warnings"] == []
    art = load_artifact(path)
    x = np.load(GRAPHS / "digits_mst_test_x.npy")[:1]
    sim = run_backend(art, x, 8, "sim", 0, record=True)  # Lava: ~10 s to start, ~1 s a step
    lava = run_backend(art, x, 8, "lava", 0, record=True)
    cmp = compare_results(sim, lava)
    assert cmp["identical"], cmp["divergence_text"] or cmp
    assert set(sim.counts) == {p.name for p in art.net.populations() if p.kind == "if"}
    silent = [name for name, c in sim.counts.items() if c.sum() == 0]
    assert silent == [], silent
