"""Re-checks a placement against the target's limits, from the artifact alone: every core's
figures are recomputed from the network, compared with what placement.json claims, and held
against the per-core limits."""

from __future__ import annotations

from ..ir.graph import Network
from ..targets import Target
from .resources import fanin_patterns, slice_cost

LIMITS = (("neurons", "neurons"), ("synapse_bits", "synapse_memory_bits"), ("fan_in_axons", "fan_in_axons"), ("fan_out_axons", "fan_out_axons"))


def placement_problems(net: Network, target: Target, placement: dict, recompute: bool = True) -> list[str]:
    """Every way the placement breaks the target's limits or misses neurons. `recompute=False`
    holds the figures placement.json states against the limits without recomputing them from
    the network (which takes seconds per million neurons): addresses, populations, coverage and
    stated figures are still checked."""
    core_spec = target.core
    wbits = target.numerics.weight_mantissa_bits
    per_chip = target.spec["chip"]["cores"]
    problems: list[str] = []
    covered: dict[str, list[tuple[int, int]]] = {}
    seen = set()
    patterns_of = {}
    for k, core in enumerate(placement["cores"]):
        where = f"core {k} (chip {core['chip']}, core {core['core']})"
        if not 0 <= core["core"] < per_chip or not 0 <= core["chip"] < target.spec["system"]["chips"]:
            problems.append(f"{where}: address outside the target ({target.spec['system']['chips']} chips x {per_chip} cores)")
        if (core["chip"], core["core"]) in seen:
            problems.append(f"{where}: address used twice")
        seen.add((core["chip"], core["core"]))
        neurons = bits = axons = 0
        for s in core["slices"]:
            pop = s["population"]
            if pop not in net:
                problems.append(f"{where}: unknown population '{pop}'")
                continue
            covered.setdefault(pop, []).append((s["start"], s["stop"]))
            if not recompute:
                continue
            if pop not in patterns_of:
                patterns_of[pop] = fanin_patterns(net, pop)
            cost = slice_cost(patterns_of[pop], s["start"], s["stop"], core_spec, wbits)
            neurons, bits, axons = neurons + cost.neurons, bits + cost.synapse_bits, axons + cost.fan_in_axons
        for key, value in (("neurons", neurons), ("synapse_bits", bits), ("fan_in_axons", axons)):
            if recompute and core[key] != value:
                problems.append(f"{where}: placement.json says {key} = {core[key]}, recomputed {value}")
        for key, limit in LIMITS:
            if core[key] > core_spec[limit]:
                problems.append(f"{where}: {key} {core[key]} exceeds the core's {core_spec[limit]}")
    for pop in net.populations():
        if pop.on_host:
            continue
        spans = sorted(covered.get(pop.name, []))
        expected = 0
        for start, stop in spans:
            if start != expected:
                problems.append(f"population '{pop.name}': neurons {expected}..{start} are {'placed twice' if start < expected else 'not placed'}")
            expected = max(expected, stop)
        if expected != pop.size:
            problems.append(f"population '{pop.name}': neurons {expected}..{pop.size} are not placed")
    return problems
