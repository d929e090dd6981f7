"""Where a population's spikes go: the distinct destination units (slices, cores, the host) of
each neuron's synapses. Placement bounds fan-out axons with it; the traffic estimate counts
messages with it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir.graph import Network
from ..ir.nodes import Product
from .counting import count_distinct, count_in_order, count_messages, count_per_neuron, place_by_neuron
from .leads import LeadPattern, run_starts, unique_pairs
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
    pieces = destination_pieces(net, name, owner, fanin)
    if not pieces:
        return None
    return distinct_pairs(np.concatenate([s for s, _ in pieces]), np.concatenate([d for _, d in pieces]), net.node(name).size)


def destination_pieces(net: Network, name: str, owner: dict[str, np.ndarray], fanin: FaninCache | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """A population's (neuron, destination unit) pairs, one piece per target, repeats included."""
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
    for succ in sorted(set(net.graph.successors(name))):
        prod = net.node(succ)
        if not isinstance(prod, Product):
            continue
        if succ not in owner:  # operands of a spike product on the host: every neuron to it
            srcs.append(np.arange(pop.size))
            dests.append(np.full(pop.size, HOST))
            continue
        for s, d in operand_destinations(net, prod, name, owner[succ]):
            srcs.append(s)
            dests.append(d)
    return list(zip(srcs, dests))


def row_width(pop) -> int:
    """Elements per row of a host node: the last axis (softmax, layer norm; a product's output
    row: N)."""
    return int(pop.shape[-1]) if len(pop.shape) else 1


def product_operands(net: Network, prod: Product) -> list[tuple[str, np.ndarray, bool]]:
    """Per operand: its name, and its neurons (-1: padding) read by each output row, [rows, K]
    for A, or by every row of a lead, [leads, K * N] for B; and which of the two it is (True:
    B). Row r of the output belongs to lead r // M."""
    a, b = net.operands(prod.name)
    lead = tuple(prod.shape[:-2])
    m, k = prod.a_shape[-2:]
    n = prod.b_shape[-1]
    ai = prod.a_index if prod.a_index is not None else np.arange(a.size).reshape(prod.a_shape)
    bi = prod.b_index if prod.b_index is not None else np.arange(b.size).reshape(prod.b_shape)
    return [(a.name, np.broadcast_to(ai, lead + (m, k)).reshape(-1, k), False),
            (b.name, np.broadcast_to(bi, lead + (k, n)).reshape(-1, k * n), True)]


