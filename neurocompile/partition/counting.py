"""Compiled loops of the placement, where Python steps or numpy temporaries per item cost the
most of a Swin-T build.

Distinct (neuron, unit) pairs without sorting them. A source neuron's fan-out bound counts the
slices of each target its synapses reach. A target's slices are consecutive neurons, and the
pairs of a matrix pattern (row by row) or of a lead pattern made of one block (run by run) come
in target order, so a neuron's units arrive nondecreasing and a repeat of (neuron, unit) always
follows that same unit: one pass that remembers each neuron's last unit counts them
(`count_in_order`). Pairs in any other order (a lead pattern of several blocks, every target of
a sender after packing) are grouped by neuron in two linear passes, a counting sort
(`count_per_neuron`, `place_by_neuron`), and each neuron's repeats dropped with one mark per unit
(`count_distinct`; `count_messages` also sorts each distinct pair into local, inter-core and
inter-chip messages). fanout.py chooses.

A lead pattern's pairs themselves (`lead_runs`, for leads.LeadPattern.runs) are written by one
loop over runs and inputs, counted first so that no [runs, inputs] array of masks and gathered
sources is built. Where only each source's distinct units are wanted (the fan-out bound of a
lead pattern of one block), the same loop counts them without writing the pairs
(`lead_run_distinct_units`). A lead's channels a..b-1 are priced in one pass over its inputs
(`lead_channels_cost`, for slicing.TokenwiseSlicer). Packing pours the residual stream into the
room other slices leave piece by piece (`pour`, for place._Stream), and opens a core for each
slice in turn until one fits a recent core, whose choice stays in Python
(`open_cores_until_one_fits`, for place._pack_slices).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def count_in_order(neurons: np.ndarray, units: np.ndarray, n: int) -> np.ndarray:
    last = np.full(n, -2, np.int64)  # no unit is -2 (HOST is -1)
    count = np.zeros(n, np.int64)
    for i in range(neurons.size):
        s, u = neurons[i], units[i]
        if last[s] != u:
            last[s] = u
            count[s] += 1
    return count


@numba.njit(cache=True, nogil=True)
def count_per_neuron(neurons: np.ndarray, counts: np.ndarray) -> None:
    """counts[s + 1] += pairs of neuron s: the counting sort's first pass, one piece at a time."""
    for i in range(neurons.size):
        counts[neurons[i] + 1] += 1


@numba.njit(cache=True, nogil=True)
def place_by_neuron(neurons: np.ndarray, units: np.ndarray, next_slot: np.ndarray, by_neuron: np.ndarray) -> None:
    """The counting sort's second pass: each pair's unit into its neuron's next free slot."""
    for i in range(neurons.size):
        s = neurons[i]
        by_neuron[next_slot[s]] = units[i]
        next_slot[s] += 1


@numba.njit(cache=True, nogil=True)
def count_messages(first: np.ndarray, by_neuron: np.ndarray, own: np.ndarray, chip_of: np.ndarray,
                   axons: np.ndarray, local: np.ndarray, inter_core: np.ndarray, inter_chip: np.ndarray) -> None:
    """Per neuron s, its distinct units by_neuron[first[s]:first[s + 1]] (HOST = -1) seen from its
    own unit own[s]: a fan-out axon of that unit each, a local message to its own unit, the
    others inter-core, and of those the ones that leave its chip (to or from the host too)."""
    seen = np.full(chip_of.size + 1, -1, np.int64)
    for s in range(own.size):
        here = own[s]
        for j in range(first[s], first[s + 1]):
            d = by_neuron[j]
            if seen[d + 1] == s:
                continue
            seen[d + 1] = s
            if here >= 0:
                axons[here] += 1
            if d == here:
                local[s] += 1
            else:
                inter_core[s] += 1
                if d < 0 or here < 0 or chip_of[here] != chip_of[d]:
                    inter_chip[s] += 1


@numba.njit(cache=True, nogil=True)
def count_distinct(first: np.ndarray, by_neuron: np.ndarray, units: int) -> np.ndarray:
    """Per neuron s, the distinct units among by_neuron[first[s]:first[s + 1]] (HOST = -1, all
    below `units`)."""
    n = first.size - 1
    seen = np.full(units + 1, -1, np.int64)
    count = np.zeros(n, np.int64)
    for s in range(n):
        for j in range(first[s], first[s + 1]):
            d = by_neuron[j] + 1
            if seen[d] != s:
                seen[d] = s
                count[s] += 1
    return count


