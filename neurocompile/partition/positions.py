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
output goes to the cores every step. So a product's rows take their lead's position, and so do
the populations that read them (the attention scores, the softmax): a head's graded attention
traffic stays in one stripe. A window's heads take the positions of different tokens of the
window (head h of H that of its row h * m / H): on one position, the last stages' few windows
would put all their heads on one chip's processors, whose work sets the step time. A population
fed elementwise by a host node (the heads' outputs, back in token-major order) takes each
channel's own input's position, so each head's output lands beside it; fed from the cores, a
token's channels share its first input's (a patch merging's channels come from four tokens, and
whoever reads the merged token reads it whole). The operands keep their own positions:
every neuron of a token's layer feeds every one of the token's Q, K and V neurons, a dense
fan-out that costs many more messages off the token's chip than the one message each operand
neuron sends to its lead's processor.

A poured population (fed elementwise: the residual stream's relays) may take instead the least
position of the neurons on the cores that read it, where placement finds that pays
(place._pulled): placed with its readers, each of a neuron's inputs sends it one message from
afar; placed with its inputs, it sends one to every core of its readers. A stage's last relay
is read by the patch merging, whose merged token reads four tokens and takes the first one's
position: on Swin-T's last stages a merged token takes several cores, and the other three
tokens' relay neurons sent their graded values, on most steps, to cores several chips away.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Network
from ..ir.nodes import InputPopulation, Product
from .fanout import HOST, FaninCache, destination_pieces, product_operands
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


def _first_inputs(pattern, n: int, by_channel: bool = True) -> np.ndarray:
    """Per target neuron, its first source neuron in one fan-in pattern (-1: none). A lead's
    channels share the lead's first input, except, with `by_channel`, where each channel has an
    input of its own (elementwise)."""
    if isinstance(pattern, LeadPattern):
        first = np.full((n // pattern.width, pattern.width), -1, np.int64)
        for part in pattern.parts:
            if part.one_to_one and by_channel:  # channel k's own input
                pick = part.sources.astype(np.int64)
            else:  # a dense lead: every channel reads the lead's inputs
                valid = part.sources >= 0
                lead_first = np.where(valid.any(axis=1), part.sources[np.arange(first.shape[0]), np.argmax(valid, axis=1)], -1)
                pick = np.broadcast_to(lead_first[:, None], first.shape)
            first = np.where(first < 0, pick, first)
        return first.ravel()
    m = pattern.tocsr()  # the cached pattern itself: read, not sorted in place
    first = np.full(n, -1, np.int64)
    has = np.diff(m.indptr) > 0
    if has.any():
        first[has] = np.minimum.reduceat(m.indices, m.indptr[:-1][has])
    return first


def _lead_positions(net: Network, prod: Product, pos: dict[str, np.ndarray]) -> np.ndarray:
    """Per row of a product, its lead's position. Head h of a window's H heads (the product's
    third axis from the end) takes the position of its row h * m / H (a row's position: that of
    its first A neuron), so that a window's heads spread over the window's tokens."""
    (a_name, a_rows, _), _ = product_operands(net, prod)
    valid = a_rows >= 0
    first = a_rows[np.arange(a_rows.shape[0]), np.argmax(valid, axis=1)]
    m = prod.a_shape[-2]
    row_pos = np.where(valid.any(axis=1), pos[a_name][np.maximum(first, 0)], NONE).reshape(-1, m)
    heads = int(prod.shape[-3]) if len(prod.shape) >= 3 else 1
    leads = np.arange(row_pos.shape[0])
    lead_pos = row_pos[leads, (leads % heads) * m // heads]
    lead_pos = np.where(lead_pos == NONE, row_pos.min(axis=1), lead_pos)  # that row is padding: the lead's first
    return np.repeat(lead_pos, m)


def _reader_positions(net: Network, name: str, pos: dict[str, np.ndarray], fanin: FaninCache) -> np.ndarray:
    """Per neuron of `name`, the least position of the neurons on the cores that read it (NONE:
    none do): its destinations, with each reader neuron's position as its unit."""
    least = np.full(net.node(name).size, NONE, np.int64)
    on_cores = {node: at for node, at in pos.items() if not net.node(node).on_host}
    for src, at in destination_pieces(net, name, on_cores, fanin):
        reader = at != HOST  # host nodes are not placed here
        np.minimum.at(least, src[reader], at[reader])
    return least


def neuron_positions(net: Network, fanin: FaninCache, pulled: frozenset = frozenset()) -> tuple[dict[str, np.ndarray], int]:
    """Per node (populations and host nodes), each neuron's position; and how many positions
    there are (they run over 0..that - 1). The populations in `pulled` take instead the least
    position of their readers on the cores, where they have some."""
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
                first = _first_inputs(fanin.get_pattern(pop.name, src), pop.size, by_channel=net.node(src).on_host)
                here = np.where((here == NONE) & (first >= 0), pos[src][np.maximum(first, 0)], here)
        pos[pop.name] = np.where(here == NONE, 0, here)  # no input at all: the start
    # From the readers' own positions, not pulled ones: through a chain of relays a merged
    # token's position would otherwise pass back to the whole stage.
    forward = dict(pos)
    for name in sorted(pulled):
        readers = _reader_positions(net, name, forward, fanin)
        pos[name] = np.where(readers == NONE, pos[name], readers)
    return pos, span