def operand_destinations(net: Network, prod: Product, source: str, owner: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(neuron of `source`, unit) pairs of its spikes into a product whose output rows run on the
    units `owner` (per output element): A's neurons go to their row's unit, B's to the units of
    every row of their lead."""
    m = prod.a_shape[-2]
    row_unit = owner[:: row_width(prod)]
    out = []
    for name, index, is_b in product_operands(net, prod):
        if name != source:
            continue
        if not is_b:
            units = np.broadcast_to(row_unit[:, None], index.shape)
        else:  # distinct (lead, unit) pairs, then every neuron of the lead to each
            lead, unit = unique_pairs(np.arange(row_unit.size) // m, row_unit + 1)  # HOST is -1
            index = index[lead]
            units = np.broadcast_to(unit[:, None] - 1, index.shape)
        valid = index >= 0
        out.append((index[valid], units[valid]))
    return out


def distinct_pairs(neurons: np.ndarray, units: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (neuron, unit) pairs, as one integer key each (unit HOST = -1 maps to 0).
    Keyed unit-major, the pairs arrive as runs already in order (a run of a lead's inputs, on
    units that grow with the neuron index), which a stable sort (timsort) merges in near-linear
    time; np.unique's quicksort spends most of a Swin-T placement on them."""
    keys = (units.astype(np.int64) + 1) * n + neurons
    keys.sort(kind="stable")
    unit, neuron = np.divmod(keys[run_starts(keys)], n)
    return neuron, unit - 1


def grouped_by_neuron(pieces: list[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(neuron, unit) pairs in pieces, grouped by neuron in two linear passes (counting.py):
    neuron s's units are units[first[s]:first[s + 1]], repeats included."""
    first = np.zeros(n + 1, np.int64)
    for s, _ in pieces:
        count_per_neuron(s, first)
    np.cumsum(first, out=first)
    units = np.empty(int(first[-1]), np.int32)
    next_slot = first[:-1].copy()
    for s, d in pieces:
        place_by_neuron(s, d, next_slot, units)
    return first, units


def distinct_units_per_neuron(neurons: np.ndarray, units: np.ndarray, n: int) -> np.ndarray:
    """Per neuron 0..n-1, the distinct units among its (neuron, unit) pairs: one pass when the
    units are nondecreasing along the pairs, else grouped by neuron first (counting.py)."""
    if not units.size:
        return np.zeros(n, np.int64)
    if np.all(units[1:] >= units[:-1]):
        return count_in_order(neurons, units, n)  # compiled for their own integer types: no 64-bit copies
    first, by_neuron = grouped_by_neuron([(neurons, units)], n)
    return count_distinct(first, by_neuron, int(units.max()) + 1)


@dataclass
class Messages:
    """Per neuron of a sender (a population on the cores, a host node), the messages one of its
    spikes or values sends: a copy to its own unit (0 or 1; it stays local), to other units
    (cores, processors, the host), and of those the ones that leave its chip (to another chip,
    or to or from the host)."""

    local: np.ndarray
    inter_core: np.ndarray
    inter_chip: np.ndarray


def fan_out_and_messages(net: Network, owner: dict[str, np.ndarray], chip_of: np.ndarray,
                         fanin: FaninCache | None = None) -> tuple[np.ndarray, dict[str, Messages]]:
    """Output axons per unit (`chip_of`: each unit's chip) and, from the same destinations, the
    `Messages` of every sender in `owner`: the traffic estimate reads them instead of finding
    every neuron's destinations again. Units are cores and, where host nodes run on a chip's
    processors, those processors (processors.place_host_ops); HOST in `owner` is the system's
    host, whose messages all leave the chips."""
    fanin = fanin if fanin is not None else FaninCache(net)
    out = np.zeros(chip_of.size, np.int64)
    chip_of = np.ascontiguousarray(chip_of, np.int64)
    messages = {}
    for name, own in owner.items():
        n = own.size
        # a Swin-T's 26 M senders: 32 bits per count, not 64
        counts = Messages(*(np.zeros(n, np.int32) for _ in range(3)))
        pieces = destination_pieces(net, name, owner, fanin)
        if pieces:
            first, by_neuron = grouped_by_neuron(pieces, n)
            del pieces
            count_messages(first, by_neuron, np.ascontiguousarray(own, np.int64), chip_of, out, counts.local, counts.inter_core, counts.inter_chip)
        messages[name] = counts
    return out, messages


def slices_reached(net: Network, source: str, tgt: str, local: np.ndarray, fanin: FaninCache) -> np.ndarray:
    """Per neuron of `source`: how many slices of `tgt` its synapses reach (`local`: the slice
    of each neuron of `tgt`)."""
    pattern = fanin.get_pattern(tgt, source)
    if isinstance(pattern, LeadPattern):
        counted = pattern.distinct_units(local, net.node(source).size)
        if counted is not None:
            return counted
        s, u = pattern.runs(local)
    else:
        m = pattern.tocoo()
        s, u = m.col, local[m.row]
    return distinct_units_per_neuron(s, u, net.node(source).size)


def reaches_host(net: Network, source: str, placed: dict, fanin: FaninCache, per_node: bool = False) -> np.ndarray:
    """Per neuron of `source`: the fan-out axons its spikes into host nodes (host ops, products,
    a readout off the cores) take. On the system's host, one however many it feeds; with host
    nodes on the chips' processors (`per_node`), one per host node it feeds, each of which
    takes its spikes on one chip (processors.place_host_ops)."""
    n = net.node(source).size
    count = np.zeros(n, np.int64)
    for tgt in sorted({net.target_of(b).name for b in net.outgoing(source)} - set(placed)):
        count += slices_reached(net, source, tgt, np.zeros(net.node(tgt).size, np.int64), fanin) > 0
    count += sum(isinstance(net.node(succ), Product) for succ in set(net.graph.successors(source)))
    return count if per_node else np.minimum(count, 1)
