"""Token-major layout for convolution outputs that a transformer reads as tokens.

A patch embedding is a convolution whose output, [1, C, H, W] as ONNX lays it out, the next
layers read as H*W tokens of C channels. Placement cuts a population into contiguous slices, so
in channel-major order a slice holds one channel at many positions: every neuron of it reads a
different input patch, and a core fills its fan-in axons with a few dozen neurons. Stored as
[1, H, W, C], a slice holds whole tokens, whose C neurons share one patch's axons. The pass
permutes such a population when every block reading it then reads whole tokens, and moves the
permutation into the index maps of its blocks, so the network computes the same function.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Network
from ..ir.kernels import Conv2d
from ..ir.nodes import IFPopulation, Product


def token_major_convolutions(net: Network) -> list[str]:
    """Permutes every eligible population to [1, H, W, C]; returns their names."""
    operands = {src.name for p in net.populations() if isinstance(p, Product) for src in net.operands(p.name)}
    changed = []
    for pop in net.populations():
        if not isinstance(pop, IFPopulation) or len(pop.shape) != 4 or pop.shape[0] != 1 or pop.name in operands:
            continue
        incoming, outgoing = net.incoming(pop.name), net.outgoing(pop.name)
        if not incoming or not all(isinstance(b.kernel, Conv2d) and b.out_index is None for b in incoming):
            continue
        _, c, h, w = pop.shape
        # new flat position (h, w, c) -> old flat position (c, h, w), and back
        old_of_new = np.arange(pop.size, dtype=np.int64).reshape(c, h, w).transpose(1, 2, 0).ravel()
        new_of_old = np.empty_like(old_of_new)
        new_of_old[old_of_new] = np.arange(pop.size, dtype=np.int64)
        reads = {b.name: _reindexed(b.in_index, b.view_shape, new_of_old) for b in outgoing}
        if not outgoing or not all(_whole_tokens(index, c) for index in reads.values()):
            continue
        pop.shape = (1, h, w, c)
        if pop.bias.size:
            pop.bias = pop.bias[old_of_new]
        for block in incoming:
            block.out_index = old_of_new.reshape(pop.shape)
        for block in outgoing:
            index = reads[block.name]
            block.in_index = None if np.array_equal(index.ravel(), np.arange(pop.size)) else index
        changed.append(pop.name)
    return changed


def _reindexed(index: np.ndarray | None, view_shape: tuple[int, ...], new_of_old: np.ndarray) -> np.ndarray:
    old = np.arange(new_of_old.size, dtype=np.int64).reshape(view_shape) if index is None else index
    return np.where(old >= 0, new_of_old[np.maximum(old, 0)], -1)


def _whole_tokens(index: np.ndarray, channels: int) -> bool:
    """Each run of `channels` view elements reads one whole token in order, or nothing."""
    if index.size % channels:
        return False
    runs = index.reshape(-1, channels)
    first = runs[:, :1]
    whole = (first % channels == 0) & np.all(runs == first + np.arange(channels), axis=1, keepdims=True)
    empty = np.all(runs == -1, axis=1, keepdims=True)
    return bool(np.all(whole | empty))
