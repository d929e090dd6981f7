"""Fan-in of token-wise blocks, priced without building their matrices.

A transformer's blocks are mostly dense on the last axis (the same matrix for every token) or
elementwise, with index maps that only move whole tokens (window partition, rolls, patch
merging). Seen from a target population laid out as leads x width (tokens x channels), every
axon of such a block feeds whole leads, and the synapses it makes in one are a column of the
block's matrix. So a slice's cost needs, per lead it touches, which axons the lead has and the
column counts of the channel range it covers: prefix sums over the matrix's rows, not the
billions of synapses of a Swin-T.

`lead_pattern` builds that description for all blocks from one source into one target, or
returns None when a block does not have this form (convolutions whose windows overlap, general
sparse kernels, index maps that split tokens) or when a source neuron reaches one lead twice:
those keep the explicit matrix. A convolution that cuts its input into patches is a dense layer
per output pixel. A source neuron may feed several leads (a token's channels feed every head's
lead). Costs equal those of the explicit matrix exactly (tests/test_placement.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..ir.graph import Network
from ..ir.kernels import Conv2d, Dense, Elementwise
from .counting import lead_run_distinct_units, lead_runs


def unique_pairs(x: np.ndarray, y: np.ndarray, **options):
    """np.unique of the pairs (x, y) of non-negative integers, as one integer key each: sorting
    [n, 2] rows (np.unique's axis=0) compares them field by field, several times slower.
    Returns the distinct pairs' x and y, then what `options` ask for (return_inverse, ...)."""
    span = int(y.max()) + 1 if y.size else 1
    keys, *rest = _as_tuple(np.unique(x.astype(np.int64) * span + y, **options))
    return (keys // span, keys % span, *rest)


def unique_rows(rows: np.ndarray, **options):
    """np.unique(rows, axis=0, ...) for a 2-D array, sorting each row's bytes as one value."""
    rows = np.ascontiguousarray(rows)
    flat = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    values, *rest = _as_tuple(np.unique(flat, **options))
    return (values.view(rows.dtype).reshape(-1, rows.shape[1]), *rest)


def _as_tuple(result) -> tuple:
    return result if isinstance(result, tuple) else (result,)


def run_starts(values: np.ndarray) -> np.ndarray:
    """Where each run of equal values starts (in sorted values: each distinct value's first)."""
    return np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]])) if values.size else np.zeros(0, np.int64)


@dataclass
class Part:
    """One block's share: per target lead, the source neuron of each of the block's inputs
    (-1: none), and where the lead's channels start among the kernel's outputs."""

    sources: np.ndarray  # [leads, n_in]
    offset: np.ndarray  # [leads]
    prefix: np.ndarray  # [n_out + 1, n_in]: synapses of input i into kernel outputs 0..o-1
    one_to_one: bool = False  # input i feeds channel i alone (elementwise): costs are counts


