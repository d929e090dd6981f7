"""Fan-in of token-wise blocks, priced without building their matrices.

A transformer's blocks are mostly dense on the last axis (the same matrix for every token) or
elementwise, with index maps that only move whole tokens (window partition, rolls, patch
merging). Seen from a target population laid out as leads x width (tokens x channels), every
axon of such a block feeds one lead, and the synapses it makes there are a column of the
block's matrix. So a slice's cost needs, per lead it touches, which axons the lead has and the
column counts of the channel range it covers: prefix sums over the matrix's rows, not the
billions of synapses of a Swin-T.

`lead_pattern` builds that description for all blocks from one source into one target, or
returns None when a block does not have this form (convolutions, general sparse kernels, index
maps that split tokens) or when a source neuron feeds two axon slots: those keep the explicit
matrix. Costs equal those of the explicit matrix exactly (tests/test_placement.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir.graph import Network
from ..ir.kernels import Dense, Elementwise


@dataclass
class LeadPattern:
    width: int  # target neurons per lead
    sources: np.ndarray  # [leads, slots] the source neuron of each axon slot of a lead, -1: none
    prefix: np.ndarray  # [width + 1, slots] synapses of slot j into a lead's channels 0..o-1
    n_source: int

    @property
    def leads(self) -> int:
        return self.sources.shape[0]

    def counts(self, lead: int, a: int, b: int) -> np.ndarray:
        """Synapses of each present axon of `lead` into its channels a..b-1 (zeros dropped)."""
        c = self.prefix[b] - self.prefix[a]
        c = c[(self.sources[lead] >= 0) & (c > 0)]
        return c

    def per_axon(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(source neuron, synapses) of every axon into target neurons start..stop-1."""
        srcs, cnts = [], []
        first, last = start // self.width, (stop - 1) // self.width
        if first == last or stop - start <= 2 * self.width:
            spans = [(p, max(start - p * self.width, 0), min(stop - p * self.width, self.width)) for p in range(first, last + 1)]
        else:
            spans = [(first, start - first * self.width, self.width), (last, 0, stop - last * self.width)]
        for p, a, b in spans:
            c = self.prefix[b] - self.prefix[a]
            keep = (self.sources[p] >= 0) & (c > 0)
            srcs.append(self.sources[p][keep])
            cnts.append(c[keep])
        if len(spans) == 2 and last > first + 1:  # whole leads in between
            full = self.prefix[self.width]
            inner = self.sources[first + 1:last]
            keep = (inner >= 0) & (full > 0)[None, :]
            srcs.append(inner[keep])
            cnts.append(np.broadcast_to(full, inner.shape)[keep])
        return np.concatenate(srcs), np.concatenate(cnts)


def _dense_slots(block, kernel: Dense, n_source: int, leads: int, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    n_out, n_in = kernel.weight.shape
    view = tuple(block.view_shape)
    if n_out != width:
        return None
    view_leads = int(np.prod(view[:-1]))
    vin = (block.in_index if block.in_index is not None else np.arange(n_source)).reshape(view_leads, n_in)
    if block.out_index is None:
        if view_leads != leads:
            return None
        rows = vin
    else:
        oi = block.out_index.reshape(leads, width)
        first = oi[:, :1]
        present = first[:, 0] >= 0
        whole_tokens = np.where(present[:, None], oi == first + np.arange(width), oi == -1).all() and (first[present] % width == 0).all()
        if not whole_tokens:
            return None
        rows = np.full((leads, n_in), -1, vin.dtype)
        rows[present] = vin[first[present, 0] // width]
    pattern = (block.w_mant != 0).astype(np.int32)
    prefix = np.vstack([np.zeros((1, n_in), np.int32), np.cumsum(pattern, axis=0, dtype=np.int32)])
    return rows.astype(np.int64), prefix


def _elementwise_slots(block, n_source: int, leads: int, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    if block.out_index is not None or int(np.prod(block.view_shape)) != leads * width:
        return None
    vin = (block.in_index if block.in_index is not None else np.arange(n_source)).reshape(leads, width).astype(np.int64)
    nonzero = np.broadcast_to(block.w_mant != 0, tuple(block.view_shape)).reshape(leads, width)
    rows = np.where(nonzero, vin, -1)
    # slot i of a lead feeds only channel i
    prefix = (np.arange(width)[None, :] < np.arange(width + 1)[:, None]).astype(np.int32)
    return rows, prefix


def lead_pattern(net: Network, target: str, source: str) -> LeadPattern | None:
    tgt, src = net.node(target), net.node(source)
    width = int(tgt.shape[-1]) if len(tgt.shape) > 1 else 1
    leads = tgt.size // width
    rows, prefixes = [], []
    for block in net.incoming(target):
        if net.source_of(block).name != source:
            continue
        if isinstance(block.kernel, Dense):
            slots = _dense_slots(block, block.kernel, src.size, leads, width)
        elif isinstance(block.kernel, Elementwise):
            slots = _elementwise_slots(block, src.size, leads, width)
        else:
            slots = None
        if slots is None:
            return None
        rows.append(slots[0])
        prefixes.append(slots[1])
    sources = np.concatenate(rows, axis=1)
    used = sources[sources >= 0]
    if np.unique(used).size != used.size:
        return None  # a source neuron in two slots: its synapses would merge into one axon
    return LeadPattern(width, sources, np.concatenate(prefixes, axis=1), src.size)
