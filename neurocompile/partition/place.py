"""Placement: populations -> core slices -> cores -> chips.

Each population is cut into the longest slices that fit one core under every limit (fan-out
included, which depends on how its targets are cut); slices then share cores where they fit
together, and populations fed elementwise (the residual stream), which can be cut anywhere, are
poured into the room the others leave. Cores are filled a stripe of the network at a time (a
fraction of each layer), so that a token's layers share a chip; chips are runs of consecutive
cores. The `naive` strategy, one slice per core in topological order, is kept for comparison.
Nodes that run off the neurocores (the input encoding, host ops, products) are listed as host
ops with where they run and why (processors.py).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any

import numpy as np

from ..errors import NeurocompileError
from ..ir.graph import Network
from ..targets import Target
from .counting import cores_with_room, first_recent, open_cores_until_one_fits, pour
from .fanout import FaninCache, Messages, fan_out_and_messages, reaches_host, slices_reached
from .leads import LeadPattern, run_starts
from .positions import neuron_positions
from .processors import place_host_ops, processors_modelled, units
from .resources import Cost, axon_bits_each, axons_of, neuron_patterns, slice_cost
from .slicing import TokenwiseSlicer


def _one_neuron_fits(cost: Cost, core: dict, pop: str, neuron: int) -> None:
    if not cost.fits(core):
        raise NeurocompileError(
            f"population '{pop}': neuron {neuron} alone needs {cost.fan_in_axons} fan-in axons and {cost.synapse_bits} synapse bits; "
            f"a core has {core['fan_in_axons']} axons and {core['synapse_memory_bits']} bits"
        )


# Neurons checked before any block is built whole: the first, middle and last of each
# population (padding and shifted windows make the ends differ from the rest).
PROBES = (0.0, 0.5, 1.0)


def check_single_neurons(net: Network, target: Target) -> None:
    """Refuse, before the costly slicing, a population one of whose neurons cannot fit a core
    alone; slicing then checks every neuron. Costs only a few rows per population."""
    core, wbits = target.core, target.numerics.weight_mantissa_bits
    for pop in net.populations():
        if pop.on_host:
            continue
        for neuron in sorted({round(f * (pop.size - 1)) for f in PROBES}):
            _one_neuron_fits(slice_cost(neuron_patterns(net, pop.name, neuron), 0, 1, core, wbits), core, pop.name, neuron)


def _longest_fit(patterns, start: int, n: int, core: dict, wbits: int, pop: str, cap: int, hint: int = 1) -> tuple[int, Cost]:
    """The largest stop such that start..stop fits one core (every limit grows with the slice,
    so fitting is monotone in stop). The search gallops up from start + `hint`, the previous
    slice's length: a population's slices are mostly alike, so a slice usually costs two
    evaluations of windows its own size; a binary search over a core's worth of rows would
    sort that whole window's synapses for every slice."""
    best = slice_cost(patterns, start, start + 1, core, wbits)
    _one_neuron_fits(best, core, pop, start)
    lo, hi = start + 1, min(n, start + core["neurons"], start + cap)  # lo fits; nothing above hi can
    step = max(1, hint - 1)
    while lo < hi:  # gallop: lo + step, then steps of 1, 2, 4, ... until one does not fit
        probe = min(hi, lo + step)
        cost = slice_cost(patterns, start, probe, core, wbits)
        if not cost.fits(core):
            hi = probe - 1
            break
        lo, best = probe, cost
        step = 1 if probe == start + hint else step * 2
    while lo < hi:  # largest stop in (lo, hi] that fits
        mid = (lo + hi + 1) // 2
        cost = slice_cost(patterns, start, mid, core, wbits)
        if cost.fits(core):
            lo, best = mid, cost
        else:
            hi = mid - 1
    return lo, best


