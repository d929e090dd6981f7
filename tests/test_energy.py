"""The energy model (neurocompile/partition/energy.py): its arithmetic on a hand-made network, the effect of
masking on events and on the MST paper's spike-count power, and the ANN-rate estimate."""

import numpy as np
import pytest

from neurocompile.backends.sim import Simulator
from neurocompile.partition import place
from neurocompile.partition.energy import PAPER_STEP_S, run_energy
from neurocompile.targets import load_target

from tiny import LOIHI2, chain

TARGET = load_target("loihi2-sim")


def _net(p=0.0):
    """in (1 graded) -> l0 (4 IF, fire every step from step 1) -> l1 (4 IF, weight = theta)."""
    net = chain([{"n": 4, "w": np.full((4, 1), 8)}, {"n": 4, "w": np.eye(4, dtype=np.int32) * 8}])
    block = next(b for b in net.synapses() if b.name == "b1")
    block.failure, block.failure_group = p, "m"
    return net


def test_energy_adds_up_from_the_measured_activity():
    net = _net()
    placement = place(net, TARGET)
    steps = 10
    res = Simulator(net, LOIHI2).run(np.ones((1, 1)), steps)
    e = TARGET.energy
    # Messages: the input sends 1 payload per step to b0; l0 sends 4 spikes per step from step 1
    # on b1; l1 4 per step from step 2 on b_out. Events: b0 fans out to 4, b1 and b_out to 1.
    assert {k: int(v[0]) for k, v in res.messages.items()} == {"b0": 10, "b1": 36, "b_out": 32}
    assert {k: int(v[0]) for k, v in res.events.items()} == {"b0": 40, "b1": 36, "b_out": 32}
    report = run_energy(net, TARGET, placement, res)
    host_to_core = 10 * e["spike_inter_chip_j"]  # the input lives on the host
    on_chip = (36 + 32) * e["spike_intra_chip_j"]
    dynamic = (40 + 36 + 32) * e["synaptic_op_j"] + 8 * steps * e["neuron_update_j"] + host_to_core + on_chip
    assert report["dynamic_energy_j"] == pytest.approx(dynamic)
    static = e["static_power_per_core_w"] * placement["totals"]["cores"] * steps * e["step_time_s"]
    assert report["static_energy_j"] == pytest.approx(static)
    assert report["power_w"] == pytest.approx((dynamic + static) / (steps * e["step_time_s"]))
    assert report["per_population"]["l1"]["synaptic_events"] == 36
    assert sum(r["energy_j"] for r in report["per_population"].values()) == pytest.approx(dynamic)


def test_masking_cuts_events_energy_and_the_papers_power():
    placement = place(_net(), TARGET)
    reports = {}
    for p in (0.0, 0.75):
        net = _net(p)
        reports[p] = run_energy(net, TARGET, placement, Simulator(net, LOIHI2).run(np.ones((1, 1)), 200))
    masked, plain = reports[0.75], reports[0.0]
    assert masked["synaptic_events"] < plain["synaptic_events"]
    assert masked["dynamic_energy_j"] < plain["dynamic_energy_j"]
    # l0's spikes all go through the mask: only the survivors count in the paper's model.
    assert masked["spikes_delivered"] < masked["spikes"]
    assert plain["paper_power_alpha_w"] == pytest.approx(plain["spikes"] / PAPER_STEP_S)


def test_ann_rate_estimate_matches_a_long_run(tmp_path):
    # The shipped QCFS MLP: the ANN's rates predict the simulator's synaptic events per step.
    from conftest import GRAPHS
    from neurocompile.cli.runs import run_backend
    from neurocompile.compiler import BuildOptions, build
    from neurocompile.compiler.artifact import load_artifact

    x = np.load(GRAPHS / "digits_test_x.npy")[:32]
    calib = tmp_path / "calib.npy"
    np.save(calib, x)
    path, report = build(GRAPHS / "digits_mlp.onnx", tmp_path / "mlp.ncx", BuildOptions(calibrate=str(calib)))
    estimate = report["estimated_energy_per_step"]
    art = load_artifact(path)
    steps = 256
    measured = run_energy(art.net, art.target, art.placement, run_backend(art, x, steps, "sim", 0))
    assert estimate["synaptic_events"] == pytest.approx(measured["synaptic_events"] / steps, rel=0.05)
    assert estimate["dynamic_energy_j"] == pytest.approx(measured["dynamic_energy_j"] / steps, rel=0.05)
