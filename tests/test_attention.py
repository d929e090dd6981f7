"""Attention's ops: spike products (Q K^T, A V), softmax and layer norm on the host, with a
relative-position bias added as a constant. ANN mode against onnxruntime; both backends
bit-identical; the compiler says what runs off the cores and why."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx_builders import ATTENTION_TOKENS, ATTENTION_WIDTH

from neurocompile.cli.runs import compare_results, run_backend
from neurocompile.compiler import BuildOptions, build
from neurocompile.compiler.artifact import load_artifact
from neurocompile.frontend import onnx_to_ir
from neurocompile.ir.interpret import evaluate

TOKENS, WIDTH = ATTENTION_TOKENS, ATTENTION_WIDTH


def test_ann_mode_matches_onnxruntime(attention_model):
    x = np.random.default_rng(1).normal(0, 1, (5, TOKENS, WIDTH))
    session = ort.InferenceSession(str(attention_model))
    ref = np.concatenate([session.run(None, {"x": x[i:i + 1].astype(np.float32)})[0] for i in range(5)]).reshape(5, -1)
    net = onnx_to_ir(attention_model)
    kinds = sorted(p.kind for p in net.populations())
    assert kinds == ["host", "host", "if", "if", "if", "input", "product", "product", "readout"]
    np.testing.assert_allclose(evaluate(net, x)["post"][net.readout.name], ref, rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(evaluate(net, x)["post"][net.readout.name], ref, rtol=1e-5, atol=2e-5)


def test_products_and_host_ops_are_placed_on_the_host_with_reasons(attention_model, tmp_path):
    path, report = build(attention_model, tmp_path / "a.ncx", BuildOptions())
    host = {h["node"]: h for h in load_artifact(path).placement["host_ops"]}
    assert {"qk", "av", "attn", "y"} <= set(host)
    assert "coincidence neurons" in host["qk"]["why"] and "no neuron form" in host["attn"]["why"]
    assert 0 < report["operations"]["fraction_on_cores"] < 1


def test_products_add_no_latency(attention_model, tmp_path):
    # x -> q, k, v (hop 1) -> QK^T -> softmax (hop 2) -> AV -> layer norm (hop 3) -> readout (hop 4)
    path, _ = build(attention_model, tmp_path / "a.ncx", BuildOptions())
    assert load_artifact(path).net.latency() == 4


@pytest.mark.lava
@pytest.mark.parametrize("form,readout_start", [("coincidence", 0), ("telescoping", "latency")])
def test_backends_bit_identical(attention_model, tmp_path, form, readout_start):
    path, _ = build(attention_model, tmp_path / "a.ncx", BuildOptions(product_form=form))
    art = load_artifact(path)
    x = np.random.default_rng(2).normal(0, 1, (3, TOKENS, WIDTH))
    sim = run_backend(art, x, 16, "sim", 0, record=True, readout_start=readout_start)
    lava = run_backend(art, x, 16, "lava", 0, record=True, readout_start=readout_start)
    cmp = compare_results(sim, lava)
    assert cmp["identical"], cmp["divergence_text"] or cmp
    assert np.array_equal(sim.synaptic_ops, lava.synaptic_ops)
    assert np.abs(sim.readout_int).max() > 0  # the layer norm's output reached the readout


@pytest.mark.lava
def test_emission_per_core_slice_feeds_products_the_whole_operands(attention_model, tmp_path):
    from neurocompile.backends.lava.run import core_slices
    from neurocompile.compiler import compile_network
    from conftest import target_with

    target = target_with(tmp_path, neurons=10)
    net, placement, _ = compile_network(attention_model, target, BuildOptions())
    assert all(len(core_slices(placement)[name]) >= 2 for name in ("q", "k", "v"))

    class Artifact:
        def __init__(self):
            self.net, self.target, self.placement = net, target, placement

    x = np.random.default_rng(2).normal(0, 1, (2, TOKENS, WIDTH))
    sim = run_backend(Artifact(), x, 12, "sim", 0, record=True)
    cut = run_backend(Artifact(), x, 12, "lava", 0, record=True, per_core=True)
    cmp = compare_results(sim, cut)
    assert cmp["identical"], cmp["divergence_text"] or cmp
    assert np.array_equal(sim.synaptic_ops, cut.synaptic_ops)


def test_quantization_keeps_every_block_precise(attention_model, tmp_path):
    # Populations without a threshold (host ops, readout) choose their own scale; a bad choice
    # rounds their weights to zero while both backends still agree. Guard the precision itself.
    _, report = build(attention_model, tmp_path / "a.ncx", BuildOptions())
    assert report["warnings"] == []
    assert max(q["weight_rel_error"] for q in report["quantization"].values()) < 0.05


@pytest.mark.parametrize("form", ["coincidence", "telescoping"])
def test_simulated_output_follows_the_ann(attention_model, tmp_path, form):
    path, _ = build(attention_model, tmp_path / "a.ncx", BuildOptions(product_form=form))
    art = load_artifact(path)
    x = np.random.default_rng(3).normal(0, 1, (20, TOKENS, WIDTH))
    steps, latency = 256, art.net.latency()
    out = run_backend(art, x, steps, "sim", 0, readout_start="latency").output.reshape(20, -1) / (steps - latency)
    ann = evaluate(art.net, x)["post"][art.net.readout.name]
    assert np.corrcoef(out.ravel(), ann.ravel())[0, 1] > 0.9
