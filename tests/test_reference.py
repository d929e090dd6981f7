"""The float reference: per-step evaluation with no delay between layers, as the MST paper."""

import numpy as np
import pytest

from neurocompile.backends.reference import run_reference
from neurocompile.ir.interpret import evaluate

from tiny import chain


@pytest.mark.parametrize("levels", [4, 8, 16])
def test_no_delay_reproduces_qcfs_in_exactly_levels_steps(levels):
    # Constant input a (in thresholds), v0 = theta/2: after L steps the count is QCFS's
    # floor(L a + 1/2) clipped to [0, L], with no extra step for a synapse hop.
    net = chain([{"n": 1, "w": [[1]]}])
    a = np.linspace(-0.2, 1.3, 61)
    r = run_reference(net, a[:, None], levels)
    assert r.counts["l0"][:, 0].tolist() == np.clip(np.floor(a * levels + 0.5), 0, levels).astype(int).tolist()


@pytest.mark.parametrize("model, steps", [("digits_mlp", 8), ("digits_cnn", 16)])
def test_reference_keeps_ann_accuracy_in_few_steps(artifacts, digits, model, steps):
    x, y = digits
    art = artifacts(model)
    ann = (evaluate(art.net, x)["post"][art.net.readout.name].argmax(1) == y).mean()
    ref = (run_reference(art.net, x, steps).output.reshape(len(x), -1).argmax(1) == y).mean()
    assert ref >= ann - 0.01, (ann, ref)
