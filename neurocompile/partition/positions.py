"""Where in the input each neuron's work lies, as one number per neuron: placement fills the
cores a stripe of positions at a time, so that the layers of one region of the input, and the
work of one attention window, share a chip.

A layer's neurons come in its own order: tokens in raster order, or windows, heads and tokens
after a window partition. Cut by the fraction of its neurons, token t of a token-major layer
would land beside another token of a window-major one, and every spike between them would
cross chips. So a neuron's position is that of its first input (in the first source that has
one), back to the input: for an image [N, C, H, W], the rank of its pixel along a Hilbert curve
over H x W, which keeps a square region in a few short runs; for any other input, its index.

A spike product works on its leads (a window's head) on one chip's processors, and its graded
output goes to the cores every step. So a product's rows take their lead's position (the first
among its rows), and so do the populations that read them (the attention scores, the softmax):
a window's graded attention traffic stays in one stripe. The operands keep their own positions:
every neuron of a token's layer feeds every one of the token's Q, K and V neurons, a dense
fan-out that costs many more messages off the token's chip than the one message each operand
neuron sends to its lead's processor.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Network
from ..ir.nodes import InputPopulation, Product
from .fanout import FaninCache, product_operands
from .leads import LeadPattern

NONE = np.iinfo(np.int64).max  # no position found (yet)


def hilbert_rank(height: int, width: int) -> np.ndarray:
    """[height, width]: each cell's rank along a Hilbert curve over the smallest power-of-two
    square that holds the grid, counting only the grid's cells."""
    n = 1 << max(0, int(np.ceil(np.log2(max(height, width, 1)))))
    y, x = (a.ravel().astype(np.int64) for a in np.mgrid[0:height, 0:width])
    d = np.zeros(y.size, np.int64)
    s = n // 2
    while s > 0:
        rx, ry = (x & s) > 0, (y & s) > 0
        d += s * s * ((3 * rx) ^ ry)
        flip = ~ry & rx  # the curve's quadrant turned: reflect, then swap the axes
        x, y = np.where(flip, n - 1 - x, x), np.where(flip, n - 1 - y, y)
        x, y = np.where(ry, x, y), np.where(ry, y, x)
        s //= 2
    rank = np.empty(y.size, np.int64)
    rank[np.argsort(d, kind="stable")] = np.arange(y.size)
    return rank.reshape(height, width)


def _input_positions(pop: InputPopulation) -> tuple[np.ndarray, int]:
    shape = tuple(int(d) for d in pop.shape)
    if len(shape) != 4:
        return np.arange(pop.size, dtype=np.int64), pop.size
    h, w = shape[2:]
    return np.broadcast_to(hilbert_rank(h, w), shape).ravel().astype(np.int64), h * w


def _first_inputs(pattern, n: int) -> np.ndarray:
    """Per target neuron, its first source neuron in one fan-in pattern (-1: none)."""
    if isinstance(pattern, LeadPattern):
        first = np.full(n // pattern.width, -1, np.int64)
        for part in pattern.parts:
            valid = part.sources >= 0
            pick = part.sources[np.arange(first.size), np.argmax(valid, axis=1)]
            first = np.where((first < 0) & valid.any(axis=1), pick, first)
        return np.repeat(first, pattern.width)
    m = pattern.tocsr()  # the cached pattern itself: read, not sorted in place
    first = np.full(n, -1, np.int64)
    has = np.diff(m.indptr) > 0
    if has.any():
        first[has] = np.minimum.reduceat(m.indices, m.indptr[:-1][has])
    return first


def _lead_positions(net: Network, prod: Product, pos: dict[str, np.ndarray]) -> np.ndarray:
    """Per row of a product, its lead's position: the first among the positions of its rows'
    first A neurons."""
    (a_name, a_rows, _), _ = product_operands(net, prod)
    valid = a_rows >= 0
    first = a_rows[np.arange(a_rows.shape[0]), np.argmax(valid, axis=1)]
    row_pos = np.where(valid.any(axis=1), pos[a_name][np.maximum(first, 0)], NONE)
    m = prod.a_shape[-2]
    return np.repeat(row_pos.reshape(-1, m).min(axis=1), m)


def neuron_positions(net: Network, fanin: FaninCache) -> tuple[dict[str, np.ndarray], int]:
    """Per node (populations and host nodes), each neuron's position; and how many positions
    there are (they run over 0..that - 1)."""
    pos: dict[str, np.ndarray] = {}
    span = 1
    for pop in net.populations():
        if isinstance(pop, InputPopulation):
            pos[pop.name], count = _input_positions(pop)
            span = max(span, count)
            continue
        if isinstance(pop, Product):
            row_pos = _lead_positions(net, pop, pos)
            here = np.repeat(row_pos, pop.size // max(1, row_pos.size))
        else:
            here = np.full(pop.size, NONE, np.int64)
            for src in fanin.sources(pop.name):
                if (here != NONE).all():
                    break
                first = _first_inputs(fanin.get_pattern(pop.name, src), pop.size)
                here = np.where((here == NONE) & (first >= 0), pos[src][np.maximum(first, 0)], here)
        pos[pop.name] = np.where(here == NONE, 0, here)  # no input at all: the start
    return pos, span
