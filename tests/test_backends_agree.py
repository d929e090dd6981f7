"""The simulator and Lava agree spike for spike: every population, every neuron, every step.

Lava runs every process as an OS process, so these networks stay small; the accuracy of the
same artifacts is tested against the ANN elsewhere (test_convergence.py), so agreement here is
agreement on correct spikes.
"""

import numpy as np
import pytest

from neurocompile.cli.runs import compare_results, run_backend

from conftest import GRAPHS, target_with
from tiny import chain, relay_chain

pytestmark = pytest.mark.lava


def assert_identical(art, x, steps, seed=0):
    sim = run_backend(art, x, steps, "sim", seed, record=True)
    lava = run_backend(art, x, steps, "lava", seed, record=True)
    cmp = compare_results(sim, lava)
    assert cmp["identical"], cmp["divergence_text"] or cmp
    assert np.array_equal(sim.synaptic_ops, lava.synaptic_ops)
    for name in sim.membranes:
        assert np.array_equal(sim.membranes[name], lava.membranes[name]), name
    return sim, lava


def test_qcfs_mlp(artifacts, digits):
    sim, _ = assert_identical(artifacts("digits_mlp"), digits[0][:4], 32)
    assert all(c.sum() > 0 for c in sim.counts.values())  # every population is active


def test_qcfs_cnn_with_residual_and_pooling(artifacts, digits):
    sim, _ = assert_identical(artifacts("digits_cnn"), digits[0][:2], 20)  # latency 5: 15 steps of output; 2 samples: the reset between them
    assert all(c.sum() > 0 for c in sim.counts.values())


def test_calibrated_relu_mlp(artifacts, digits):
    assert_identical(artifacts("digits_mlp_relu", calibrate=str(GRAPHS / "digits_calib_x.npy")), digits[0][4:7], 32)


def test_rate_encoded_input_same_seed_same_spikes(artifacts, digits):
    art = artifacts("digits_mlp", encoding="rate")
    a, _ = assert_identical(art, digits[0][:2], 32, seed=0)
    b, _ = assert_identical(art, digits[0][:2], 32, seed=7)
    assert any(not np.array_equal(a.rasters[n], b.rasters[n]) for n in a.rasters)


class _Artifact:
    """The minimum run_backend needs, for a hand-made network."""

    def __init__(self, net):
        from neurocompile.targets import load_target

        self.net, self.target = net, load_target("loihi2-sim")


@pytest.mark.parametrize(
    "layers, x",
    [
        ([{"n": 1, "w": [[1]], "v0": 4}], [[3.0]]),  # threshold equality
        ([{"n": 1, "w": [[127]], "shift": 6}], [[-1000.0]]),  # saturation
        ([{"n": 1, "w": [[8]]}, {"n": 1, "w": [[-3]], "shift": -1}], [[1.0]]),  # floor of a negative shift
        ([{"n": 2, "w": [[0], [0]], "bias_mant": [1, -3], "bias_exp": 2}], [[0.0]]),  # bias exponent, negative bias
        ([{"n": 3, "w": [[20], [-20], [5]]}], [[2.0]]),  # excess kept by reset by subtraction, negative current
    ],
)
def test_semantic_corners(layers, x):
    art = _Artifact(chain(layers))
    assert_identical(art, np.asarray(x), 12)


@pytest.mark.parametrize("mode,p", [("spike", 0.5), ("spike", 0.75), ("synapse", 0.5), ("synapse", 0.75)])
def test_synaptic_failure_corners(mode, p):
    # Three sources fanning out to two targets each, the middle block failing.
    net = chain([{"n": 3, "w": [[8], [6], [4]]}, {"n": 6, "w": np.vstack([np.eye(3), np.eye(3)]).astype(int) * 8}])
    block = next(b for b in net.synapses() if b.name == "b1")
    block.failure, block.failure_group, block.failure_mode = p, "corner", mode
    sim, _ = assert_identical(_Artifact(net), np.ones((2, 1)), 24, seed=5)
    assert 0 < sim.counts["l1"].sum() < sim.counts["l0"].sum() * 2  # some, not all, got through


@pytest.mark.parametrize("shift,start", [(0, "zero"), (2, "aligned")])
def test_relay_neurons_forward_signed_shifted_sums(shift, start):
    from neurocompile.backends.lava.run import run_lava
    from neurocompile.passes.schedule import assign_starts

    net, x = relay_chain(shift), np.array([[1.0], [3.0]])
    assign_starts(net, start)
    sim, _ = assert_identical(_Artifact(net), x, 16)
    assert sim.counts["l1"].sum() > 0
    if start == "aligned":  # the relay emits nothing before step 2, where its bias alone would
        # send -3 >> 2 = -1 from its second neuron at steps 0 and 1
        assert net.node("r").start == 2
        assign_starts(net, "zero")
        early = run_backend(_Artifact(net), x, 16, "sim", 0)
        assert (early.messages["b1"] - sim.messages["b1"]).tolist() == [2, 2]
        assign_starts(net, start)
    num = _Artifact(net).target.numerics
    cut = run_lava(net, x, 16, num, record=True, slices={"l0": [(0, 1), (1, 3)], "r": [(0, 2), (2, 3)]})
    cmp = compare_results(sim, cut)
    assert cmp["identical"], cmp["divergence_text"] or cmp


