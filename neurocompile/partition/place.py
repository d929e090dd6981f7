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


def _longest_fit(patterns, start: int, n: int, core: dict, wbits: int, pop: str, cap: int) -> tuple[int, Cost]:
    first = slice_cost(patterns, start, start + 1, core, wbits)
    if not first.fits(core):
        raise NeurocompileError(
            f"population '{pop}': one neuron alone needs {first.fan_in_axons} fan-in axons and {first.synapse_bits} synapse bits; "
            f"a core has {core['fan_in_axons']} axons and {core['synapse_memory_bits']} bits"
        )
    lo, hi = start + 1, min(n, start + core["neurons"], start + cap)
    best = first
    while lo < hi:  # largest stop in (lo, hi] that fits
        mid = (lo + hi + 1) // 2
        cost = slice_cost(patterns, start, mid, core, wbits)
        if cost.fits(core):
            lo, best = mid, cost
        else:
            hi = mid - 1
    return lo, best


HOST = -1  # the destination "core" of spikes that go to the host


def _host_reason(net: Network, pop) -> str:
    if isinstance(pop, InputPopulation):
        return f"{pop.encoding} encoding of the input is injected by the host"
    if isinstance(pop, Product):
        a, b = net.operands(pop.name)
        k = pop.a_shape[-1]
        return (f"a product of two spike tensors ({a.name} @ {b.name}) would need {pop.size * k} coincidence neurons "
                f"({pop.size} sums of {k}) on cores; it runs on the host")
    return f"{pop.op} has no neuron form; it runs on the host"


def _pack(net: Network, target: Target, patterns: dict, caps: dict[str, int]):
    """One population after another, each cut into the longest slices that fit a core."""
    core, wbits = target.core, target.numerics["weight_mantissa_bits"]
    cores: list[dict[str, Any]] = []
    core_of: dict[str, np.ndarray] = {}  # population -> core index of each neuron
    for name, pats in patterns.items():
        n = net.node(name).size
        owner = np.empty(n, np.int64)
        start = 0
        while start < n:
            stop, cost = _longest_fit(pats, start, n, core, wbits, name, caps.get(name, n))
            owner[start:stop] = len(cores)
            cores.append({"slices": [{"population": name, "start": start, "stop": stop}], "neurons": cost.neurons,
                          "synapse_bits": cost.synapse_bits, "fan_in_axons": cost.fan_in_axons, "fan_out_axons": 0})
            start = stop
        core_of[name] = owner
    return cores, core_of


def _count_fan_out(net: Network, cores: list[dict], core_of: dict[str, np.ndarray]) -> None:
    """Each neuron needs one output axon per distinct destination core (the host counts as one)."""
    for name, owner in core_of.items():
        pop = net.node(name)
        srcs: list[np.ndarray] = []
        dests: list[np.ndarray] = []
        for block in net.outgoing(name):
            tgt = net.target_of(block)
            m = block_matrix(block, pop.size, (block.w_mant != 0).astype(np.float64)).tocoo()
            srcs.append(m.col)
            dests.append(core_of[tgt.name][m.row] if tgt.name in core_of else np.full(m.col.size, HOST))
        if any(isinstance(net.node(succ), Product) for succ in net.graph.successors(name)):
            srcs.append(np.arange(pop.size))  # operands of a spike product: every neuron to the host
            dests.append(np.full(pop.size, HOST))
        if not srcs:
            continue
        pairs = np.unique(np.stack([np.concatenate(srcs), np.concatenate(dests)]), axis=1)
        per_neuron = np.bincount(pairs[0], minlength=pop.size)
        fan_out = np.bincount(owner, weights=per_neuron, minlength=len(cores))
        for c in np.flatnonzero(fan_out):
            cores[c]["fan_out_axons"] += int(fan_out[c])


MAX_REPACKS = 32


def place(net: Network, target: Target) -> dict[str, Any]:
    core = target.core
    wbits = target.numerics["weight_mantissa_bits"]
    patterns = {p.name: fanin_patterns(net, p.name) for p in net.populations() if not p.on_host}
    host_ops = [{"node": p.name, "kind": p.kind, "why": _host_reason(net, p)} for p in net.populations() if p.on_host]
    unsplit = Cost(0, 0, 0)  # every population on one ideal core: what the lower bound counts
    for name, pats in patterns.items():
        whole = slice_cost(pats, 0, net.node(name).size, core, wbits)
        unsplit = Cost(unsplit.neurons + whole.neurons, unsplit.synapse_bits + whole.synapse_bits, unsplit.fan_in_axons + whole.fan_in_axons)
    # Fan-out depends on where the targets landed: pack, count, and pack again with smaller
    # slices where a core sends to too many destinations.
    caps: dict[str, int] = {}
    for _ in range(MAX_REPACKS):
        cores, core_of = _pack(net, target, patterns, caps)
        _count_fan_out(net, cores, core_of)
        over = [c for c in cores if c["fan_out_axons"] > core["fan_out_axons"]]
        if not over:
            break
        for c in over:
            name = c["slices"][0]["population"]
            if c["neurons"] == 1:
                raise NeurocompileError(f"population '{name}': one neuron needs {c['fan_out_axons']} fan-out axons; a core has {core['fan_out_axons']}")
            caps[name] = min(caps.get(name, c["neurons"]), max(1, c["neurons"] * core["fan_out_axons"] // c["fan_out_axons"]))
    else:
        worst = max(cores, key=lambda c: c["fan_out_axons"])
        raise NeurocompileError(f"core of '{worst['slices'][0]['population']}': {worst['fan_out_axons']} fan-out axons exceed the core's {core['fan_out_axons']} after {MAX_REPACKS} repacks")

    per_chip = target.spec["chip"]["cores"]
    available = per_chip * target.spec["system"]["chips"]
    if len(cores) > available:
        raise NeurocompileError(f"model needs {len(cores)} cores; target {target.chip} offers {available} ({target.spec['system']['chips']} chips x {per_chip} cores)")
    for k, c in enumerate(cores):
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
