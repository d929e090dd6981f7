"""The build pipeline: ONNX -> IR -> passes -> placement -> artifact."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .artifact import sha256_file, write_artifact
from .data import load_input
from .energy import expected_activity, run_energy
from .errors import NeurocompileError
from .frontend import onnx_to_ir
from .ir.connectivity import n_synapses
from .ir.graph import Network
from .ir.nodes import ENCODINGS, IFPopulation, Product
from .partition import place
from .partition.place import FaninCache
from .partition.traffic import neuron_rates, spike_traffic
from .passes.calibrate import calibrate_thresholds, needs_calibration
from .passes.dce import eliminate_dead_code
from .passes.failures import parse_mask_ratios, set_failures
from .passes.layout import token_major_convolutions
from .passes.lower import lower_linear_chains
from .passes.quantize import activation_error, quantize
from .products import FORMS as PRODUCT_FORMS
from .targets import Target, load_target

DEFAULT_INPUT_RANGE = 4.0


@dataclass
class BuildOptions:
    target: str = "loihi2-sim"
    seed: int = 0
    encoding: str = "current"
    input_range: float | None = None  # largest |input| expected; from --calibrate data if unset
    calibrate: str | None = None  # .npy of sample inputs
    percentile: float = 99.9
    v_init: float = 0.5  # initial membrane, in thresholds
    product_form: str = "coincidence"  # of spike products: products.FORMS
    mask_ratio: str | None = None  # overrides of the model's mask ratios: "R" or "GROUP=R,..."
    failure_mode: str = "spike"  # what a mask drops: a presynaptic spike, or one synaptic event

    def check(self) -> None:
        if self.product_form not in PRODUCT_FORMS:
            raise NeurocompileError(f"product form '{self.product_form}' is not one of {', '.join(PRODUCT_FORMS)}")
        if self.encoding not in ENCODINGS:
            raise NeurocompileError(f"encoding '{self.encoding}' is not one of {', '.join(ENCODINGS)}")
        if not 0.0 <= self.v_init < 1.0:
            raise NeurocompileError(f"initial membrane {self.v_init} must be in [0, 1) thresholds")
        if self.seed < 0 or self.seed >= 2**32:
            raise NeurocompileError(f"seed {self.seed} must be in [0, 2^32)")


Step = Callable[[str], None]


def compile_network(model: str | Path, target: Target, options: BuildOptions, step: Step = lambda name: None) -> tuple[Network, dict[str, Any], dict[str, Any]]:
    """Returns (quantized network, placement, report)."""
    options.check()
    step("frontend")
    net = onnx_to_ir(model, encoding=options.encoding, max_fan_in=target.core["fan_in_axons"])
    set_failures(net, parse_mask_ratios(options.mask_ratio), options.failure_mode)
    step("lower linear chains")
    lower_linear_chains(net)
    net.validate()
    eliminate_dead_code(net)
    token_major_convolutions(net)
    for pop in net.populations():
        if isinstance(pop, IFPopulation):
            pop.v_init_frac = options.v_init
        elif isinstance(pop, Product):
            pop.form = options.product_form
    calib = load_input(options.calibrate, net.meta["input_shape"], "calibration") if options.calibrate else None
    thresholds = {}
    if needs_calibration(net):
        if calib is None:
            raise NeurocompileError(
                f"populations {', '.join(needs_calibration(net))} come from ReLU activations and need thresholds from data: pass --calibrate X.npy"
            )
        step("calibrate thresholds")
        thresholds = calibrate_thresholds(net, calib, options.percentile)
    input_range = options.input_range
    if input_range is None:
        input_range = float(np.abs(calib).max()) if calib is not None and np.abs(calib).max() > 0 else DEFAULT_INPUT_RANGE
    step("quantize")
    qreport = quantize(net, target, input_range)
    if calib is not None:
        for name, err in activation_error(net, calib[:256]).items():
            qreport[name]["activation_rel_error"] = err
    net.validate()
    step("place")
    fanin = FaninCache(net)
    placement = place(net, target, fanin=fanin)
    report = summarize(net, target, placement, qreport, thresholds, input_range)
    step("estimate traffic")
    report["spike_traffic_per_step"] = spike_traffic(net, placement, neuron_rates(net, calib[:256]) if calib is not None else None, fanin)
    if calib is not None:
        report["estimated_energy_per_step"] = run_energy(net, target, placement, expected_activity(net, calib[:256]))
    report["warnings"] = quantization_warnings(qreport)
    return net, placement, report


WEIGHT_ERROR_WARN = 0.05


def quantization_warnings(qreport: dict[str, Any]) -> list[str]:
    """Lines worth a user's attention: large weight errors, saturated weights or biases."""
    out = []
    for name, q in qreport.items():
        if q["weight_rel_error"] > WEIGHT_ERROR_WARN:
            out.append(f"population '{name}': weights quantize with {q['weight_rel_error']:.0%} relative error")
        if q["weights_saturated"] or q["bias_saturated"]:
            out.append(f"population '{name}': {q['weights_saturated']} weights and {q['bias_saturated']} biases saturate at the target's limits")
    return out


