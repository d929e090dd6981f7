"""Compiled loops of the placement: (neuron, unit) pairs, and their distinct ones counted without sorting.

Placement asks, for every source population and target, how many slices of the target each
source neuron reaches (its fan-out bound): the distinct (neuron, slice) pairs of the synapses.
A target's slices are consecutive neurons, and the pairs of a matrix pattern (row by row) or of
a lead pattern made of one block (run by run) come in target order, so their slices come in
nondecreasing order. A neuron's pairs then arrive with nondecreasing units, and a repeat of
(neuron, unit) always follows that same unit: one pass that remembers each neuron's last unit
counts the distinct pairs exactly, without sorting them. A lead pattern of several blocks lists
each block's runs in turn, so its units start again at each block: those pairs are sorted
(fanout.distinct_units_per_neuron chooses).

After packing, the messages of each sender's neurons come from the distinct (neuron, core)
pairs of all its targets together, which arrive in no useful order. They are grouped by neuron
in two linear passes (a counting sort: count, then place) and each neuron's repeats dropped with
one mark per unit, where sorting every pair's key cost the most of a Swin-T placement.

The pairs of a lead pattern themselves (`lead_runs`, for leads.LeadPattern.runs) are written
by one compiled loop over runs and inputs, counted first so that no [runs, inputs] array of
masks and gathered sources is built.
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