def _slice_population(net: Network, target: Target, name: str, pats: list, cap: int, fast: bool = True,
                      cuts: np.ndarray | None = None) -> list[tuple[str, int, int, Cost]]:
    """A population cut into the longest slices that fit one core (at most `cap` neurons), and
    that stop at each of `cuts` (neuron indices, sorted) they reach."""
    core, wbits = target.core, target.numerics.weight_mantissa_bits
    n = net.node(name).size
    tokenwise = fast and pats and all(isinstance(m, LeadPattern) for _, m in pats)
    slicer = TokenwiseSlicer([m for _, m in pats], n, core, wbits) if tokenwise else None
    cuts = np.append(cuts if cuts is not None else np.zeros(0, np.int64), n).tolist()
    out = []
    start, length = 0, 1
    while start < n:
        most = min(cap, cuts[bisect_right(cuts, start)] - start)
        found = slicer.longest(start, most) if slicer else None
        stop, cost = found if found else _longest_fit(pats, start, n, core, wbits, name, most, length)
        out.append((name, start, stop, cost))
        start, length = stop, stop - start
    return out


def _slices(net: Network, target: Target, patterns: dict, caps: dict[str, int], fast: bool = True) -> list[tuple[str, int, int, Cost]]:
    """Every population cut into the longest slices that fit one core (at most `caps` neurons)."""
    return [sl for name, pats in patterns.items() for sl in _slice_population(net, target, name, pats, caps.get(name, net.node(name).size), fast)]


# The packing goes in stripes of about a STRIPES_PER_CHIP-th of a chip (see _pack).
STRIPES_PER_CHIP = 4