@numba.njit(cache=True, nogil=True)
def _lead_run_reaches(sources, prefix, row, i, lo, hi) -> bool:
    return sources[row, i] >= 0 and prefix[hi, i] - prefix[lo, i] > 0


@numba.njit(cache=True, nogil=True)
def lead_runs(sources: np.ndarray, offset: np.ndarray, prefix: np.ndarray, lead: np.ndarray, first: np.ndarray,
              last: np.ndarray, unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One block's (source neuron, unit) pairs of leads.LeadPattern.runs: for run r (channels
    first[r]..last[r] of lead lead[r], all on unit[r]), each input i of the lead with a source
    (sources[lead, i] >= 0) and a synapse into those channels (a nonzero prefix difference).
    Counted first, then written, in run order and input order."""
    n_in = sources.shape[1]
    total = 0
    for r in range(lead.size):
        row, o = lead[r], offset[lead[r]]
        for i in range(n_in):
            if _lead_run_reaches(sources, prefix, row, i, o + first[r], o + last[r]):
                total += 1
    srcs = np.empty(total, sources.dtype)
    units = np.empty(total, unit.dtype)
    k = 0
    for r in range(lead.size):
        row, o = lead[r], offset[lead[r]]
        for i in range(n_in):
            if _lead_run_reaches(sources, prefix, row, i, o + first[r], o + last[r]):
                srcs[k] = sources[row, i]
                units[k] = unit[r]
                k += 1
    return srcs, units


@numba.njit(cache=True, nogil=True)
def lead_run_distinct_units(sources: np.ndarray, offset: np.ndarray, prefix: np.ndarray, lead: np.ndarray, first: np.ndarray,
                            last: np.ndarray, unit: np.ndarray, n_source: int) -> np.ndarray:
    """`count_in_order` of the pairs `lead_runs` would write for one block, without writing
    them: the runs' units must not fall, so that a source's repeats of a unit are consecutive."""
    seen = np.full(n_source, -2, np.int64)
    count = np.zeros(n_source, np.int64)
    for r in range(lead.size):
        row, o, u = lead[r], offset[lead[r]], unit[r]
        for i in range(sources.shape[1]):
            if _lead_run_reaches(sources, prefix, row, i, o + first[r], o + last[r]):
                s = sources[row, i]
                if seen[s] != u:
                    seen[s] = u
                    count[s] += 1
    return count


@numba.njit(cache=True, nogil=True)
def first_recent(n_cores: int, window: int, chip_cores: int) -> int:
    """The first of the last `window` cores opened that lie on the newest core's chip (chips are
    runs of `chip_cores` cores). A slice joins no core of an earlier chip: the layers placed now
    read and feed the newest chip's, so it would send and receive across chips."""
    return max(0, n_cores - window, (n_cores - 1) // chip_cores * chip_cores)


@numba.njit(cache=True, nogil=True)
def _furthest(totals: np.ndarray, start: int, hi: int, room: np.ndarray) -> int:
    """The furthest stop, at most hi, whose running totals from start fit `room` (per limit)."""
    stop = hi
    for j in range(totals.shape[0]):
        t = totals[j]
        stop = min(stop, np.searchsorted(t, t[start] + room[j], side="right") - 1)
    return stop


@numba.njit(cache=True, nogil=True)
def _takes(totals: np.ndarray, start: int, stop: int, used: np.ndarray, capacity: np.ndarray) -> bool:
    """Whether neurons start..stop-1 fit beside `used` (per limit)."""
    for j in range(totals.shape[0]):
        if used[j] + totals[j, stop] - totals[j, start] > capacity[j]:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def pour(totals: np.ndarray, homes: np.ndarray, lo: int, hi: int, used: np.ndarray, n_cores: int, capacity: np.ndarray,
         window: int, chip_cores: int, min_piece: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """place._Stream.pour's loop: neurons lo..hi-1 of a freely cut population, whose running
    totals per limit are totals[j] ([4, n + 1]), as pieces. Each piece goes where it is longest
    among the cores holding its first neuron's inputs (homes[:, i], -1: none) and the last
    `window` opened on the newest chip (`first_recent`; ties: the lowest core), or on a new
    core where none takes min_piece neurons and a new one takes more. `used` ([cores, 4], rows
    for every core that may open) is updated. Returns each piece's core and stop, the cores then open, and the neuron that
    fits no core alone (-1: none)."""
    cores_out = np.empty(hi - lo, np.int64)
    stops_out = np.empty(hi - lo, np.int64)
    near = np.empty(homes.shape[0] + window, np.int64)
    pieces, start = 0, lo
    while start < hi:
        k = 0
        for h in range(homes.shape[0]):
            if homes[h, start - lo] >= 0:
                near[k] = homes[h, start - lo]
                k += 1
        for c in range(first_recent(n_cores, window, chip_cores), n_cores):
            near[k] = c
            k += 1
        candidates = np.unique(near[:k])  # sorted
        best_stop, home = start, -1
        for c in candidates:
            if best_stop == hi:
                break
            if not _takes(totals, start, best_stop + 1, used[c], capacity):
                continue  # holds no more than the best so far: skip its searches
            stop = _furthest(totals, start, hi, capacity - used[c])
            if stop > best_stop:
                best_stop, home = stop, c
        if best_stop - start < min(min_piece, hi - start):
            stop = _furthest(totals, start, hi, capacity)
            if stop == start:
                return cores_out[:pieces], stops_out[:pieces], n_cores, start
            if stop > best_stop:
                best_stop, home = stop, n_cores
                n_cores += 1
        for j in range(totals.shape[0]):
            used[home, j] += totals[j, best_stop] - totals[j, start]
        cores_out[pieces], stops_out[pieces] = home, best_stop
        pieces += 1
        start = best_stop
    return cores_out[:pieces], stops_out[:pieces], n_cores, -1


@numba.njit(cache=True, nogil=True)
def _fits_beside(used: np.ndarray, need: np.ndarray, capacity: np.ndarray) -> bool:
    """Whether `need` fits a core that already uses `used`, under every limit."""
    for j in range(need.size):
        if used[j] + need[j] > capacity[j]:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def open_cores_until_one_fits(needs: np.ndarray, first: int, used: np.ndarray, n_cores: int, capacity: np.ndarray,
                              window: int, chip_cores: int, homes: np.ndarray) -> tuple[int, int]:
    """place._pack's slices needs[first:] in turn, each onto a new core (homes[i], `used`
    updated) until one fits one of the last `window` cores on the newest chip (`first_recent`):
    returns its index (needs.shape[0]: none did) and the cores then open. Which of those cores
    it joins (the one holding most of its inputs) is the caller's choice."""
    for i in range(first, needs.shape[0]):
        for c in range(first_recent(n_cores, window, chip_cores), n_cores):
            if _fits_beside(used[c], needs[i], capacity):
                return i, n_cores
        for j in range(needs.shape[1]):
            used[n_cores, j] += needs[i, j]
        homes[i] = n_cores
        n_cores += 1
    return needs.shape[0], n_cores


@numba.njit(cache=True, nogil=True)
def cores_with_room(used: np.ndarray, first: int, stop: int, need: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """The cores first..stop-1 that `need` fits under every limit."""
    out = np.empty(stop - first, np.int64)
    k = 0
    for c in range(first, stop):
        if _fits_beside(used[c], need, capacity):
            out[k] = c
            k += 1
    return out[:k]


@numba.njit(cache=True, nogil=True)
def lead_channels_cost(prefix: np.ndarray, offset: int, a: int, b: int, sources: np.ndarray, per_block: int, synapse_bits: int,
                       header_bits: int, word_bits: int) -> tuple[int, int]:
    """Synapse bits and axons of the inputs of one lead (sources >= 0) into its channels a..b-1,
    from the prefix sums of the kernel's rows (resources.axon_bits_each, per axon)."""
    bits = axons = 0
    for i in range(sources.size):
        if sources[i] >= 0:
            n = prefix[offset + b, i] - prefix[offset + a, i]
            if n > 0:
                axons += 1
                raw = n * synapse_bits + -(-n // per_block) * header_bits
                bits += -(-raw // word_bits) * word_bits
    return bits, axons
