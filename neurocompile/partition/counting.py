"""Counting distinct (neuron, unit) pairs without sorting them, where their order allows it.

Placement asks, for every source population and target, how many slices of the target each
source neuron reaches (its fan-out bound): the distinct (neuron, slice) pairs of the synapses.
A target's slices are consecutive neurons, and the pairs of a matrix pattern (row by row) or of
a lead pattern made of one block (run by run) come in target order, so their slices come in
nondecreasing order. A neuron's pairs then arrive with nondecreasing units, and a repeat of
(neuron, unit) always follows that same unit: one pass that remembers each neuron's last unit
counts the distinct pairs exactly, without sorting them. A lead pattern of several blocks lists
each block's runs in turn, so its units start again at each block: those pairs are sorted
(fanout.distinct_units_per_neuron chooses).
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
