"""Spike traffic of a placement: how many spike messages per step leave their core or their chip.

A neuron's spike is sent once to every distinct core its synapses reach (Loihi's fan-out axons);
a copy to its own core stays local. Weighted by each neuron's expected spikes per step (from
ir.interpret.spike_rates: the ANN's activations over the threshold) or, without rates, by one
spike each.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ir.graph import Network
from .fanout import HOST, FaninCache, Messages, destinations, fan_out_and_messages


def core_owner(net: Network, placement: dict) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per placed population, the core index of each neuron; and each core's chip."""
    owner = {p.name: np.full(p.size, HOST, np.int64) for p in net.populations() if not p.on_host}
    for k, core in enumerate(placement["cores"]):
        for sl in core["slices"]:
            owner[sl["population"]][sl["start"]:sl["stop"]] = k
    chips = np.array([c["chip"] for c in placement["cores"]], np.int64)
    return owner, chips


def _sent(net: Network, placement: dict, rates: dict[str, np.ndarray] | None, fanin: FaninCache | None):
    """Per placed population: (weight of each message, the sending core, the receiving core or
    HOST), one message per neuron and distinct core reached; and each core's chip."""
    owner, chips = core_owner(net, placement)
    units = len(placement["cores"])
    for name, own in owner.items():
        pairs = destinations(net, name, owner, units, fanin)
        if pairs is None:
            continue
        neuron, dest = pairs
        weight = rates[name][neuron] if rates is not None and name in rates else np.ones(neuron.size)
        yield weight, own[neuron], dest, chips


def placement_messages(net: Network, placement: dict, fanin: FaninCache | None = None) -> dict[str, Messages]:
    """Per placed population, the messages each neuron's spike sends (fanout.Messages)."""
    owner, chips = core_owner(net, placement)
    return fan_out_and_messages(net, owner, chips, fanin)[1]


def spike_traffic(net: Network, placement: dict, rates: dict[str, np.ndarray] | None = None, fanin: FaninCache | None = None,
                  messages: dict[str, Messages] | None = None) -> dict[str, Any]:
    """`messages`: the placement's, where placement already counted them (else counted here)."""
    messages = messages if messages is not None else placement_messages(net, placement, fanin)
    local = inter_core = inter_chip = 0.0
    for name in sorted(messages):
        sent = messages[name]
        weight = rates[name] if rates is not None and name in rates else np.ones(sent.local.size)
        local += float(weight @ sent.local)
        inter_core += float(weight @ sent.inter_core)
        inter_chip += float(weight @ sent.inter_chip)
    return {"local": local, "inter_core": inter_core, "inter_chip": inter_chip, "weighted_by": "ANN rates" if rates is not None else "one spike per neuron"}


def chip_traffic(net: Network, placement: dict, rates: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Messages [chips, chips + 1] from each chip to each chip (its own: between its cores) and,
    in the last column, to the host; a copy to the sender's own core is not a message."""
    n = 1 + max((c["chip"] for c in placement["cores"]), default=0)
    matrix = np.zeros((n, n + 1))
    for weight, here, dest, chips in _sent(net, placement, rates, None):
        sent = dest != here
        to = np.where(dest == HOST, n, chips[np.maximum(dest, 0)])
        np.add.at(matrix, (chips[here][sent], to[sent]), weight[sent])
    return matrix
