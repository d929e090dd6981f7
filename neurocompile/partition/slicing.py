"""Cutting a token-wise population into core-sized slices without pricing every candidate.

Where every source reaches a population through a LeadPattern, a slice's cost is the sum of
its leads' costs (different leads use different axons), and leads with the same structure
(which inputs they have, where their channels start in the kernel) cost the same. So per class
of leads two tables, the cost of channels a..width-1 and of channels 0..b-1, and the running
sum of whole leads' costs answer the greedy "longest slice from here that fits" with a few
binary searches. Slices inside one lead, which wide layers need, are found once per class and
starting channel and reused.

A source neuron that feeds several leads (a token's channels feed every head) has one axon for
all of them, so leads are additive only while a slice does not hold two leads that share a
source; a slice that would is left to the general search (`None`).
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

from .counting import lead_channels_cost
from .leads import LeadPattern, unique_rows
from .resources import Cost, axon_bits_each, axon_layout


def _share_gap(patterns: list[LeadPattern]) -> int:
    """The fewest leads apart two leads that share a source neuron are (no sharing: huge)."""
    gap = np.iinfo(np.int64).max
    for pattern in (p for p in patterns if p.shared):
        leads = np.concatenate([np.broadcast_to(np.arange(part.sources.shape[0])[:, None], part.sources.shape)[part.sources >= 0] for part in pattern.parts])
        srcs = np.concatenate([part.sources[part.sources >= 0] for part in pattern.parts])
        order = np.lexsort((leads, srcs))
        same = srcs[order][1:] == srcs[order][:-1]
        if same.any():
            gap = min(gap, int(np.diff(leads[order])[same].min()))
    return gap


class TokenwiseSlicer:
    def __init__(self, patterns: list[LeadPattern], n: int, core: dict, weight_bits: int):
        self.core, self.wbits, self.n = core, weight_bits, n
        self.w = patterns[0].width
        self.bits_one = int(axon_bits_each(np.ones(1, np.int64), core, weight_bits)[0])  # an axon with one synapse
        self.axon_layout = axon_layout(core, weight_bits)
        self.parts = [part for p in patterns for part in p.parts]
        self.gap = _share_gap(patterns)
        keys = []
        for part in self.parts:
            valid = np.packbits(part.sources >= 0, axis=1)
            _, ids = unique_rows(valid, return_inverse=True)
            keys += [part.offset, ids.ravel()]
        _, first, cls = unique_rows(np.stack(keys, axis=1), return_index=True, return_inverse=True)
        cls = cls.ravel()
        # per class: cost of channels a..w-1 (head) and 0..b-1 (tail), for a, b in 0..w
        tables = [self._tables(int(r)) for r in first]
        # `longest` runs once per slice (about 190,000 times on Swin-T): it reads these as
        # Python lists and searches them with bisect, several times faster than numpy scalars.
        self.head_bits = [t[0].tolist() for t in tables]
        self.head_axons = [t[1].tolist() for t in tables]
        self.tail_bits = [t[2].tolist() for t in tables]
        self.tail_axons = [t[3].tolist() for t in tables]
        full_bits = np.array([t[2][self.w] for t in tables], np.int64)[cls]
        full_axons = np.array([t[3][self.w] for t in tables], np.int64)[cls]
        self.cum_bits = np.concatenate([[0], np.cumsum(full_bits)]).tolist()
        self.cum_axons = np.concatenate([[0], np.cumsum(full_axons)]).tolist()
        self.classes = cls.tolist()  # each lead's class
        self.inner: dict[tuple[int, int, int], tuple[int, int, int]] = {}
        self.within: dict[tuple[int, int, int], tuple[int, int]] = {}

    def _tables(self, lead: int):
        w = self.w
        hb, ha, tb, ta = (np.zeros(w + 1, np.int64) for _ in range(4))
        for part in self.parts:
            valid = part.sources[lead] >= 0
            if part.one_to_one:  # channel k's own input, one synapse: counts of valid inputs
                tail = np.concatenate([[0], np.cumsum(valid)])
                head = tail[-1] - tail
                tb += self.bits_one * tail
                ta += tail
                hb += self.bits_one * head
                ha += head
                continue
            off = int(part.offset[lead])
            rows = part.prefix[off: off + w + 1][:, valid].astype(np.int64)  # [w + 1, inputs]
            tail = rows - rows[0]
            head = rows[-1] - rows
            tb += axon_bits_each(tail, self.core, self.wbits).sum(axis=1)
            ta += (tail > 0).sum(axis=1)
            hb += axon_bits_each(head, self.core, self.wbits).sum(axis=1)
            ha += (head > 0).sum(axis=1)
        return hb, ha, tb, ta

    def _within(self, lead: int, a: int, b: int) -> tuple[int, int]:
        """Cost of channels a..b-1 of one lead; leads of a class cost the same."""
        key = (self.classes[lead], a, b)
        if key not in self.within:
            bits = axons = 0
            for part in self.parts:
                if part.one_to_one:
                    n = int(np.count_nonzero(part.sources[lead, a:b] >= 0))
                    bits += n * self.bits_one
                    axons += n
                    continue
                more_bits, more_axons = lead_channels_cost(part.prefix, int(part.offset[lead]), a, b, part.sources[lead], *self.axon_layout)
                bits += more_bits
                axons += more_axons
            self.within[key] = (bits, axons)
        return self.within[key]

    def _fits(self, bits: int, axons: int) -> bool:
        return bits <= self.core["synapse_memory_bits"] and axons <= self.core["fan_in_axons"]

    def longest(self, start: int, cap: int) -> tuple[int, Cost] | None:
        """The longest slice from `start` that fits (at most `cap` neurons), as the general
        search would find it; None where leads sharing a source would meet in it."""
        w, memory, fan_in = self.w, self.core["synapse_memory_bits"], self.core["fan_in_axons"]
        end = min(self.n, start + self.core["neurons"], start + cap)
        p0, a = divmod(start, w)
        c0 = self.classes[p0]
        bits, axons = self.head_bits[c0][a], self.head_axons[c0][a]
        if p0 * w + w > end or bits > memory or axons > fan_in:
            b_max = min(w, end - p0 * w)
            key = (c0, a, b_max)
            if key not in self.inner:  # largest b in (a, b_max] with channels a..b-1 fitting
                lo, hi = a + 1, b_max
                best = self._within(p0, a, lo)
                if not self._fits(*best):
                    return None  # one neuron alone does not fit: the general search says so
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    cost = self._within(p0, a, mid)
                    if self._fits(*cost):
                        lo, best = mid, cost
                    else:
                        hi = mid - 1
                self.inner[key] = (lo, *best)
            b, bits, axons = self.inner[key]
            return p0 * w + b, Cost(b - a, bits, axons)
        # whole leads p0+1 .. p-1 while they fit
        first = p0 + 1
        cum_bits, cum_axons = self.cum_bits, self.cum_axons
        p = min(bisect_right(cum_bits, cum_bits[first] + memory - bits) - 1, bisect_right(cum_axons, cum_axons[first] + fan_in - axons) - 1,
                end // w, len(self.classes))
        bits += cum_bits[p] - cum_bits[first]
        axons += cum_axons[p] - cum_axons[first]
        stop = p * w
        if p < len(self.classes) and stop < end:  # channels 0..b-1 of lead p
            c = self.classes[p]
            tail_bits, tail_axons = self.tail_bits[c], self.tail_axons[c]
            # the tables grow with b, and b = 0 costs nothing: the last b within both rooms
            b = min(end - stop, w, bisect_right(tail_bits, memory - bits) - 1, bisect_right(tail_axons, fan_in - axons) - 1)
            bits += tail_bits[b]
            axons += tail_axons[b]
            stop += b
        if (stop - 1) // w - p0 >= self.gap:
            return None
        return stop, Cost(stop - start, bits, axons)
