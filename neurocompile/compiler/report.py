"""The build report (report.json): what was built, its resources, its quantization."""

from __future__ import annotations

from typing import Any

from ..ir.connectivity import n_synapses
from ..ir.graph import Network
from ..targets import Target

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
            "start": getattr(p, "start", None),
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