@pytest.mark.parametrize("failure", [0.0, 0.5])
def test_emission_per_core_slice_gives_the_spikes_of_the_population_emission(tmp_path, digits, failure):
    from neurocompile.backends.lava.run import core_slices
    from neurocompile.compiler import BuildOptions, compile_network

    target = target_with(tmp_path, neurons=24)
    net, placement, _ = compile_network(GRAPHS / "digits_mlp.onnx", target, BuildOptions())
    hidden = net.outgoing(net.input.name)[0]
    hidden.failure, hidden.failure_group = failure, "hidden"  # masked spikes cross slices too
    slices = core_slices(placement)
    assert max(len(pieces) for pieces in slices.values()) >= 3

    class Artifact:
        def __init__(self):
            self.net, self.target, self.placement = net, target, placement

    x = digits[0][:2]
    whole = run_backend(Artifact(), x, 12, "lava", 3, record=True)
    cut = run_backend(Artifact(), x, 12, "lava", 3, record=True, per_core=True)
    cmp = compare_results(whole, cut)
    assert cmp["identical"], cmp["divergence_text"] or cmp
    assert np.array_equal(whole.output, cut.output) and np.array_equal(whole.synaptic_ops, cut.synaptic_ops)
    for name in whole.membranes:
        assert np.array_equal(whole.membranes[name], cut.membranes[name]), name


def test_residual_sum_of_two_blocks():
    # l1 sums a block from l0 and, through a second chain link, the input directly.
    from neurocompile.ir.kernels import Dense
    from neurocompile.ir.nodes import SynapseBlock

    net = chain([{"n": 2, "w": [[5], [3]]}, {"n": 2, "w": [[4, 0], [0, -2]]}])
    w = np.array([[3], [6]], np.int32)
    net.connect(SynapseBlock("skip", (1, 1), kernel=Dense(weight=w.astype(np.float64)), w_mant=w, w_shift=0, acc_bound=int(w.max()) * 2**15), "in", "l1")
    net.validate()
    assert_identical(_Artifact(net), np.array([[1.0], [2.0]]), 16)


def test_lava_floating_point_models_track_the_fixed_point_run(artifacts, digits):
    art = artifacts("digits_mlp")
    x = digits[0][:2]
    fixed = run_backend(art, x, 32, "sim", 0)
    floating = run_backend(art, x, 32, "lava", 0, precision="float")
    for name, counts in fixed.counts.items():
        assert abs(int(floating.counts[name].sum()) - int(counts.sum())) <= 0.02 * counts.sum(), name
    assert np.array_equal(floating.output.reshape(2, -1).argmax(1), fixed.output.reshape(2, -1).argmax(1))


def test_emission_per_core_slice_of_a_population_poured_into_other_cores(tmp_path):
    """A residual sum (fed elementwise) is cut where other slices leave room: its pieces run in
    processes beside other populations' and the spikes are those of the simulator."""
    import torch
    from torch import nn

    from neurocompile.backends.lava.run import core_slices
    from neurocompile.compiler import BuildOptions, compile_network
    from snn_models.qcfs import QCFS

    class Residual(nn.Module):
        def __init__(self, c: int = 8):
            super().__init__()
            self.a, self.b, self.out = nn.Linear(c, c), nn.Linear(c, c), nn.Linear(c, 3)
            self.qa, self.qb, self.qc = QCFS(), QCFS(), QCFS()

        def forward(self, x):
            a = self.qa(self.a(x))
            return self.out(self.qc(a + self.qb(self.b(a))))

    torch.manual_seed(0)
    path = tmp_path / "residual.onnx"
    torch.onnx.export(Residual().eval(), torch.rand(1, 4, 8), str(path), opset_version=17, input_names=["x"])
    target = target_with(tmp_path, fan_in_axons=20)
    net, placement, _ = compile_network(path, target, BuildOptions())
    assert len(core_slices(placement)["qc"]) >= 3
    assert any({"qc"} < {s["population"] for s in c["slices"]} for c in placement["cores"])

    class Artifact:
        def __init__(self):
            self.net, self.target, self.placement = net, target, placement

    x = np.random.default_rng(5).uniform(0, 1, (2, 4, 8))
    sim = run_backend(Artifact(), x, 12, "sim", 0, record=True)
    cut = run_backend(Artifact(), x, 12, "lava", 0, record=True, per_core=True)
    cmp = compare_results(sim, cut)
    assert cmp["identical"], cmp["divergence_text"] or cmp
    assert cut.backend == "lava" and sim.counts["qc"].sum() > 0
    assert np.array_equal(sim.synaptic_ops, cut.synaptic_ops)


def test_an_exception_inside_a_lava_process_is_reported_and_every_process_ends(artifacts, digits, monkeypatch):
    import multiprocessing

    import neurocompile.backends.lava.processes as processes

    def fails(self):
        raise ValueError("readout cannot add this step")

    monkeypatch.setattr(processes.PyReadoutFixed, "run_spk", fails)  # the Lava processes fork with it
    with pytest.raises(RuntimeError, match="a Lava process failed:(.|\n)*ValueError: readout cannot add this step"):
        run_backend(artifacts("digits_mlp"), digits[0][:1], 4, "lava", 0)
    assert multiprocessing.active_children() == []
