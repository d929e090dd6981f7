"""Random spike masking as synaptic failure: the frontend finds masks and their ratios; the
failure rates are what they should be, statistically; seeds behave; and the simulator and Lava
agree spike for spike with failures on, in both modes."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from scipy.stats import binomtest

from neurocompile.backends.sim import Simulator
from neurocompile.cli.runs import compare_results, run_backend
from neurocompile.compiler import BuildOptions, build
from neurocompile.compiler.artifact import load_artifact
from neurocompile.errors import NeurocompileError
from neurocompile.frontend import onnx_to_ir
from neurocompile.passes.failures import parse_mask_ratios, set_failures
from snn_models.mst import MaskedSpikingTransformer, export_onnx

from tiny import LOIHI2, chain

N = 400
STEPS = 50


def _fanout_two(p: float, mode: str):
    """in -> l0 (N neurons, a spike every step from step 1) -> masked block -> l1 (2N neurons:
    neuron i and N+i both listen to source i, with weight = threshold) -> readout. l1 fires
    exactly when a spike gets through."""
    w1 = np.vstack([np.eye(N), np.eye(N)]).astype(np.int32) * 8
    net = chain([{"n": N, "w": np.full((N, 1), 8)}, {"n": 2 * N, "w": w1}])
    block = next(b for b in net.synapses() if b.name == "b1")
    block.failure, block.failure_group, block.failure_mode = p, "mask", mode
    return net


def _rasters(net, seed=0):
    r = Simulator(net, LOIHI2).run(np.ones((1, 1)), STEPS, seed=seed, record=True)
    return r.rasters["l0"][:, 0], r.rasters["l1"][:, 0]


@pytest.mark.parametrize("mode", ["spike", "synapse"])
@pytest.mark.parametrize("p", [0.5, 0.75])
def test_failure_rate_is_within_a_binomial_interval(mode, p):
    sent, got = _rasters(_fanout_two(p, mode))
    # A spike of l0 at step t arrives at l1 at step t+1.
    events = 2 * int(sent[:-1].sum())
    survived = int(got[1:].sum())
    assert events > 30_000
    assert binomtest(survived, events, 1 - p).pvalue > 1e-3, survived / events


def test_spike_mode_fails_a_spike_for_all_its_targets_and_synapse_mode_each_synapse():
    p = 0.5
    _, spike = _rasters(_fanout_two(p, "spike"))
    assert np.array_equal(spike[:, :N], spike[:, N:])
    sent, synapse = _rasters(_fanout_two(p, "synapse"))
    pairs = int(sent[:-1].sum())
    same = int((synapse[1:, :N] == synapse[1:, N:])[sent[:-1].astype(bool)].sum())
    assert binomtest(same, pairs, p * p + (1 - p) * (1 - p)).pvalue > 1e-3


@pytest.mark.parametrize("mode", ["spike", "synapse"])
def test_same_seed_same_spikes_other_seed_other_spikes(mode):
    net = _fanout_two(0.5, mode)
    _, a = _rasters(net, seed=1)
    _, b = _rasters(net, seed=1)
    _, c = _rasters(net, seed=2)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_a_batch_draws_what_each_sample_draws_alone():
    net = _fanout_two(0.5, "spike")
    sim = Simulator(net, LOIHI2)
    together = sim.run(np.array([[1.0], [0.5]]), 20, record=True).rasters["l1"]
    alone = sim.run(np.array([[0.5]]), 20, record=True).rasters["l1"]
    assert np.array_equal(together[:, 1], alone[:, 0])


# --- frontend

def _masked_model(path, compare="Greater", ratio=0.75, masked_sum=False):
    """x -> QCFS -> mask -> MatMul W -> QCFS -> y."""
    def qcfs(inp, out, tag):
        names = [f"{tag}_{k}" for k in "dmafqc"]
        return [helper.make_node("Div", [inp, "up"], [names[0]]), helper.make_node("Mul", [names[0], "L"], [names[1]]),
                helper.make_node("Add", [names[1], "half"], [names[2]]), helper.make_node("Floor", [names[2]], [names[3]]),
                helper.make_node("Div", [names[3], "L"], [names[4]]), helper.make_node("Clip", [names[4], "zero", "one"], [names[5]]),
                helper.make_node("Mul", [names[5], "up"], [out])]
    consts = {"up": 1.0, "L": 8.0, "half": 0.5, "zero": 0.0, "one": 1.0, "ratio": ratio}
    inits = [numpy_helper.from_array(np.array(v, np.float32), k) for k, v in consts.items()]
    inits.append(numpy_helper.from_array(np.random.default_rng(0).normal(0, 0.5, (6, 4)).astype(np.float32), "W"))
    masked_input = "s_plus_x" if masked_sum else "s"
    draw_cmp = [helper.make_node(compare, ["u", "ratio"] if compare in ("Greater", "Less") else ["ratio", "u"], ["keep"], name="/blk/q_mask/Greater")]
    nodes = qcfs("x", "s", "a") + [
        helper.make_node("Add", ["s", "x"], ["s_plus_x"]),
        helper.make_node("RandomUniformLike", ["s"], ["u"], name="/blk/q_mask/RandomUniformLike"), *draw_cmp,
        helper.make_node("Cast", ["keep"], ["keepf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [masked_input, "keepf"], ["sm"]),
        helper.make_node("MatMul", ["sm", "W"], ["h"]),
    ] + qcfs("h", "y", "b")
    graph = helper.make_graph(nodes, "masked", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


@pytest.mark.parametrize("compare,ratio,p", [("Greater", 0.75, 0.75), ("Less", 0.75, 0.25), ("GreaterOrEqual", 0.3, 0.7), ("LessOrEqual", 0.3, 0.3)])
def test_frontend_turns_masks_into_failure_probabilities(tmp_path, compare, ratio, p):
    # Greater(u, r) keeps u > r: fails with r. Less(u, r) keeps u < r: fails with 1 - r. The
    # "OrEqual" forms are written with the ratio first: r >= u keeps u <= r, r <= u keeps u >= r.
    net = onnx_to_ir(_masked_model(tmp_path / "m.onnx", compare, ratio))
    masked = [b for b in net.synapses() if b.failure]
    assert len(masked) == 1 and masked[0].failure == pytest.approx(p) and masked[0].failure_group == "blk.q_mask"


def test_frontend_rejects_bad_masks(tmp_path):
    with pytest.raises(NeurocompileError, match=r"mask ratio 1 is outside \[0, 1\)"):
        onnx_to_ir(_masked_model(tmp_path / "a.onnx", ratio=1.0))
    with pytest.raises(NeurocompileError, match="one population's spikes"):
        onnx_to_ir(_masked_model(tmp_path / "b.onnx", masked_sum=True))


def test_mask_ratio_overrides_by_group(tmp_path):
    assert parse_mask_ratios("0.5") == {"": 0.5}
    assert parse_mask_ratios("attn=0.75, mlp=0.5") == {"attn": 0.75, "mlp": 0.5}
    for bad, words in (("1.5", "outside [0, 1)"), ("attn=x", "not RATIO or GROUP=RATIO"), ("-0.1", "outside")):
        with pytest.raises(NeurocompileError, match=words.replace("[", r"\[").replace(")", r"\)")):
            parse_mask_ratios(bad)
    net = onnx_to_ir(_masked_model(tmp_path / "m.onnx"))
    set_failures(net, parse_mask_ratios("q_mask=0.5"), "synapse")
    block = next(b for b in net.synapses() if b.failure_group)
    assert block.failure == 0.5 and block.failure_mode == "synapse"
    with pytest.raises(NeurocompileError, match="key 'mlp' matches no mask.*blk.q_mask"):
        set_failures(net, {"mlp": 0.5}, "spike")


# --- the MST's masks, both backends

@pytest.fixture(scope="module")
def tiny_masked_mst(tmp_path_factory):
    torch.manual_seed(0)
    model = MaskedSpikingTransformer(img_size=8, patch_size=2, in_chans=1, num_classes=4, embed_dim=8, depths=(2,), num_heads=(2,),
                                     window_size=2, mlp_ratio=2, levels=8, attn_mask_ratio=0.5, mlp_mask_ratio=0.5).eval()
    path = tmp_path_factory.mktemp("rsm") / "mst.onnx"
    assert "RandomUniformLike" in export_onnx(model, path, 8, 1)
    return path


def test_every_mst_mask_becomes_a_failure(tiny_masked_mst):
    net = onnx_to_ir(tiny_masked_mst)
    blocks = [b for b in net.synapses() if b.failure]
    products = [p for p in net.populations() if getattr(p, "failure_a", 0)]
    # Per block: q and k on the Q K^T product, attention spikes and the MLP's first layer on blocks.
    assert len(products) == 2 and all(p.failure_a == p.failure_b == 0.5 for p in products)
    assert sorted(b.failure_group.rsplit(".", 1)[-1] for b in blocks) == ["attn_mask", "attn_mask", "mask", "mask"]


@pytest.mark.lava
@pytest.mark.parametrize("mode,ratio", [("spike", None), ("synapse", "0.75")])
def test_backends_bit_identical_with_failures(tiny_masked_mst, tmp_path, mode, ratio):
    path, _ = build(tiny_masked_mst, tmp_path / "m.ncx", BuildOptions(failure_mode=mode, mask_ratio=ratio))
    art = load_artifact(path)
    assert {b.failure for b in art.net.synapses() if b.failure_group} == {0.5 if ratio is None else 0.75}
    x = np.random.default_rng(1).uniform(0, 1, (2, 1, 8, 8))
    sim = run_backend(art, x, 12, "sim", 3, record=True)
    lava = run_backend(art, x, 12, "lava", 3, record=True)
    cmp = compare_results(sim, lava)
    assert cmp["identical"], cmp["divergence_text"] or cmp
    assert np.array_equal(sim.synaptic_ops, lava.synaptic_ops)


def test_masking_cuts_synaptic_events(tiny_masked_mst, tmp_path):
    x = np.random.default_rng(2).uniform(0, 1, (4, 1, 8, 8))
    events = {}
    for ratio in ("0", "0.75"):
        path, _ = build(tiny_masked_mst, tmp_path / f"m{ratio}.ncx", BuildOptions(mask_ratio=ratio))
        events[ratio] = int(run_backend(load_artifact(path), x, 32, "sim", 0).synaptic_ops.sum())
    assert events["0.75"] < events["0"]
