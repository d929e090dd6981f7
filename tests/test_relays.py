"""Relay neurons: lowering keeps a linear node as a population where composing through it
would give a neuron more fan-in axons than a core has (the residual stream seen through the
patch merging, the average pool seen through the head)."""

import numpy as np
import pytest

from neurocompile.cli.runs import run_backend
from neurocompile.compiler import BuildOptions, compile_network
from neurocompile.errors import NeurocompileError
from neurocompile.frontend import onnx_to_ir
from neurocompile.ir.connectivity import n_synapses
from neurocompile.ir.interpret import evaluate
from neurocompile.partition import place
from neurocompile.partition.validate import placement_problems
from neurocompile.targets import load_target

from conftest import GRAPHS, target_with

FAN_IN = 300  # the digits MST's merging reads 5 residual terms x 128 channels = 640 neurons
MODEL = GRAPHS / "digits_mst.onnx"


@pytest.fixture(scope="module")
def small_cores(tmp_path_factory):
    return target_with(tmp_path_factory.mktemp("target"), fan_in_axons=FAN_IN)


@pytest.fixture(scope="module")
def relayed(small_cores):
    return compile_network(MODEL, small_cores, BuildOptions())


def test_relays_go_where_composition_exceeds_a_core_and_every_core_fits(relayed, small_cores):
    from neurocompile.compiler.report import quantization_warnings

    net, placement, report = relayed
    assert quantization_warnings(report["quantization"]) == []  # relays and their readers keep their weights
    relays = {p.name: p for p in net.populations() if p.kind == "relay"}
    assert sorted(relays) == ["head.relay", "stages.1.stages.1.0.reduction.relay"]
    assert "640 neurons" in relays["stages.1.stages.1.0.reduction.relay"].origin
    assert placement_problems(net, small_cores, placement) == []
    assert max(core["fan_in_axons"] for core in placement["cores"]) <= FAN_IN


def test_without_relays_the_same_cores_refuse_the_model(small_cores):
    net, _, _ = compile_network(MODEL, load_target("loihi2"), BuildOptions())
    assert not [p for p in net.populations() if p.kind == "relay"]
    with pytest.raises(NeurocompileError, match=rf"needs \d+ fan-in axons .* a core has {FAN_IN} axons"):
        place(net, small_cores)


def test_relays_compute_the_composed_network():
    x = np.load(GRAPHS / "digits_mst_test_x.npy")[:16].astype(np.float64)
    outputs = []
    for max_fan_in in (None, FAN_IN):
        net = onnx_to_ir(MODEL, max_fan_in=max_fan_in)
        outputs.append(evaluate(net, x)["post"][net.readout.name])
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-9, atol=1e-9)


def test_the_relayed_snn_classifies_as_the_composed_one(relayed):
    # Relays add a step of latency each and round the sum they forward; at T = 48 steps
    # after the fill the two SNNs agree on nearly every image.
    class Artifact:
        def __init__(self, net, target):
            self.net, self.target = net, target

    x = np.load(GRAPHS / "digits_mst_test_x.npy")[:24].astype(np.float64)
    plain, _, _ = compile_network(MODEL, load_target("loihi2"), BuildOptions())
    predictions = []
    for net in (plain, relayed[0]):
        res = run_backend(Artifact(net, load_target("loihi2-sim")), x, net.latency() + 48, "sim", 0, readout_start="latency")
        predictions.append(res.output.reshape(len(x), -1).argmax(axis=1))
    assert relayed[0].latency() == plain.latency() + 2
    assert np.mean(predictions[0] == predictions[1]) >= 0.95


def test_relay_sums_make_the_residual_stream_a_population_read_once():
    # --relay-sums 3: each residual add of three or more populations (a block's output: the
    # stream, the attention branch and the MLP branch; the add after attention has two) becomes
    # relay neurons; the float network is unchanged and the composed stream no longer feeds
    # every later reader, so synapses fall.
    x = np.load(GRAPHS / "digits_mst_test_x.npy")[:16].astype(np.float64)
    plain = onnx_to_ir(MODEL)
    relayed = onnx_to_ir(MODEL, relay_sums=3)
    relays = [p for p in relayed.populations() if p.kind == "relay"]
    assert len(relays) == 4 and all("--relay-sums 3" in p.origin for p in relays)
    assert relayed.latency() == plain.latency() + 4  # one step per relay on the way to the readout
    np.testing.assert_allclose(evaluate(relayed, x)["post"][relayed.readout.name], evaluate(plain, x)["post"][plain.readout.name], rtol=1e-9, atol=1e-9)
    synapses = [sum(n_synapses(b, net.source_of(b).size) for b in net.synapses()) for net in (plain, relayed)]
    assert synapses[1] < 0.9 * synapses[0], synapses
    for p in relays:  # each relay sums the stream before it (a relay or the patch embedding) and the block's two branches
        assert len({relayed.source_of(b).name for b in relayed.incoming(p.name)}) == 3


def test_relay_sums_below_two_are_refused():
    with pytest.raises(NeurocompileError, match="--relay-sums 1"):
        BuildOptions(relay_sums=1).check()
