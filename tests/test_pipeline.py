"""The build as one list of named passes: every pass reports what it changed, the IR verifies after
each of them, and the ANN's activations on the calibration data are evaluated once per build."""

from __future__ import annotations

import numpy as np
import pytest

import neurocompile.compiler.pipeline as pipeline
from neurocompile.compiler import PASSES, BuildOptions, PassResult
from neurocompile.compiler.pipeline import Build, run_passes
from neurocompile.errors import NeurocompileError
from neurocompile.frontend import onnx_to_ir
from neurocompile.targets import load_target

from conftest import GRAPHS

TARGET = load_target("loihi2-sim")
CALIB = str(GRAPHS / "digits_calib_x.npy")


def fresh_build(model: str, **options) -> Build:
    net = onnx_to_ir(GRAPHS / f"{model}.onnx", max_fan_in=TARGET.core["fan_in_axons"])
    return Build(net, TARGET, BuildOptions(**options))


@pytest.mark.parametrize("model, options", [
    ("digits_mlp", {"start": "zero"}),
    ("digits_cnn", {"calibrate": CALIB}),
    ("digits_mlp_relu", {"calibrate": CALIB}),
    ("digits_mst_rsm", {"mask_ratio": "attn=0.5", "product_form": "telescoping"}),
])
def test_every_pass_reports_and_the_ir_verifies_after_each(model, options):
    steps = []
    build = run_passes(fresh_build(model, **options), step=steps.append, verify=True)
    assert steps == [name for name, _ in PASSES]
    assert [name for name, _ in build.results] == steps
    for name, result in build.results:
        assert isinstance(result, PassResult) and isinstance(result.changed, bool) and isinstance(result.report, dict), name
    results = dict(build.results)
    assert results["quantize"].changed
    assert results["calibrate thresholds"].changed == (model == "digits_mlp_relu")
    assert results["mask ratios"].changed == (model == "digits_mst_rsm")
    # Aligned starts (the default) move every population but the first off step 0; the masked
    # MST's products also become telescoping.
    assert results["neuron options"].changed == (options.get("start") != "zero")
    if model == "digits_mst_rsm":
        products = [p.name for p in build.net.populations() if p.kind == "product"]
        assert set(products) <= set(results["neuron options"].report["populations"])
    assert ("estimated_energy_per_step" in build.estimates) == ("calibrate" in options)


def test_a_pass_run_twice_changes_nothing_the_second_time():
    build = run_passes(fresh_build("digits_mst"))
    for name, run in PASSES:
        if name in ("dead code", "token-major convolutions", "neuron options", "mask ratios"):
            assert not run(build).changed, name


def test_the_verifier_names_the_pass_that_broke_the_ir(monkeypatch):
    def break_a_block(build: Build) -> PassResult:
        block = build.net.synapses()[0]
        block.in_index = np.full(block.view_shape, 10**6, np.int64)  # points outside its source
        return PassResult(True)

    monkeypatch.setattr(pipeline, "PASSES", PASSES[:2] + [("break a block", break_a_block)] + PASSES[2:])
    with pytest.raises(NeurocompileError, match=r"invalid after pass 'break a block': synapse block '[^']+' in_index points outside"):
        run_passes(fresh_build("digits_mlp"), verify=True)


@pytest.mark.parametrize("model, calibrations", [("digits_mlp", 0), ("digits_mlp_relu", 1)])
def test_the_calibration_set_goes_through_the_float_network_once_for_the_estimates(monkeypatch, model, calibrations):
    """One float evaluation feeds the quantization error, the traffic and the energy estimates; a
    ReLU network takes one more, before its thresholds exist, to choose them."""
    import neurocompile.passes.calibrate as calibrate
    import neurocompile.passes.quantize as quantize

    calls = {"shared": 0, "thresholds": 0, "quantize (float)": 0}

    def counting(key, real):
        def wrapped(net, x, quantized=False, **kw):
            if not quantized:
                calls[key] += 1
            return real(net, x, quantized=quantized, **kw)
        return wrapped

    monkeypatch.setattr(pipeline, "evaluate", counting("shared", pipeline.evaluate))
    monkeypatch.setattr(calibrate, "evaluate", counting("thresholds", calibrate.evaluate))
    monkeypatch.setattr(quantize, "evaluate", counting("quantize (float)", quantize.evaluate))
    build = run_passes(fresh_build(model, calibrate=CALIB))
    assert calls == {"shared": 1, "thresholds": calibrations, "quantize (float)": 0}
    assert build.estimates["spike_traffic_per_step"]["weighted_by"] == "ANN rates"
    assert build.estimates["estimated_energy_per_step"]["synaptic_events"] > 0
