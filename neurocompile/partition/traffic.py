"""Spike traffic of a placement: how many spike messages per step leave their core or their chip.

A neuron's spike is sent once to every distinct core its synapses reach (Loihi's fan-out axons);
a copy to its own core stays local. Host nodes send and receive too: on a chip's processors
(processors.py) their messages stay on that chip or cross to another, on the system's host
every one of them leaves the chips. Weighted by each sender's expected messages per step
(message_rates: an IF neuron's spike rate from the ANN's activations, a graded sender's share of
nonzero values) or, without rates, by one each.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ir.graph import Network
from ..ir.interpret import spike_rates
from ..targets import Target
from .fanout import HOST, FaninCache, Messages, destinations, fan_out_and_messages
from .processors import place_host_ops, units


def core_owner(net: Network, placement: dict) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per placed population, the core index of each neuron; and each core's chip."""
    owner = {p.name: np.full(p.size, HOST, np.int64) for p in net.populations() if not p.on_host}
    for k, core in enumerate(placement["cores"]):
        for sl in core["slices"]:
            owner[sl["population"]][sl["start"]:sl["stop"]] = k
    chips = np.array([c["chip"] for c in placement["cores"]], np.int64)
    return owner, chips


def message_rates(net: Network, post: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per population, the messages each neuron sends per step as the ANN's activations `post`
    ([B, n] each, ir.interpret.evaluate) predict them: an IF neuron's spike rate, a graded
    sender's (input, host node) share of samples where its value is nonzero."""
    spiking = spike_rates(net, post)
    return {p.name: (spiking[p.name] if p.name in spiking else post[p.name] != 0).mean(axis=0) for p in net.populations()}


def placement_units(net: Network, target: Target, placement: dict, fanin: FaninCache | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per sender (placed population or host node), the unit of each neuron; and each unit's
    chip (processors.units)."""
    core_of, chips = core_owner(net, placement)
    fanin = fanin if fanin is not None else FaninCache(net)
    host_chips = place_host_ops(net, target, core_of, chips, fanin)[0]
    return units(core_of, chips, host_chips)


def _sent(net: Network, target: Target, placement: dict, rates: dict[str, np.ndarray] | None):
    """Per sender: (weight of each message, the sending unit, the receiving unit), one message
    per neuron and distinct unit reached; and each unit's chip."""
    owner, chip_of = placement_units(net, target, placement)
    for name, own in owner.items():
        pairs = destinations(net, name, owner, chip_of.size)
        if pairs is None:
            continue
        neuron, dest = pairs
        weight = rates[name][neuron] if rates is not None and name in rates else np.ones(neuron.size)
        yield weight, own[neuron], dest, chip_of


def placement_messages(net: Network, target: Target, placement: dict, fanin: FaninCache | None = None) -> dict[str, Messages]:
    """Per sender, the messages each neuron's spike sends (fanout.Messages)."""
    owner, chip_of = placement_units(net, target, placement, fanin)
    return fan_out_and_messages(net, owner, chip_of, fanin)[1]


def spike_traffic(net: Network, target: Target, placement: dict, rates: dict[str, np.ndarray] | None = None,
                  fanin: FaninCache | None = None, messages: dict[str, Messages] | None = None) -> dict[str, Any]:
    """`messages`: the placement's, where placement already counted them (else counted here)."""
    messages = messages if messages is not None else placement_messages(net, target, placement, fanin)
    local = inter_core = inter_chip = 0.0
    for name in sorted(messages):
        sent = messages[name]
        weight = rates[name] if rates is not None and name in rates else np.ones(sent.local.size)
        local += float(weight @ sent.local)
        inter_core += float(weight @ sent.inter_core)
        inter_chip += float(weight @ sent.inter_chip)
    return {"local": local, "inter_core": inter_core, "inter_chip": inter_chip, "weighted_by": "ANN rates" if rates is not None else "one spike per neuron"}


def chip_traffic(net: Network, target: Target, placement: dict, rates: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Messages [chips + 1, chips + 1] from each chip (its cores and processors) to each chip (its
    own: between its cores and processors), the last row and column the system's host; a copy
    to the sender's own core is not a message."""
    n = 1 + max((c["chip"] for c in placement["cores"]), default=0)
    matrix = np.zeros((n + 1, n + 1))
    for weight, here, dest, chip_of in _sent(net, target, placement, rates):
        sent = dest != here
        side = [np.where(u == HOST, n, chip_of[np.maximum(u, 0)]) for u in (here, dest)]
        np.add.at(matrix, (side[0][sent], side[1][sent]), weight[sent])
    return matrix