@dataclass
class LeadPattern:
    width: int  # target neurons per lead
    parts: list[Part]
    shared: bool = False  # a source neuron feeds several leads (one axon, synapses in each)

    def _spans(self, start: int, stop: int) -> list[tuple[np.ndarray, int, int]]:
        """The slice as (leads, first channel, stop channel) groups: partial ends, whole middle."""
        w = self.width
        first, last = start // w, (stop - 1) // w
        if first == last:
            return [(np.array([first]), start - first * w, stop - first * w)]
        spans = [(np.array([first]), start - first * w, w)]
        if last > first + 1:
            spans.append((np.arange(first + 1, last), 0, w))
        spans.append((np.array([last]), 0, stop - last * w))
        return spans

    def per_axon(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(source neuron, synapses) of every axon into target neurons start..stop-1."""
        srcs, cnts = [], []
        for leads, a, b in self._spans(start, stop):
            for part in self.parts:
                off = part.offset[leads]
                c = (part.prefix[off + b] - part.prefix[off + a]).astype(np.int64)  # whole rows: no per-element gather; summed below
                s = part.sources[leads]
                keep = (s >= 0) & (c > 0)
                srcs.append(s[keep])
                cnts.append(c[keep])
        srcs, cnts = np.concatenate(srcs), np.concatenate(cnts)
        if self.shared:  # one axon per source neuron, its synapses summed over the leads
            order = np.argsort(srcs, kind="stable")
            srcs, cnts = srcs[order], cnts[order]
            first = run_starts(srcs)
            srcs, cnts = srcs[first], np.add.reduceat(cnts, first) if first.size else cnts
        return srcs, cnts

    def _runs(self, own: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per run of a lead's channels that one unit holds: its lead, first and stop channel,
        and unit."""
        w = self.width
        start = np.zeros(own.size, bool)
        start[::w] = True
        start[1:] |= own[1:] != own[:-1]
        starts = np.flatnonzero(start)
        stops = np.append(starts[1:], own.size)
        lead = starts // w
        return lead, starts - lead * w, stops - lead * w, own[starts]

    def runs(self, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(source neuron, unit) pairs given the unit of every target neuron: per run of a
        lead's channels that one unit holds, the inputs with a synapse into that run."""
        lead, first, last, unit = self._runs(own)
        pairs = [lead_runs(part.sources, part.offset, part.prefix, lead, first, last, unit) for part in self.parts]
        return np.concatenate([s for s, _ in pairs]), np.concatenate([u for _, u in pairs])

    def distinct_units(self, own: np.ndarray, n_source: int) -> np.ndarray | None:
        """Per source neuron, the distinct units of `own` its synapses reach, counted run by run
        without writing the pairs (on Swin-T they are 330 million); None where that pass cannot
        tell repeats (several blocks, or units that fall along the target)."""
        if len(self.parts) != 1 or (own.size > 1 and np.any(own[1:] < own[:-1])):
            return None
        part = self.parts[0]
        return lead_run_distinct_units(part.sources, part.offset, part.prefix, *self._runs(own), n_source)


def _dense_part(block, kernel: Dense, n_source: int, leads: int, width: int) -> Part | None:
    n_out, n_in = kernel.weight.shape
    view = tuple(block.view_shape)
    view_leads = int(np.prod(view[:-1]))
    vin = (block.in_index if block.in_index is not None else np.arange(n_source)).reshape(view_leads, n_in)
    if block.out_index is None:
        if view_leads * n_out != leads * width:
            return None
        first = np.arange(leads, dtype=np.int64) * width
    else:
        oi = block.out_index.reshape(leads, width).astype(np.int64)
        first = oi[:, 0]
        present = first >= 0
        if not np.where(present[:, None], oi == first[:, None] + np.arange(width), oi == -1).all():
            return None
    present = first >= 0
    offset = np.where(present, first % n_out, 0)
    if (offset + width > n_out).any():
        return None  # a lead would span two of the kernel's tokens
    rows = np.full((leads, n_in), -1, _index_dtype(n_source))
    rows[present] = vin[first[present] // n_out]
    dtype = _count_dtype(n_out)
    prefix = np.zeros((n_out + 1, n_in), dtype)
    np.cumsum(block.w_mant != 0, axis=0, dtype=dtype, out=prefix[1:])
    return Part(rows, offset, prefix)


def _patch_part(block, kernel: Conv2d, n_source: int, leads: int, width: int) -> Part | None:
    """A convolution that cuts its input into patches (stride = kernel size, no padding, no
    dilation, one group) laid out token-major: each output pixel is a dense layer over its own
    patch, so a lead is a pixel's channels and its inputs are the patch's (channel, ky, kx)."""
    n_out, c, kh, kw = kernel.weight.shape
    if kernel.group != 1 or kernel.strides != (kh, kw) or any(kernel.pads) or kernel.dilations != (1, 1) or block.out_index is None:
        return None
    view = tuple(block.view_shape)
    n, _, h, w = view
    _, _, ho, wo = kernel.out_shape(view)
    outputs = block.out_index.reshape(leads, width).astype(np.int64)  # kernel output (n, o, ho, wo) of each target
    first = outputs[:, 0]
    present = first >= 0
    channel_step = ho * wo  # a pixel's channels are this far apart among the kernel's outputs
    if not np.where(present[:, None], outputs == first[:, None] + np.arange(width) * channel_step, outputs == -1).all():
        return None
    image, rest = np.divmod(np.where(present, first, 0), n_out * channel_step)
    offset, pixel = np.divmod(rest, channel_step)
    if (offset + width > n_out).any():
        return None  # a lead would span two pixels
    y, x = np.divmod(pixel, wo)
    ci, ky, kx = (a.ravel() for a in np.meshgrid(np.arange(c), np.arange(kh), np.arange(kw), indexing="ij"))
    at = ((image[:, None] * c + ci) * h + y[:, None] * kh + ky) * w + x[:, None] * kw + kx  # [leads, c*kh*kw] view positions
    vin = np.arange(n_source) if block.in_index is None else block.in_index.ravel()
    rows = np.full(at.shape, -1, _index_dtype(n_source))
    rows[present] = vin[at[present]]
    dtype = _count_dtype(n_out)
    prefix = np.zeros((n_out + 1, at.shape[1]), dtype)
    np.cumsum(block.w_mant.reshape(n_out, -1) != 0, axis=0, dtype=dtype, out=prefix[1:])
    return Part(rows, offset, prefix)


def _elementwise_part(block, n_source: int, leads: int, width: int) -> Part | None:
    if block.out_index is not None or int(np.prod(block.view_shape)) != leads * width:
        return None
    vin = (block.in_index if block.in_index is not None else np.arange(n_source)).reshape(leads, width).astype(np.int64)
    nonzero = np.broadcast_to(block.w_mant != 0, tuple(block.view_shape)).reshape(leads, width)
    return Part(np.where(nonzero, vin, -1).astype(_index_dtype(n_source)), np.zeros(leads, np.int64), _identity_prefix(width), one_to_one=True)


# A Swin-T's lead patterns hold a few hundred [leads, inputs] tables of source neurons and
# [outputs + 1, inputs] prefix sums: at 64 and 32 bits they took 2 GiB, more than the rest of
# its placement; the narrowest type that holds the values halves that.
def _index_dtype(n: int):
    return np.int32 if n < 2**31 else np.int64


def _count_dtype(n: int):
    return np.int16 if n < 2**15 else np.int32


@functools.lru_cache(maxsize=64)
def _identity_prefix(width: int) -> np.ndarray:
    """Input i feeds channel i: the same read-only table for every elementwise block this wide."""
    prefix = (np.arange(width)[None, :] < np.arange(width + 1)[:, None]).astype(_count_dtype(width))
    prefix.flags.writeable = False
    return prefix


def lead_pattern(net: Network, target: str, source: str) -> LeadPattern | None:
    tgt, src = net.node(target), net.node(source)
    width = int(tgt.shape[-1]) if len(tgt.shape) > 1 else 1
    leads = tgt.size // width
    parts = []
    for block in net.incoming(target):
        if net.source_of(block).name != source:
            continue
        if isinstance(block.kernel, Dense):
            part = _dense_part(block, block.kernel, src.size, leads, width)
        elif isinstance(block.kernel, Elementwise):
            part = _elementwise_part(block, src.size, leads, width)
        elif isinstance(block.kernel, Conv2d):
            part = _patch_part(block, block.kernel, src.size, leads, width)
        else:
            part = None
        if part is None:
            return None
        parts.append(part)
    lead_of = [np.broadcast_to(np.arange(leads)[:, None], p.sources.shape)[p.sources >= 0] for p in parts]
    used = np.concatenate([p.sources[p.sources >= 0] for p in parts])
    # lead-major keys come as sorted runs (a lead's inputs in order): a stable sort merges them
    pairs = np.sort(np.concatenate(lead_of).astype(np.int64) * src.size + used, kind="stable")
    if (pairs[1:] == pairs[:-1]).any():
        return None  # a source neuron twice in one lead: its synapses there would merge
    return LeadPattern(width, parts, shared=bool(used.size) and int(np.bincount(used, minlength=src.size).max()) > 1)
