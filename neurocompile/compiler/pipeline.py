"""The build: the frontend hands over a lowered, valid IR; one named list of passes turns it into
a quantized, placed network and its report.

A pass is a plain function of the build's state that returns what it changed and a report
(`PassResult`). `compile_network(..., verify=True)` runs the IR verifier after every pass (the
tests do); a build verifies once, after the last pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data import load_input
from ..errors import NeurocompileError
from ..frontend import onnx_to_ir
from ..ir.graph import Network
from ..ir.interpret import evaluate
from ..ir.nodes import ENCODINGS, PRODUCT_FORMS, STARTS, IFPopulation, Product
from ..partition import place
from ..partition.energy import expected_activity, run_energy
from ..partition.fanout import FaninCache, Messages
from ..partition.place import STRIPE_CUTS
from ..partition.traffic import message_rates, spike_traffic
from ..passes.calibrate import calibrate_thresholds, needs_calibration
from ..passes.dce import eliminate_dead_code
from ..passes.failures import parse_mask_ratios, set_failures
from ..passes.layout import token_major_convolutions
from ..passes.products import SITES, place_products
from ..passes.quantize import activation_error, quantize
from ..passes.schedule import assign_starts
from ..targets import Target
from .report import quantization_warnings, summarize

DEFAULT_INPUT_RANGE = 4.0
ESTIMATE_SAMPLES = 256  # calibration inputs behind the quantization error, traffic and energy estimates


@dataclass
class BuildOptions:
    target: str = "loihi2-sim"
    seed: int = 0
    encoding: str = "current"
    input_range: float | None = None  # largest |input| expected; from --calibrate data if unset
    calibrate: str | None = None  # .npy of sample inputs
    percentile: float = 99.9
    v_init: float = 0.5  # initial membrane, in thresholds
    product_form: str = "coincidence"  # of spike products: PRODUCT_FORMS
    mask_ratio: str | None = None  # overrides of the model's mask ratios: "R" or "GROUP=R,..."
    failure_mode: str = "spike"  # what a mask drops: a presynaptic spike, or one synaptic event
    start: str = "aligned"  # the step each population takes input from: STARTS (passes/schedule.py)
    relay_sums: int | None = None  # a sum of at least this many populations becomes relay neurons (frontend)
    products_on: str = "auto"  # where spike products with a coincidence form run: passes/products.py SITES
    stripe_cuts: str = "small"  # which core slices stop where the input's stripe changes: STRIPE_CUTS (partition/place.py)

    def check(self) -> None:
        if self.relay_sums is not None and self.relay_sums < 2:
            raise NeurocompileError(f"--relay-sums {self.relay_sums}: a sum has at least 2 terms")
        if self.stripe_cuts not in STRIPE_CUTS:
            raise NeurocompileError(f"stripe cuts '{self.stripe_cuts}' is not one of {', '.join(STRIPE_CUTS)}")
        if self.products_on not in SITES:
            raise NeurocompileError(f"products on '{self.products_on}' is not one of {', '.join(SITES)}")
        if self.start not in STARTS:
            raise NeurocompileError(f"start '{self.start}' is not one of {', '.join(STARTS)}")
        if self.product_form not in PRODUCT_FORMS:
            raise NeurocompileError(f"product form '{self.product_form}' is not one of {', '.join(PRODUCT_FORMS)}")
        if self.encoding not in ENCODINGS:
            raise NeurocompileError(f"encoding '{self.encoding}' is not one of {', '.join(ENCODINGS)}")
        if not 0.0 <= self.v_init < 1.0:
            raise NeurocompileError(f"initial membrane {self.v_init} must be in [0, 1) thresholds")
        if self.seed < 0 or self.seed >= 2**32:
            raise NeurocompileError(f"seed {self.seed} must be in [0, 2^32)")


@dataclass
class PassResult:
    changed: bool
    report: dict[str, Any] = field(default_factory=dict)


@dataclass
class Build:
    """What the passes of one build read and write."""

    net: Network
    target: Target
    options: BuildOptions
    calibration: np.ndarray | None = None  # the --calibrate inputs
    thresholds: dict[str, float] = field(default_factory=dict)
    input_range: float = DEFAULT_INPUT_RANGE
    quantization: dict[str, Any] = field(default_factory=dict)
    placement: dict[str, Any] | None = None
    fanin: FaninCache | None = None
    messages: dict[str, Messages] = field(default_factory=dict)  # what each sender (core neuron, host node) sends per spike or value
    estimates: dict[str, Any] = field(default_factory=dict)  # traffic and energy, for the report
    results: list[tuple[str, PassResult]] = field(default_factory=list)
    _activations: dict[str, dict[str, np.ndarray]] | None = None

    def activations(self) -> dict[str, dict[str, np.ndarray]] | None:
        """The ANN's activations on (the first ESTIMATE_SAMPLES) calibration inputs, evaluated
        once, after every threshold is known; None without calibration data."""
        if self.calibration is None:
            return None
        if self._activations is None:
            self._activations = evaluate(self.net, self.calibration[:ESTIMATE_SAMPLES])
        return self._activations


def _mask_ratios(build: Build) -> PassResult:
    ratios = parse_mask_ratios(build.options.mask_ratio)
    changed = set_failures(build.net, ratios, build.options.failure_mode)
    return PassResult(bool(changed), {"masks": changed})


def _dead_code(build: Build) -> PassResult:
    return PassResult(eliminate_dead_code(build.net))


def _token_major(build: Build) -> PassResult:
    permuted = token_major_convolutions(build.net)
    return PassResult(bool(permuted), {"populations": permuted})


def _neuron_options(build: Build) -> PassResult:
    """The initial membrane of IF neurons, the form of spike products and the step each
    population starts from, as the options say (after the passes that change the graph)."""
    changed = assign_starts(build.net, build.options.start)
    for pop in build.net.populations():
        if isinstance(pop, IFPopulation) and pop.v_init_frac != build.options.v_init:
            pop.v_init_frac = build.options.v_init
            changed.append(pop.name)
        elif isinstance(pop, Product) and pop.form != build.options.product_form:
            pop.form = build.options.product_form
            changed.append(pop.name)
    return PassResult(bool(changed), {"populations": list(dict.fromkeys(changed))})


def _calibrate(build: Build) -> PassResult:
    """Thresholds of ReLU populations and the input range, from the --calibrate inputs."""
    if build.options.calibrate:
        build.calibration = load_input(build.options.calibrate, build.net.meta["input_shape"], "calibration")
    pending = needs_calibration(build.net)
    calib = build.calibration
    if pending:
        if calib is None:
            raise NeurocompileError(f"populations {', '.join(pending)} come from ReLU activations and need thresholds from data: pass --calibrate X.npy")
        build.thresholds = calibrate_thresholds(build.net, calib, build.options.percentile)
    if build.options.input_range is not None:
        build.input_range = build.options.input_range
    elif calib is not None and np.abs(calib).max() > 0:
        build.input_range = float(np.abs(calib).max())
    return PassResult(bool(build.thresholds), {"thresholds": build.thresholds, "input_range": build.input_range})


def _quantize(build: Build) -> PassResult:
    build.quantization = quantize(build.net, build.target, build.input_range)
    activations = build.activations()
    if activations is not None:
        errors = activation_error(build.net, build.calibration[:ESTIMATE_SAMPLES], activations["pre"])
        for name, err in errors.items():
            build.quantization[name]["activation_rel_error"] = err
    return PassResult(True, build.quantization)


def _products(build: Build) -> PassResult:
    """Spike products onto coincidence neurons where the options put them (after quantization,
    whose integers they copy); the populations after them start later."""
    entries = place_products(build.net, build.target, build.options.products_on)
    moved = [e["node"] for e in entries if e["runs_on"] == "cores"]
    if moved:
        assign_starts(build.net, build.options.start)
        build._activations = None  # the estimates read the new populations' values too
    return PassResult(bool(moved), {"products": entries})


def _place(build: Build) -> PassResult:
    build.fanin = FaninCache(build.net)
    build.placement = place(build.net, build.target, fanin=build.fanin, messages=build.messages, stripe_cuts=build.options.stripe_cuts)
    return PassResult(False, build.placement["totals"])


def _traffic(build: Build) -> PassResult:
    activations = build.activations()
    rates = None if activations is None else message_rates(build.net, activations["post"])
    build.estimates["spike_traffic_per_step"] = spike_traffic(build.net, build.target, build.placement, rates, build.fanin, build.messages)
    return PassResult(False, build.estimates["spike_traffic_per_step"])


def _energy(build: Build) -> PassResult:
    activations = build.activations()
    if activations is None:
        return PassResult(False)
    activity = expected_activity(build.net, activations["post"])
    build.estimates["estimated_energy_per_step"] = run_energy(build.net, build.target, build.placement, activity)
    return PassResult(False, build.estimates["estimated_energy_per_step"])


# The build, in order. Each entry: (name shown while it runs, the pass).
PASSES: list[tuple[str, Callable[[Build], PassResult]]] = [
    ("mask ratios", _mask_ratios),
    ("dead code", _dead_code),
    ("token-major convolutions", _token_major),
    ("neuron options", _neuron_options),
    ("calibrate thresholds", _calibrate),
    ("quantize", _quantize),
    ("products", _products),
    ("place", _place),
    ("estimate traffic", _traffic),
    ("estimate energy", _energy),
]

Step = Callable[[str], None]


def run_passes(build: Build, step: Step = lambda name: None, verify: bool = False) -> Build:
    """Runs PASSES in order; the IR is verified after each one (`verify`) or after the last."""
    for name, run in PASSES:
        step(name)
        build.results.append((name, run(build)))
        if verify:
            _verify(build.net, name)
    if not verify:
        _verify(build.net, PASSES[-1][0])
    return build


def _verify(net: Network, after: str) -> None:
    try:
        net.validate()
    except NeurocompileError as e:
        raise NeurocompileError(f"the IR is invalid after pass '{after}': {e}") from None


def compile_network(model: str | Path, target: Target, options: BuildOptions, step: Step = lambda name: None,
                    verify: bool = False) -> tuple[Network, dict[str, Any], dict[str, Any]]:
    """Returns (quantized network, placement, report)."""
    options.check()
    step("frontend")
    net = onnx_to_ir(model, encoding=options.encoding, max_fan_in=target.core["fan_in_axons"], relay_sums=options.relay_sums)
    build = run_passes(Build(net, target, options), step, verify)
    report = summarize(net, target, build.placement, build.quantization, build.thresholds, build.input_range)
    report.update(build.estimates)
    report["warnings"] = quantization_warnings(build.quantization)
    return net, build.placement, report
