"""What a slice of a population costs on one neurocore.

Synapse memory follows Loihi's accounting: each input axon's synapses into the core are stored
in blocks of up to `synapses_per_axon_block`, each synapse taking weight + index bits and each
block a header; an axon's blocks are packed into `synapse_word_bits`-bit words.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..ir.connectivity import block_matrix, block_rows
from ..ir.graph import Network
from .leads import LeadPattern, lead_pattern


@dataclass
class Cost:
    neurons: int
    synapse_bits: int
    fan_in_axons: int

    def fits(self, core: dict) -> bool:
        return self.neurons <= core["neurons"] and self.synapse_bits <= core["synapse_memory_bits"] and self.fan_in_axons <= core["fan_in_axons"]


def fanin_patterns(net: Network, pop_name: str) -> list[tuple[str, "sp.csr_matrix | LeadPattern"]]:
    """Per source population, the synapses of all its blocks into `pop_name` (blocks from the
    same source share axons, so their patterns merge): a LeadPattern where the blocks are
    token-wise (no matrix is built), else the 0/1 matrix [n_target, n_source]."""
    out = []
    for name in sorted({net.source_of(b).name for b in net.incoming(pop_name)}):
        leads = lead_pattern(net, pop_name, name)
        out.append((name, leads if leads is not None else _matrix_pattern(net, pop_name, name)))
    return out


def _union(rows_per_block: list[sp.csr_matrix]) -> sp.csr_matrix:
    """0/1 union of the patterns of blocks from one source (they share axons)."""
    m = sp.csr_matrix(sum(rows_per_block[1:], rows_per_block[0]))
    m.data[:] = 1.0
    return m


def _matrix_pattern(net: Network, pop_name: str, source: str) -> sp.csr_matrix:
    blocks = [b for b in net.incoming(pop_name) if net.source_of(b).name == source]
    return _union([block_matrix(b, net.node(source).size, (b.w_mant != 0).astype(np.float64)) for b in blocks])


def axons_of(pattern, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """(source neuron, synapses into the slice) of every axon a slice start..stop receives."""
    if isinstance(pattern, LeadPattern):
        return pattern.per_axon(start, stop)
    # Counted over the range of sources the slice reads, not over every source neuron: a slice
    # of a convolution or a window reads a narrow band of them, and counting it is linear
    # where sorting the slice's synapses is not.
    cols = pattern.indices[pattern.indptr[start] : pattern.indptr[stop]]
    if not cols.size:
        return cols.astype(np.int64), np.zeros(0, np.int64)
    lo = int(cols.min())
    counts = np.bincount(cols - lo)
    present = np.flatnonzero(counts)
    return present + lo, counts[present]


def neuron_patterns(net: Network, pop_name: str, neuron: int) -> list[tuple[str, sp.csr_matrix]]:
    """`fanin_patterns` of one neuron ([1, n_source] each), built from its rows alone: what a
    population's largest blocks cost to check before any of them is built whole."""
    rows: dict[str, list[sp.csr_matrix]] = {}
    for block in net.incoming(pop_name):
        src = net.source_of(block)
        rows.setdefault(src.name, []).append(block_rows(block, src.size, neuron, neuron + 1, (block.w_mant != 0).astype(np.float64)))
    return [(name, _union(rows[name])) for name in sorted(rows)]


def _axon_bits(n: np.ndarray, block: int, synapse_bits: int, header_bits: int, word_bits: int) -> np.ndarray:
    bits = n * synapse_bits + -(-n // block) * header_bits
    return -(-bits // word_bits) * word_bits


@functools.lru_cache(maxsize=8)
def _axon_bits_table(block: int, synapse_bits: int, header_bits: int, word_bits: int, size: int) -> np.ndarray:
    return _axon_bits(np.arange(size, dtype=np.int64), block, synapse_bits, header_bits, word_bits)


def axon_layout(core: dict, weight_bits: int) -> tuple[int, int, int, int]:
    """Synapses per axon block, bits per synapse, header bits per block, bits per word."""
    return core["synapses_per_axon_block"], weight_bits + core["synapse_index_bits"], core["synapse_header_bits"], core["synapse_word_bits"]


def axon_bits_each(synapses_per_axon: np.ndarray, core: dict, weight_bits: int) -> np.ndarray:
    """Synapse memory of each axon (0 for an axon without synapses). Slicing prices many small
    arrays of counts below a core's neurons: those are looked up in a table."""
    shape = axon_layout(core, weight_bits)
    table = _axon_bits_table(*shape, core["neurons"] + 1)
    n = np.asarray(synapses_per_axon)
    if not n.size or (n.min() >= 0 and n.max() < table.size):
        return table[n]
    return _axon_bits(n.astype(np.int64), *shape)


def axon_bits(synapses_per_axon: np.ndarray, core: dict, weight_bits: int) -> int:
    return int(axon_bits_each(synapses_per_axon, core, weight_bits).sum())


def slice_cost(patterns, start: int, stop: int, core: dict, weight_bits: int) -> Cost:
    bits = axons = 0
    for _, pattern in patterns:
        _, per_axon = axons_of(pattern, start, stop)
        axons += per_axon.size
        bits += axon_bits(per_axon, core, weight_bits)
    return Cost(stop - start, bits, axons)
