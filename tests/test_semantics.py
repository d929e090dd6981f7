"""The integer semantics of docs/semantics.md, checked against traces derived by hand.

Every network here is built directly in the IR (tests/tiny.py) with explicit integers, so the
expected spikes follow from the equations alone, not from another implementation.
"""

import numpy as np
import pytest

from neurocompile.backends.sim import Simulator
from neurocompile.passes.schedule import assign_starts
from neurocompile.semantics.failures import shift

from tiny import LOIHI2, chain

VMAX = 2**23 - 1


def simulate(net, x, steps, **kw):
    return Simulator(net, LOIHI2).run(np.asarray(x, np.float64).reshape(len(x), -1), steps, record=True, **kw)


def test_integrate_fire_with_threshold_equality_and_subtraction():
    # Input payload 3 every step, weight 1, theta 8, v0 4. The input emitted at step 0 arrives
    # at step 1. v: 4, 7, 10->2 (spike), 5, 8->0 (spike: v >= theta), 3, 6, 9->1, 4, 7, 10->2, 5
    net = chain([{"n": 1, "w": [[1]], "v0": 4}])
    r = simulate(net, [[3.0]], 12)
    assert r.rasters["l0"][:, 0, 0].tolist() == [0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0]
    assert r.membranes["l0"][0, 0] == 5


def test_one_step_delay_per_synapse_hop():
    # Strong weights: each layer fires from the first step its input arrives.
    net = chain([{"n": 1, "w": [[8]]}, {"n": 1, "w": [[8]]}, {"n": 1, "w": [[8]]}])
    r = simulate(net, [[1.0]], 6)
    first = [int(np.argmax(r.rasters[f"l{k}"][:, 0, 0])) for k in range(3)]
    assert first == [1, 2, 3]
    assert net.latency() == 4
    # The readout integrates the last layer from step 4 on: steps 4 and 5.
    assert r.readout_int[0, 0] == 2


def test_reset_by_subtraction_keeps_the_excess():
    # Input 20 per step, theta 8: one spike per step at most; v grows by 12 each step.
    net = chain([{"n": 1, "w": [[20]]}])
    r = simulate(net, [[1.0]], 5)
    assert r.rasters["l0"][:, 0, 0].tolist() == [0, 1, 1, 1, 1]
    assert r.membranes["l0"][0, 0] == 4 * 12


@pytest.mark.parametrize("rule,raster,membrane", [
    # Bias -1 every step, input 3 from step 1 on. From step 0, the bias alone runs the membrane
    # down before the input arrives: v 3, 5, 7, 9->1, 3, 5, 7, 9->1.
    ("zero", [0, 0, 0, 1, 0, 0, 0, 1], 1),
    # Aligned, l0 starts at step 1, when its input arrives: v 4 (held), 6, 8->0, 2, 4, 6, 8->0, 2.
    ("aligned", [0, 0, 1, 0, 0, 0, 1, 0], 2),
])
def test_a_population_takes_no_input_before_its_start(rule, raster, membrane):
    net = chain([{"n": 1, "w": [[1]], "v0": 4, "bias_mant": [-1]}])
    assign_starts(net, rule)
    assert net.node("l0").start == (1 if rule == "aligned" else 0)
    r = simulate(net, [[3.0]], 8)
    assert r.rasters["l0"][:, 0, 0].tolist() == raster
    assert r.membranes["l0"][0, 0] == membrane


def test_aligned_starts_are_the_longest_path_from_the_input():
    # l0 -> r -> l1: the relay starts when l0's first spikes arrive, l1 a step later.
    from tiny import relay_chain

    net = relay_chain(0)
    assign_starts(net, "aligned")
    assert [net.node(name).start for name in ("l0", "r", "l1")] == [1, 2, 3]
    assert net.latency() == 4


def test_membrane_saturates_instead_of_wrapping():
    # -1000 * 127 << 6 = -8,128,000 per step: the second input step passes -VMAX.
    net = chain([{"n": 1, "w": [[127]], "shift": 6}])
    r = simulate(net, [[-1000.0]], 4)
    assert r.membranes["l0"][0, 0] == -VMAX
    assert r.counts["l0"].sum() == 0


def test_negative_shift_floors_toward_minus_infinity():
    assert shift(np.array([-3, 3, -4, 5]), -1).tolist() == [-2, 1, -2, 2]
    # l0 fires every step from step 1; its spike reaches l1 through weight -3 >> 1 = -2.
    net = chain([{"n": 1, "w": [[8]]}, {"n": 1, "w": [[-3]], "shift": -1}])
    r = simulate(net, [[1.0]], 6)
    assert r.membranes["l1"][0, 0] == -2 * 4  # deliveries at steps 2, 3, 4, 5


def test_bias_mantissa_and_exponent():
    # bias 1 << 2 = 4 per step and no input: a spike every second step.
    net = chain([{"n": 1, "w": [[0]], "bias_mant": [1], "bias_exp": 2}])
    r = simulate(net, [[0.0]], 6)
    assert r.rasters["l0"][:, 0, 0].tolist() == [0, 1, 0, 1, 0, 1]


@pytest.mark.parametrize("levels", [4, 8, 16])
def test_if_neuron_reproduces_qcfs_after_levels_steps(levels):
    # With v0 = theta/2 and a constant input, the spike count over L input steps is
    # floor(L * a + 1/2) clipped to [0, L]: the QCFS activation with L levels, which is why a
    # QCFS network converts without loss (MST paper, eq. 4-5).
    theta = 64
    payloads = np.arange(-10, 80)
    net = chain([{"n": 1, "w": [[1]], "theta": theta, "v0": theta // 2}])
    r = simulate(net, payloads[:, None].astype(float), levels + 1)  # +1: the input arrives at step 1
    a = payloads / theta
    qcfs = np.clip(np.floor(a * levels + 0.5), 0, levels)
    assert r.counts["l0"][:, 0].tolist() == qcfs.astype(int).tolist()


def test_readout_sums_from_its_first_step_on():
    # Same chain: the readout receives 1 at steps 4, 5, ... From step 5 on it sums steps 5..7.
    net = chain([{"n": 1, "w": [[8]]}, {"n": 1, "w": [[8]]}, {"n": 1, "w": [[8]]}])
    assert simulate(net, [[1.0]], 8).readout_int[0, 0] == 4
    assert simulate(net, [[1.0]], 8, readout_start=5).readout_int[0, 0] == 3
    assert simulate(net, [[1.0]], 8, readout_start=net.latency()).readout_int[0, 0] == 4


def test_batched_samples_are_independent():
    net = chain([{"n": 3, "w": np.eye(3, dtype=int) * 2, "v0": 4}], n_in=3)
    x = np.array([[1.0, 2.0, 3.0], [3.0, 0.0, -1.0]])
    together = simulate(net, x, 10)
    for k in range(2):
        alone = simulate(net, x[k:k + 1], 10)
        assert np.array_equal(alone.rasters["l0"][:, 0], together.rasters["l0"][:, k])
