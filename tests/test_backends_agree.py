"""The simulator and Lava agree spike for spike: every population, every neuron, every step.

Lava runs every process as an OS process, so these networks stay small; the accuracy of the
same artifacts is tested against the ANN elsewhere (test_convergence.py), so agreement here is
agreement on correct spikes.
"""

import numpy as np
import pytest

from neurocompile.runs import compare_results, run_backend

from conftest import GRAPHS
from tiny import chain

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
    sim, _ = assert_identical(artifacts("digits_cnn"), digits[0][:3], 32)
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


def test_lava_floating_point_models_track_the_fixed_point_run(artifacts, digits):
    art = artifacts("digits_mlp")
    x = digits[0][:2]
    fixed = run_backend(art, x, 32, "sim", 0)
    floating = run_backend(art, x, 32, "lava", 0, precision="float")
    for name, counts in fixed.counts.items():
        assert abs(int(floating.counts[name].sum()) - int(counts.sum())) <= 0.02 * counts.sum(), name
    assert np.array_equal(floating.output.reshape(2, -1).argmax(1), fixed.output.reshape(2, -1).argmax(1))
