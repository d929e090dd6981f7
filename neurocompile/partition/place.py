"""Placement: populations -> core slices -> cores -> chips.

The packer walks populations in topological order and cuts each into the longest slices that fit
one core under every limit, one population per core. Populations that run off the neurocores
(the input encoding) are listed as host ops.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import NeurocompileError
from ..ir.connectivity import block_matrix
from ..ir.graph import Network
from ..ir.nodes import InputPopulation, Product
from ..targets import Target
from .resources import Cost, fanin_patterns, slice_cost


def _longest_fit(patterns, start: int, n: int, core: dict, wbits: int, pop: str) -> tuple[int, Cost]:
    first = slice_cost(patterns, start, start + 1, core, wbits)
    if not first.fits(core):
        raise NeurocompileError(
            f"population '{pop}': one neuron alone needs {first.fan_in_axons} fan-in axons and {first.synapse_bits} synapse bits; "
            f"a core has {core['fan_in_axons']} axons and {core['synapse_memory_bits']} bits"
        )
    lo, hi = start + 1, min(n, start + core["neurons"])
    best = first
    while lo < hi:  # largest stop in (lo, hi] that fits
        mid = (lo + hi + 1) // 2
        cost = slice_cost(patterns, start, mid, core, wbits)
        if cost.fits(core):
            lo, best = mid, cost
        else:
            hi = mid - 1
    return lo, best


def _host_reason(net: Network, pop) -> str:
    if isinstance(pop, InputPopulation):
        return f"{pop.encoding} encoding of the input is injected by the host"
    if isinstance(pop, Product):
        a, b = net.operands(pop.name)
        k = pop.a_shape[-1]
        return (f"a product of two spike tensors ({a.name} @ {b.name}) would need {pop.size * k} coincidence neurons "
                f"({pop.size} sums of {k}) on cores; it runs on the host")
    return f"{pop.op} has no neuron form; it runs on the host"


def place(net: Network, target: Target) -> dict[str, Any]:
    core = target.core
    wbits = target.numerics["weight_mantissa_bits"]
    cores: list[dict[str, Any]] = []
    core_of: dict[str, np.ndarray] = {}  # population -> core index of each neuron
    unsplit = Cost(0, 0, 0)  # every population on one ideal core: what the lower bound counts
    host_ops = []
    for pop in net.populations():
        if pop.on_host:
            host_ops.append({"node": pop.name, "kind": pop.kind, "why": _host_reason(net, pop)})
            continue
        patterns = fanin_patterns(net, pop.name)
        whole = slice_cost(patterns, 0, pop.size, core, wbits)
        unsplit = Cost(unsplit.neurons + whole.neurons, unsplit.synapse_bits + whole.synapse_bits, unsplit.fan_in_axons + whole.fan_in_axons)
        owner = np.empty(pop.size, np.int64)
        start = 0
        while start < pop.size:
            stop, cost = _longest_fit(patterns, start, pop.size, core, wbits, pop.name)
            owner[start:stop] = len(cores)
            cores.append({"slices": [{"population": pop.name, "start": start, "stop": stop}], "neurons": cost.neurons, "synapse_bits": cost.synapse_bits, "fan_in_axons": cost.fan_in_axons, "fan_out_axons": 0})
            start = stop
        core_of[pop.name] = owner

    # Fan-out: each neuron needs one output axon per distinct destination core.
    for pop in net.populations():
        if pop.name not in core_of:
            continue
        dests: list[np.ndarray] = []
        srcs: list[np.ndarray] = []
        for block in net.outgoing(pop.name):
            tgt = net.target_of(block)
            m = block_matrix(block, pop.size, (block.w_mant != 0).astype(np.float64)).tocoo()
            srcs.append(m.col)
            dests.append(core_of[tgt.name][m.row])
        if not srcs:
            continue
        pairs = np.unique(np.stack([np.concatenate(srcs), np.concatenate(dests)]), axis=1)
        per_neuron = np.bincount(pairs[0], minlength=pop.size)
        fan_out = np.bincount(core_of[pop.name], weights=per_neuron, minlength=len(cores))
        for c in np.flatnonzero(fan_out):
            cores[c]["fan_out_axons"] += int(fan_out[c])

    per_chip = target.spec["chip"]["cores"]
    available = per_chip * target.spec["system"]["chips"]
    if len(cores) > available:
        raise NeurocompileError(f"model needs {len(cores)} cores; target {target.chip} offers {available} ({target.spec['system']['chips']} chips x {per_chip} cores)")
    for k, c in enumerate(cores):
        if c["fan_out_axons"] > core["fan_out_axons"]:
            raise NeurocompileError(f"core {k} ({c['slices'][0]['population']}): {c['fan_out_axons']} fan-out axons exceed the core's {core['fan_out_axons']}")
        c["chip"], c["core"] = divmod(k, per_chip)
    ordered = [{key: c[key] for key in ("chip", "core", "slices", "neurons", "synapse_bits", "fan_in_axons", "fan_out_axons")} for c in cores]
    totals = {key: int(sum(c[key] for c in cores)) for key in ("neurons", "synapse_bits", "fan_in_axons", "fan_out_axons")}
    totals.update(cores=len(cores), chips=len({c["chip"] for c in ordered}))
    lower = max(
        math.ceil(unsplit.neurons / core["neurons"]),
        math.ceil(unsplit.synapse_bits / core["synapse_memory_bits"]),
        math.ceil(unsplit.fan_in_axons / core["fan_in_axons"]),
        1,
    )
    return {"cores": ordered, "totals": totals, "lower_bound_cores": lower, "host_ops": host_ops}
