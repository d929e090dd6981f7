"""Where a population's spikes go: the distinct destination units (slices, cores, the host) of
each neuron's synapses. Placement bounds fan-out axons with it; the traffic estimate counts
messages with it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir.graph import Network
from ..ir.nodes import Product
from .leads import LeadPattern, run_starts
from .resources import fanin_patterns

HOST = -1  # the destination "core" of spikes that go to the host


class FaninCache(dict):
    """(target, source) -> that pair's fan-in pattern (resources.fanin_patterns), built once."""

    def __init__(self, net: Network):
        super().__init__()
        self.net = net

    def get_pattern(self, target: str, source: str):
        if (target, source) not in self:
            for src, pattern in fanin_patterns(self.net, target):
                self[(target, src)] = pattern
        return self[(target, source)]

    def sources(self, target: str) -> list[str]:
        return sorted({self.net.source_of(b).name for b in self.net.incoming(target)})


def destinations(net: Network, name: str, owner: dict[str, np.ndarray], units: int, fanin: FaninCache | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """The distinct (neuron, destination unit) pairs of a population's synapses, given the unit
    (a slice or a core) of every placed neuron; HOST stands for the host. None: no synapses."""
    pop = net.node(name)
    fanin = fanin if fanin is not None else FaninCache(net)
    srcs: list[np.ndarray] = []
    dests: list[np.ndarray] = []
    for tgt in sorted({net.target_of(b).name for b in net.outgoing(name)}):
        pattern = fanin.get_pattern(tgt, name)
        if isinstance(pattern, LeadPattern):
            own = owner[tgt] if tgt in owner else np.full(net.node(tgt).size, HOST, np.int64)
            s, d = pattern.runs(own)
        else:
            m = pattern.tocoo()
            s, d = m.col, (owner[tgt][m.row] if tgt in owner else np.full(m.col.size, HOST))
        srcs.append(s)
        dests.append(d)
    if any(isinstance(net.node(succ), Product) for succ in net.graph.successors(name)):
        srcs.append(np.arange(pop.size))  # operands of a spike product: every neuron to the host
        dests.append(np.full(pop.size, HOST))
    if not srcs:
        return None
    return distinct_pairs(np.concatenate(srcs), np.concatenate(dests), pop.size)


def distinct_pairs(neurons: np.ndarray, units: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (neuron, unit) pairs, as one integer key each (unit HOST = -1 maps to 0).
    Keyed unit-major, the pairs arrive as runs already in order (a run of a lead's inputs, on
    units that grow with the neuron index), which a stable sort (timsort) merges in near-linear
    time; np.unique's quicksort spends most of a Swin-T placement on them."""
    keys = (units.astype(np.int64) + 1) * n + neurons
    keys.sort(kind="stable")
    unit, neuron = np.divmod(keys[run_starts(keys)], n)
    return neuron, unit - 1


@dataclass
class Messages:
    """Per neuron of a placed population, the messages one of its spikes sends: a copy to its
    own core (0 or 1; it stays local), to other cores or the host, and of those the ones that
    leave its chip (to another chip or the host)."""

    local: np.ndarray
    inter_core: np.ndarray
    inter_chip: np.ndarray


def fan_out(net: Network, owner: dict[str, np.ndarray], units: int, fanin: FaninCache | None = None) -> np.ndarray:
    """Output axons per unit: each neuron needs one per distinct destination unit."""
    fanin = fanin if fanin is not None else FaninCache(net)
    out = np.zeros(units, np.int64)
    for name, own in owner.items():
        pairs = destinations(net, name, owner, units, fanin)
        if pairs is not None:
            out += np.bincount(own[pairs[0]], minlength=units).astype(np.int64)
    return out


def fan_out_and_messages(net: Network, owner: dict[str, np.ndarray], chip_of: np.ndarray,
                         fanin: FaninCache | None = None) -> tuple[np.ndarray, dict[str, Messages]]:
    """`fan_out` of cores (`chip_of`: each core's chip), and from the same destinations each
    placed population's `Messages`: the traffic estimate reads them instead of finding every
    neuron's destinations again."""
    fanin = fanin if fanin is not None else FaninCache(net)
    units = chip_of.size
    out = np.zeros(units, np.int64)
    messages = {}
    for name, own in owner.items():
        n = own.size
        pairs = destinations(net, name, owner, units, fanin)
        if pairs is None:
            messages[name] = Messages(*(np.zeros(n, np.int32) for _ in range(3)))
            continue
        neuron, dest = pairs
        here = own[neuron]
        out += np.bincount(here, minlength=units).astype(np.int64)
        same = dest == here
        off_chip = (dest == HOST) | (chip_of[here] != chip_of[np.maximum(dest, 0)])
        local = np.bincount(neuron[same], minlength=n)
        counts = (local, np.bincount(neuron, minlength=n) - local, np.bincount(neuron[off_chip], minlength=n))
        messages[name] = Messages(*(c.astype(np.int32) for c in counts))  # a neuron sends at most a core's fan-out
    return out, messages


def slices_reached(net: Network, source: str, tgt: str, local: np.ndarray, fanin: FaninCache) -> np.ndarray:
    """Per neuron of `source`: how many slices of `tgt` its synapses reach (`local`: the slice
    of each neuron of `tgt`)."""
    pattern = fanin.get_pattern(tgt, source)
    if isinstance(pattern, LeadPattern):
        s, u = pattern.runs(local)
    else:
        m = pattern.tocoo()
        s, u = m.col, local[m.row]
    n = net.node(source).size
    return np.bincount(distinct_pairs(s, u, n)[0], minlength=n)


def reaches_host(net: Network, source: str, placed: dict, fanin: FaninCache) -> np.ndarray:
    """Per neuron of `source`: 1 where it sends to the host (a host op, a product, the readout
    off the cores), which takes one fan-out axon however many host nodes it feeds."""
    n = net.node(source).size
    host = np.zeros(n, bool)
    for tgt in {net.target_of(b).name for b in net.outgoing(source)} - set(placed):
        host[slices_reached(net, source, tgt, np.zeros(net.node(tgt).size, np.int64), fanin) > 0] = True
    if any(isinstance(net.node(succ), Product) for succ in net.graph.successors(source)):
        host[:] = True
    return host.astype(np.int64)
