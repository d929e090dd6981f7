"""Energy and power of a run, from its measured activity and the target's constants.

Per inference (one sample of T steps), with the constants of the target file's `[energy]` table:

    E = synaptic events x synaptic_op_j            (after failures: a failed spike costs nothing;
                                                     a spike product's events are those of
                                                     coincidence neurons on cores:
                                                     semantics.products.product_events)
      + neurons x T x neuron_update_j              (every IF and relay neuron on a core updates
                                                     every step)
      + spike messages x spike_intra_chip_j        (a nonzero output sent on an edge)
        (x spike_inter_chip_j instead where the edge leaves its chip or reaches the host)
      + static_power_per_core_w x cores x T x step_time_s
    P = E / (T x step_time_s)

and the MST paper's model (its Eq. 10): P = total spikes / 1 ms x alpha, reported in units of
alpha W, counting the spikes that get past random spike masking (a population whose spikes all
go through one mask counts its survivors; any other population its emitted spikes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ir.connectivity import source_fanout
from ..ir.graph import Network
from ..ir.indexing import operand_views
from ..ir.interpret import spike_rates
from ..ir.nodes import IFPopulation, Product, Relay
from ..ir.result import RunResult
from ..targets import Target

PAPER_STEP_S = 1e-3  # the MST paper's assumption: one time step takes 1 ms


def _chips(placement: dict) -> dict[str, set]:
    """Population -> the chips its neurons are on ("host" for nodes on the system's host)."""
    chips: dict[str, set] = {h["node"]: set(h["chips"]) if h.get("runs_on") == "chip processors" else {"host"} for h in placement["host_ops"]}
    for core in placement["cores"]:
        for sl in core["slices"]:
            chips.setdefault(sl["population"], set()).add(core["chip"])
    return chips


def _edges(net: Network) -> list[tuple[str, str, str, float, str]]:
    """(edge name, source, target, failure probability, mask group) of every block and operand."""
    edges = [(b.name, net.source_of(b).name, net.target_of(b).name, b.failure, b.failure_group) for b in net.synapses()]
    for prod in (p for p in net.populations() if isinstance(p, Product)):
        for side, src in zip("ab", net.operands(prod.name)):
            edges.append((f"{prod.name}:{side}", src.name, prod.name, getattr(prod, f"failure_{side}"), getattr(prod, f"failure_group_{side}")))
    return edges


def _delivered_spikes(net: Network, result: RunResult, edges) -> dict[str, np.ndarray]:
    out = {}
    for pop in net.populations():
        if not isinstance(pop, IFPopulation):
            continue
        mine = [e for e in edges if e[1] == pop.name]
        groups = {e[4] for e in mine}
        if mine and all(e[3] > 0 for e in mine) and len(groups) == 1:
            out[pop.name] = result.messages[mine[0][0]]
        else:
            out[pop.name] = result.spikes[pop.name]
    return out


def run_energy(net: Network, target: Target, placement: dict, result: RunResult) -> dict[str, Any]:
    """Mean per inference over the run's samples: per population and in total."""
    e = target.energy
    steps = result.steps
    chips = _chips(placement)
    edges = _edges(net)
    per_pop: dict[str, dict[str, float]] = {}

    def row(name: str) -> dict[str, float]:
        return per_pop.setdefault(name, {"synaptic_events": 0.0, "neuron_updates": 0.0, "messages_out": 0.0, "energy_j": 0.0})

    for name, src, dst, _, _ in edges:
        sent = float(np.mean(result.messages[name]))
        src_chips, dst_chips = chips.get(src, {"host"}), chips.get(dst, {"host"})
        local = src_chips == dst_chips and len(src_chips) == 1 and "host" not in src_chips
        r = row(src)
        r["messages_out"] += sent
        r["energy_j"] += sent * (e["spike_intra_chip_j"] if local else e["spike_inter_chip_j"])
        if name in result.events:
            events = float(np.mean(result.events[name]))
            t = row(dst)
            t["synaptic_events"] += events
            t["energy_j"] += events * e["synaptic_op_j"]
    for pop in net.populations():
        if isinstance(pop, Product) and pop.name in result.events:
            r = row(pop.name)
            r["synaptic_events"] += float(np.mean(result.events[pop.name]))
            r["energy_j"] += r["synaptic_events"] * e["synaptic_op_j"]
        if isinstance(pop, (IFPopulation, Relay)):
            r = row(pop.name)
            r["neuron_updates"] = float(pop.size * steps)
            r["energy_j"] += r["neuron_updates"] * e["neuron_update_j"]
    cores = placement["totals"]["cores"]
    duration = steps * e["step_time_s"]
    static = e["static_power_per_core_w"] * cores * duration
    dynamic = sum(r["energy_j"] for r in per_pop.values())
    delivered = float(np.mean(sum(_delivered_spikes(net, result, edges).values(), np.zeros(result.output.shape[0]))))
    return {
        "per_population": per_pop,
        "synaptic_events": float(np.mean(result.synaptic_ops)),
        "spikes": float(np.mean(result.total_spikes)),
        "spikes_delivered": delivered,
        "dynamic_energy_j": dynamic,
        "static_energy_j": static,
        "energy_per_inference_j": dynamic + static,
        "power_w": (dynamic + static) / duration,
        "step_time_s": e["step_time_s"],
        "paper_power_alpha_w": delivered / PAPER_STEP_S,
    }


def expected_activity(net: Network, post: dict[str, np.ndarray]) -> RunResult:
    """One step of the activity the ANN predicts, from its activations `post` ([B, n] per
    population, ir.interpret.evaluate), as a RunResult of one sample: an IF neuron spikes at the
    rate activation / threshold, a graded source sends whenever its value is nonzero, and a mask
    lets 1 - p of the spikes (or synaptic events) through. Fed to `run_energy`, it estimates the
    energy per step without running the network."""
    spiking = spike_rates(net, post)
    rate = {pop.name: spiking[pop.name].mean(axis=0) if pop.name in spiking else (post[pop.name] != 0).mean(axis=0) for pop in net.populations()}
    events, messages = {}, {}
    for name, src, _, p, _ in _edges(net):
        messages[name] = np.array([rate[src].sum() * (1.0 - p)])
    for block in net.synapses():
        src = net.source_of(block)
        events[block.name] = np.array([rate[src.name] @ source_fanout(block, src.size) * (1.0 - block.failure)])
        if block.failure_mode == "synapse":
            messages[block.name] = np.array([rate[src.name].sum()])
    for prod in (p for p in net.populations() if isinstance(p, Product)):
        a, b = net.operands(prod.name)
        ra, rb = operand_views(prod, rate[a.name][None] * (1.0 - prod.failure_a), rate[b.name][None] * (1.0 - prod.failure_b))
        meets = float((ra.sum(axis=-2) * rb.sum(axis=-1)).sum())  # independent operands
        events[prod.name] = np.array([float(ra.sum()) * rb.shape[-1] + float(rb.sum()) * ra.shape[-2] + meets])  # semantics.products.product_events
    counts = {p.name: rate[p.name][None] for p in net.populations() if isinstance(p, IFPopulation)}
    synops = sum(events.values(), np.zeros(1))
    return RunResult("ann-estimate", 1, np.zeros((1, net.readout.size)), np.zeros((1, net.readout.size)), counts, synops,
                     events=events, messages=messages)