def summarize(net: Network, target: Target, placement: dict, qreport: dict, thresholds: dict, input_range: float) -> dict[str, Any]:
    pops = [p for p in net.populations() if p is not net.input]
    synapses = {b.name: n_synapses(b, net.source_of(b).size) for b in net.synapses()}
    per_pop = {}
    for p in pops:
        per_pop[p.name] = {
            "kind": p.kind,
            "shape": list(p.shape),
            "neurons": p.size,
            "threshold": getattr(p, "threshold", None),
            "activation": getattr(p, "activation", None),
            "levels": getattr(p, "levels", None),
            "synapses_in": int(sum(synapses[b.name] for b in net.incoming(p.name))),
            "blocks_in": [b.name for b in net.incoming(p.name)],
        }
    inp = net.input
    return {
        "populations": len(pops),
        "neurons": int(sum(p.size for p in pops)),
        "synapses": int(sum(synapses.values())),
        "synapse_blocks": len(synapses),
        "latency_steps": net.latency(),
        "input": {"name": inp.name, "shape": list(inp.shape[1:]), "encoding": inp.encoding, "payload_frac_bits": inp.payload_frac_bits, "range": input_range},
        "per_population": per_pop,
        "quantization": qreport,
        "calibrated_thresholds": thresholds,
        "resources": {**placement["totals"], "lower_bound_cores": placement["lower_bound_cores"]},
        "operations": _operations(net, placement, synapses),
        "estimated_energy_per_step": None,
        "energy_note": "build with --calibrate for an estimate from the ANN's rates; `neurocompile run` measures it",
    }


def _operations(net: Network, placement: dict, synapses: dict[str, int]) -> dict[str, Any]:
    """Synapses whose target runs on the neurocores vs on the host."""
    host = {h["node"] for h in placement["host_ops"]}
    on_host = sum(n for name, n in synapses.items() if net.target_of(net.node(name)).name in host)
    total = sum(synapses.values())
    return {
        "synapses_on_cores": total - on_host,
        "synapses_on_host": on_host,
        "fraction_on_cores": (total - on_host) / total if total else 1.0,
        "host_ops": sorted(host),
    }


def default_artifact_path(model: str | Path) -> Path:
    model = Path(model)
    return model.with_suffix(".ncx")


def build(model: str | Path, out: str | Path | None, options: BuildOptions, step: Step = lambda name: None) -> tuple[Path, dict[str, Any]]:
    target = load_target(options.target)
    net, placement, report = compile_network(model, target, options, step)
    opts = asdict(options)
    if options.calibrate:
        opts["calibrate"] = {"file": Path(options.calibrate).name, "sha256": sha256_file(options.calibrate)}
    step("write artifact")
    path = write_artifact(out or default_artifact_path(model), net, target, placement, report, sha256_file(model), opts)
    return path, report