def _stripe_of(slices, stripe_cores: int, positions: dict[str, np.ndarray], span: int, stripes: int | None = None):
    """stripe_of(population, neurons) -> the stripe of each neuron: the network's slices make
    about len(slices) / stripe_cores stripes (or `stripes`), stripe b holding the neurons whose
    position (positions.py) lies in the b-th fraction of the input's. Zero size: one stripe."""
    if stripes is None:
        stripes = max(1, -(-len(slices) // stripe_cores)) if stripe_cores else 1

    def stripe_of(name: str, neurons):
        return positions[name][neurons] * stripes // span

    return stripe_of


# How many of the most recently opened cores a slice may join: enough to fill the tails that
# slicing leaves, few enough that a core holds neighbouring layers (short, local spike paths).
# Only those on the newest chip count (counting.first_recent): on Swin-T, joining the previous
# chip's cores cost 3 to 6 % more messages leaving the chips at the ANN's rates for 0.2 % fewer
# cores.
PACK_WINDOW = 16
STRATEGIES = ("packed", "naive")


def _affinity(patterns: list, start: int, stop: int, core_of: dict[str, np.ndarray], ks: range) -> np.ndarray:
    """Per core of `ks`: how many distinct source neurons placed there reach this slice. Putting
    the slice on that core turns those spikes' inter-core messages into local ones."""
    score = np.zeros(len(ks), np.int64)
    for src, m in patterns:
        if src not in core_of:
            continue  # the host (the input) or not placed yet
        at = core_of[src][axons_of(m, start, stop)[0]] - ks.start
        score += np.bincount(at[(at >= 0) & (at < len(ks))], minlength=len(ks))
    return score


def _pulled(net: Network, patterns: dict, free: frozenset, fanin: FaninCache, core: dict, wbits: int) -> frozenset:
    """The poured populations that take their readers' position (positions.py): placed with its
    readers, each of a neuron's inputs sends it one message from afar; placed with its inputs,
    it sends one to every core of its readers that holds a neuron it feeds. So those whose
    readers take more cores than they have inputs, and are fed from the cores: one fed by a host
    node (a head's output) stays beside that node's processor."""
    pulled = set()
    for name in free:
        if any(net.node(src).on_host for src, _ in patterns[name]):
            continue
        if _reader_cores(net, name, patterns, fanin, core, wbits) > len(patterns[name]):
            pulled.add(name)
    return frozenset(pulled)


def _reader_cores(net: Network, name: str, patterns: dict, fanin: FaninCache, core: dict, wbits: int) -> int:
    """The cores (or processors) one neuron's spike reaches at least: per reader, those that one
    of its leads takes (a patch merging's merged token; one neuron where it reads elementwise)."""
    total = 0
    for tgt in sorted({net.target_of(b).name for b in net.outgoing(name)}):
        if tgt not in patterns:  # a host node
            total += 1
            continue
        m = fanin.get_pattern(tgt, name)
        dense = isinstance(m, LeadPattern) and not all(part.one_to_one for part in m.parts)
        total += lower_bound(slice_cost(patterns[tgt], 0, m.width if dense else 1, core, wbits), core)
    return total


def _splits_freely(patterns: list) -> bool:
    """Every axon into this population carries one synapse (elementwise inputs: the residual
    stream). Cutting it anywhere then costs its sources no fan-out axon (each of their neurons
    reaches one core however it is cut), and a slice's costs are sums over its neurons."""
    return all(_one_synapse_per_axon(m) for _, m in patterns)


def _one_synapse_per_axon(m) -> bool:
    if isinstance(m, LeadPattern):
        return not m.shared and all(part.one_to_one for part in m.parts)
    return not m.nnz or np.bincount(m.indices).max() <= 1


def _inputs_per_neuron(patterns: list, n: int) -> np.ndarray:
    """Synapses into each neuron, summed over sources."""
    count = np.zeros(n, np.int64)
    for _, m in patterns:
        if isinstance(m, LeadPattern):
            for part in m.parts:
                count += (part.sources >= 0).ravel()
        else:
            count += np.diff(m.indptr)
    return count


def _first_input_per_source(patterns: list) -> list[tuple[str, np.ndarray]]:
    """Per source: the first input from it of each neuron (-1: none)."""
    out = []
    for src, m in patterns:
        if isinstance(m, LeadPattern):
            first = np.full(m.parts[0].sources.size, -1, np.int64)
            for part in m.parts:
                s = part.sources.ravel()
                first = np.where((first < 0) & (s >= 0), s, first)
        else:
            first = np.full(m.shape[0], -1, np.int64)
            has = np.diff(m.indptr) > 0
            first[has] = m.indices[m.indptr[:-1][has]]
        out.append((src, first))
    return out


# A piece of a freely cut population shorter than this is not put on a shared core when a new
# core would take more: each slice is a row of placement.json and a process under --per-core.
MIN_PIECE = 16


class _Cores:
    """The cores opened so far: the slices each holds, and what it uses of each limit."""

    FIELDS = ("neurons", "synapse_bits", "fan_in_axons", "fan_out_bound")

    def __init__(self, net: Network, target: Target, patterns: dict):
        self.limit = target.core
        self.wbits = target.numerics.weight_mantissa_bits
        self.capacity = np.array([self.limit[key] for key in ("neurons", "synapse_memory_bits", "fan_in_axons", "fan_out_axons")], np.int64)
        self.chip_cores = target.spec["chip"]["cores"]
        self.slices: list[list[dict[str, Any]]] = []
        self.used = np.zeros((1024, 4), np.int64)
        self.core_of = {name: np.full(net.node(name).size, -1, np.int64) for name in patterns}

    def __len__(self) -> int:
        return len(self.slices)

    def open(self) -> int:
        if len(self) == self.used.shape[0]:
            self.used = np.vstack([self.used, np.zeros_like(self.used)])
        self.slices.append([])
        return len(self) - 1

    def recent(self, window: int) -> range:
        """The last `window` cores opened, on the newest core's chip (counting.first_recent)."""
        return range(first_recent(len(self), window, self.chip_cores), len(self))

    def fitting(self, ks: range, need: np.ndarray) -> list[int]:
        return cores_with_room(self.used, ks.start, ks.stop, need, self.capacity).tolist()

    def reserve(self, more: int) -> None:
        """Rows of `used` for `more` cores beyond those open (a compiled loop may open them)."""
        if len(self) + more > self.used.shape[0]:
            self.used = np.vstack([self.used, np.zeros((max(more, self.used.shape[0]), 4), np.int64)])

    def record(self, k: int, name: str, start: int, stop: int) -> None:
        """A slice on core k, whose use is already counted."""
        self.slices[k].append({"population": name, "start": start, "stop": stop})
        self.core_of[name][start:stop] = k

    def add(self, k: int, name: str, start: int, stop: int, need: np.ndarray) -> None:
        self.record(k, name, start, stop)
        self.used[k] += need

    def table(self) -> list[dict[str, Any]]:
        return [{"slices": sl, **{key: int(v) for key, v in zip(self.FIELDS, row)}} for sl, row in zip(self.slices, self.used)]


class _Stream:
    """A freely cut population poured into the room other slices left: each piece goes where
    it is longest, among the cores that hold its first neuron's inputs and every core of the
    newest chip; a new core only where none takes MIN_PIECE neurons. Every axon into such a
    population carries one synapse, so a piece's costs are sums over its neurons. The residual
    stream's pieces need fan-out axons more than anything: the whole chip has more of that room
    than the last PACK_WINDOW cores (Swin-T, benchmarks/swin_t_compile.py --calibrate 2: 105,848
    to 105,648 cores, and 92,964 to 92,788 with --relay-sums 3, for the same messages within 1 %)."""

    def __init__(self, cores: _Cores, name: str, patterns: list, n: int, neuron_bound: np.ndarray):
        self.cores, self.name, self.patterns, self.neuron_bound = cores, name, patterns, neuron_bound
        self.first = [(src, first) for src, first in _first_input_per_source(patterns) if src in cores.core_of]  # sources on the cores
        inputs = _inputs_per_neuron(patterns, n)
        bits_one = int(axon_bits_each(np.ones(1, np.int64), cores.limit, cores.wbits)[0])
        # running totals of neurons, synapse bits, fan-in axons and fan-out bound, [4, n + 1]
        self.totals = np.stack([np.arange(n + 1), np.concatenate([[0], np.cumsum(inputs * bits_one)]),
                                np.concatenate([[0], np.cumsum(inputs)]), np.concatenate([[0], np.cumsum(neuron_bound)])]).astype(np.int64)

    def pour(self, lo: int, hi: int) -> None:
        """Neurons lo..hi-1 onto cores, in pieces chosen by a compiled loop (counting.pour)."""
        cores = self.cores
        # per source, the core of each neuron's first input from it (-1: none, or not placed yet)
        homes = np.empty((len(self.first), hi - lo), np.int64)
        for row, (src, first) in zip(homes, self.first):
            f = first[lo:hi]
            np.copyto(row, np.where(f >= 0, cores.core_of[src][np.maximum(f, 0)], -1))
        cores.reserve(hi - lo)
        ks, stops, _, stuck = pour(self.totals, homes, lo, hi, cores.used, len(cores), cores.capacity, cores.chip_cores, cores.chip_cores, MIN_PIECE)
        start = lo
        for k, stop in zip(ks.tolist(), stops.tolist()):
            while k >= len(cores):
                cores.open()
            cores.record(k, self.name, start, stop)
            start = stop
        if stuck >= 0:  # one neuron alone exceeds a core: say which limit
            lim = cores.limit
            _one_neuron_fits(slice_cost(self.patterns, stuck, stuck + 1, lim, cores.wbits), lim, self.name, stuck)
            raise NeurocompileError(f"population '{self.name}': neuron {stuck} needs {int(self.neuron_bound[stuck])} fan-out axons; a core has {lim['fan_out_axons']}")


def _pack(net: Network, target: Target, patterns: dict, slices, fan_out_bound: np.ndarray, neuron_bound: dict[str, np.ndarray], strategy: str,
          free: frozenset = frozenset(), stripe_cores: int = 0, positions: dict[str, np.ndarray] | None = None, span: int = 1,
          stripes: int | None = None):
    """Slices onto cores. `naive`: one slice per core, in topological order. `packed`: a slice
    joins, among the last PACK_WINDOW cores of the newest chip with room for it under every
    limit, the one that holds most of its input neurons (else the first); the populations in
    `free` (`_splits_freely`) are poured into the room left (`_Stream`). The order: stripes of about
    `stripe_cores` cores, stripe b taking, in topological order, the slices whose middle neuron
    lies in the b-th fraction of the input (`positions`, over 0..span - 1; positions.py), and
    the runs of poured neurons that do. So a region's layers, and a window's attention, land on
    neighbouring cores and their spikes stay on one chip, rather than crossing a whole layer's
    cores to reach the next layer. Costs add up, which can only over-estimate: synapses of one
    source into two slices of a core are counted twice, and a slice's fan-out bound counts
    destination slices, not cores."""
    if positions is None:
        positions = {name: np.zeros(net.node(name).size, np.int64) for name in patterns}
    cores = _Cores(net, target, patterns)
    streams = {name: _Stream(cores, name, patterns[name], net.node(name).size, neuron_bound[name]) for name in free}
    stripe_of = _stripe_of(slices, stripe_cores, positions, span, stripes)
    work = []  # (stripe, topological index, first neuron, what to place)
    order = {name: k for k, name in enumerate(patterns)}
    for (name, start, stop, cost), axons_out in zip(slices, fan_out_bound):
        work.append((int(stripe_of(name, (start + stop) // 2)), order[name], start, (name, start, stop, cost, int(axons_out))))
    for name in free:  # poured in runs of neurons of one stripe
        stripe = stripe_of(name, slice(None))
        bounds = np.append(run_starts(stripe), stripe.size).tolist()
        work += [(int(stripe[lo]), order[name], lo, (name, lo, hi)) for lo, hi in zip(bounds, bounds[1:])]
    work.sort(key=lambda item: item[:3])
    window = PACK_WINDOW if strategy == "packed" else 0
    batch: list[tuple] = []  # consecutive slices, packed together
    for *_, what in work:
        if len(what) == 3:
            _pack_slices(cores, patterns, batch, window)
            batch = []
            streams[what[0]].pour(*what[1:])
        else:
            batch.append(what)
    _pack_slices(cores, patterns, batch, window)
    return cores.table(), cores.core_of


def _pack_slices(cores: _Cores, patterns: dict, batch: list[tuple], window: int) -> None:
    """Slices (name, start, stop, cost, fan-out bound) onto cores in turn: each joins a recent
    core with room, the one holding most of its inputs, else a new one. Most open a new core:
    a compiled loop places those until one fits a recent core, which is chosen here."""
    if not batch:
        return
    needs = np.array([[cost.neurons, cost.synapse_bits, cost.fan_in_axons, fan_out] for _, _, _, cost, fan_out in batch], np.int64)
    homes = np.full(len(batch), -1, np.int64)
    cores.reserve(len(batch))
    i = 0
    while i < len(batch):
        fitting_at, open_cores = open_cores_until_one_fits(needs, i, cores.used, len(cores), cores.capacity, window, cores.chip_cores, homes)
        while len(cores) < open_cores:
            cores.open()
        for k in range(i, fitting_at):  # where later slices look for their inputs
            cores.record(int(homes[k]), *batch[k][:3])
        if fitting_at == len(batch):
            return
        name, start, stop, _, _ = batch[fitting_at]
        recent = cores.recent(window)
        fits = cores.fitting(recent, needs[fitting_at])
        if len(fits) > 1:  # the one holding most of its inputs
            score = _affinity(patterns[name], start, stop, cores.core_of, recent)
            fits = [max(fits, key=lambda k: (score[k - recent.start], -k))]
        cores.add(fits[0], name, start, stop, needs[fitting_at])
        i = fitting_at + 1


MAX_RESLICES = 32


def _slice_within_fan_out(net: Network, target: Target, patterns: dict, fanin: FaninCache, free: frozenset = frozenset(),
                          cuts: dict[str, np.ndarray] | None = None):
    """Slices whose fan-out bound fits a core: a slice sending to too many destination slices is
    cut smaller, and the bounds recounted. A neuron's bound is, per target population, the
    slices of it that its synapses reach, plus one axon to the host; only the populations
    whose slicing changed are cut and counted again. Returns the slices, their bounds and
    every population's per-neuron bound. Populations in `free` (`_splits_freely`) are cut
    later, when packed: each of their sources' neurons reaches one slice of them however."""
    limit = target.core["fan_out_axons"]
    caps: dict[str, int] = {}
    sliced: dict[str, list] = {}
    local: dict[str, np.ndarray] = {}
    reach: dict[tuple[str, str], np.ndarray] = {}
    targets = {name: sorted({net.target_of(b).name for b in net.outgoing(name)} & set(patterns)) for name in patterns}
    host = {name: reaches_host(net, name, patterns, fanin, processors_modelled(target)) for name in patterns}
    for name in free:
        sliced[name], local[name] = [], np.zeros(net.node(name).size, np.int64)
    cuts = cuts or {}
    dirty = set(patterns) - set(free)
    for _ in range(MAX_RESLICES):
        for name in dirty:
            sliced[name] = _slice_population(net, target, name, patterns[name], caps.get(name, net.node(name).size), cuts=cuts.get(name))
            local[name] = np.repeat(np.arange(len(sliced[name])), [stop - start for _, start, stop, _ in sliced[name]])
        for name in patterns:
            for tgt in targets[name]:
                if tgt in dirty or (name, tgt) not in reach:
                    reach[(name, tgt)] = slices_reached(net, name, tgt, local[tgt], fanin)
        slices = [sl for name in patterns for sl in sliced[name]]
        bound = np.concatenate([[]] + [
            np.bincount(local[name], weights=sum((reach[(name, t)] for t in targets[name]), host[name]), minlength=len(sliced[name])).astype(np.int64)
            for name in patterns if name not in free
        ]).astype(np.int64)
        over = np.flatnonzero(bound > limit)
        if not over.size:
            return slices, bound, {name: sum((reach[(name, t)] for t in targets[name]), host[name]) for name in patterns}
        dirty = set()
        for k in over:
            name, start, stop, _ = slices[k]
            if stop - start == 1:
                raise NeurocompileError(f"population '{name}': neuron {start} needs {bound[k]} fan-out axons; a core has {limit}")
            caps[name] = min(caps.get(name, stop - start), max(1, (stop - start) * limit // int(bound[k])))
            dirty.add(name)
    worst = int(np.argmax(bound))
    raise NeurocompileError(f"population '{slices[worst][0]}': a slice needs {bound[worst]} fan-out axons, more than a core's {limit}, after {MAX_RESLICES} cuts")


def place(net: Network, target: Target, strategy: str = "packed", fanin: FaninCache | None = None,
          messages: dict[str, Messages] | None = None, stripe_cuts: str = "small") -> dict[str, Any]:
    """`fanin`: a cache of fan-in patterns to fill, for what later reads them (traffic);
    `messages`: a dict to fill with what each neuron's spike sends (traffic.spike_traffic);
    `stripe_cuts`: which slices stop where the stripe changes (STRIPE_CUTS, `_stripe_cuts`)."""
    if strategy not in STRATEGIES:
        raise NeurocompileError(f"placement strategy '{strategy}' is not one of {', '.join(STRATEGIES)}")
    if stripe_cuts not in STRIPE_CUTS:
        raise NeurocompileError(f"stripe cuts '{stripe_cuts}' is not one of {', '.join(STRIPE_CUTS)}")
    core = target.core
    wbits = target.numerics.weight_mantissa_bits
    check_single_neurons(net, target)
    fanin = fanin if fanin is not None else FaninCache(net)
    patterns = {p.name: [(src, fanin.get_pattern(p.name, src)) for src in fanin.sources(p.name)] for p in net.populations() if not p.on_host}
    unsplit = Cost(0, 0, 0)  # every population on one ideal core: what the lower bound counts
    for name, pats in patterns.items():
        whole = slice_cost(pats, 0, net.node(name).size, core, wbits)
        unsplit = Cost(unsplit.neurons + whole.neurons, unsplit.synapse_bits + whole.synapse_bits, unsplit.fan_in_axons + whole.fan_in_axons)
    free = frozenset(name for name, pats in patterns.items() if strategy == "packed" and _splits_freely(pats))
    per_chip = target.spec["chip"]["cores"]
    bound_cores = lower_bound(unsplit, core)
    striped = strategy == "packed" and bound_cores > per_chip  # on one chip, stripes would only cost cores
    stripe_cores = per_chip // STRIPES_PER_CHIP
    positions, span = neuron_positions(net, fanin, _pulled(net, patterns, free, fanin, core, wbits)) if striped else (None, 1)
    stripes = -(-bound_cores // stripe_cores) if striped and stripe_cuts != "none" else None
    cuts = _stripe_cuts(patterns, free, _stripe_of(slices=(), stripe_cores=0, positions=positions, span=span, stripes=stripes), core, wbits,
                        SMALL_PIECE if stripe_cuts == "small" else None) if stripes else None
    slices, bound, neuron_bound = _slice_within_fan_out(net, target, patterns, fanin, free, cuts)
    cores, core_of = _pack(net, target, patterns, slices, bound, neuron_bound, strategy, free,
                           *((stripe_cores, positions, span, stripes) if striped else ()))
    chip_of_core = np.arange(len(cores)) // per_chip
    host_chips, host_ops, processors = place_host_ops(net, target, core_of, chip_of_core, fanin)
    axons, sent = fan_out_and_messages(net, *units(core_of, chip_of_core, host_chips), fanin)
    for c, n in zip(cores, axons[: len(cores)]):
        c["fan_out_axons"] = int(n)
    if messages is not None:
        messages.update(sent)

    available = per_chip * target.spec["system"]["chips"]
    if len(cores) > available:
        raise NeurocompileError(f"model needs {len(cores)} cores; target {target.chip} offers {available} ({target.spec['system']['chips']} chips x {per_chip} cores)")
    for k, c in enumerate(cores):
        c["chip"], c["core"] = divmod(k, per_chip)
    ordered = [{key: c[key] for key in ("chip", "core", "slices", "neurons", "synapse_bits", "fan_in_axons", "fan_out_axons")} for c in cores]
    totals = {key: int(sum(c[key] for c in cores)) for key in ("neurons", "synapse_bits", "fan_in_axons", "fan_out_axons")}
    totals.update(cores=len(cores), chips=len({c["chip"] for c in ordered}))
    return {"cores": ordered, "totals": totals, "lower_bound_cores": bound_cores, "host_ops": host_ops, "processors": processors}


# Where slices stop at stripe changes (`build --stripe-cuts`): nowhere, in populations whose
# pieces between changes take at most SMALL_PIECE of a core, or everywhere. Pieces that small
# share cores with little room left over; larger ones leave the rest of a core empty (a
# Swin-T's stage-3 Q row of one head and token takes 0.52 of a core: two do not fit one). On
# Swin-T (benchmarks/swin_t_compile.py --calibrate 2, at the time of the choice), "small" cut
# the first two stages' Q, K and V and the patch embedding: 105,848 cores and 2.491e6 messages
# leaving the chips at the ANN's rates, against 106,728 and 3.107e6 uncut and 112,108 and
# 1.666e6 cut everywhere; a bound of 0.1 cut less for more cores, 0.3 (the third stage's Q, K
# and V too) took 108,632 cores for 1.991e6.
STRIPE_CUTS = ("none", "small", "all")
SMALL_PIECE = 0.2


def _stripe_cuts(patterns: dict, free: frozenset, stripe_of, core: dict, wbits: int, most: float | None = None) -> dict[str, np.ndarray]:
    """Per population cut into slices, the neurons where its stripe (`stripe_of`, `_stripe_of`)
    changes: slices that stop there lie in one stripe each. A window-major layer (Q, K, V: a
    window's tokens in raster order) otherwise puts the rows of tokens from several stripes in
    one slice, and the token layers feeding them densely send across chips. With `most`, only
    populations whose typical piece between changes takes at most that share of a core. The
    stripe count is fixed beforehand, from the lower bound, as the slices' count is not known
    yet; packing uses the same."""
    out = {}
    for name, pats in patterns.items():
        if name in free:
            continue
        stripe = stripe_of(name, slice(None))
        cuts = run_starts(stripe)[1:]
        if cuts.size and most is not None and _piece_share(pats, np.concatenate([[0], cuts, [stripe.size]]), core, wbits) > most:
            continue
        out[name] = cuts
    return out


def _piece_share(patterns: list, bounds: np.ndarray, core: dict, wbits: int) -> float:
    """The share of a core (its most used limit) that the piece of median length between
    consecutive `bounds` takes."""
    k = int(np.argsort(np.diff(bounds), kind="stable")[(bounds.size - 1) // 2])
    cost = slice_cost(patterns, int(bounds[k]), int(bounds[k + 1]), core, wbits)
    return max(cost.neurons / core["neurons"], cost.synapse_bits / core["synapse_memory_bits"], cost.fan_in_axons / core["fan_in_axons"])


def lower_bound(unsplit: Cost, core: dict) -> int:
    """Cores no placement can go below: the largest of total neurons, synapse bits and fan-in
    axons over a core's."""
    return max(
        math.ceil(unsplit.neurons / core["neurons"]),
        math.ceil(unsplit.synapse_bits / core["synapse_memory_bits"]),
        math.ceil(unsplit.fan_in_axons / core["fan_in_axons"]),
        1,
    )
