"""Synapse blocks as explicit matrices [n_target, n_source]: what Lava's Dense/Sparse processes
execute and what placement counts. Built by composing the block's index maps with its kernel."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .nodes import SynapseBlock


def selection(index: np.ndarray, n_in: int) -> sp.csr_matrix:
    """The 0/1 matrix of a gather: row k picks column index[k] (no entry where it is -1)."""
    flat = index.ravel()
    rows = np.flatnonzero(flat >= 0)
    return sp.csr_matrix((np.ones(rows.size), (rows, flat[rows])), shape=(flat.size, n_in))


def block_matrix(block: SynapseBlock, n_source: int, weights: np.ndarray | None = None) -> sp.csr_matrix:
    """current = M @ source_values, with M [n_target, n_source] (weights: the kernel's by default)."""
    m = block.kernel.to_sparse(tuple(block.view_shape), block.kernel.weight if weights is None else weights)
    if block.in_index is not None:
        m = m @ selection(block.in_index, n_source)
    if block.out_index is not None:
        m = selection(block.out_index, m.shape[0]) @ m
    m = sp.csr_matrix(m)
    m.sum_duplicates()
    m.eliminate_zeros()
    return m


def block_rows(block: SynapseBlock, n_source: int, start: int, stop: int, weights: np.ndarray | None = None) -> sp.csr_matrix:
    """Rows start..stop of `block_matrix`, built without the rest of the matrix: what a slice of
    the target population receives, for blocks too large to hold whole."""
    view_rows = np.arange(start, stop, dtype=np.int64) if block.out_index is None else block.out_index.ravel()[start:stop].astype(np.int64)
    present = view_rows >= 0
    m = block.kernel.rows(tuple(block.view_shape), view_rows[present], block.kernel.weight if weights is None else weights)
    per_row = np.zeros(stop - start, np.int64)
    per_row[present] = np.diff(m.indptr)  # targets the out_index leaves empty get empty rows
    data, cols = m.data, m.indices.astype(np.int64)
    rows = np.repeat(np.arange(stop - start), per_row)
    if block.in_index is not None:
        cols = block.in_index.ravel()[cols].astype(np.int64)
        keep = cols >= 0
        data, cols, rows = data[keep], cols[keep], rows[keep]
    out = sp.csr_matrix((data, (rows, cols)), shape=(stop - start, n_source))
    out.sum_duplicates()
    out.eliminate_zeros()
    return out


def source_fanout(block: SynapseBlock, n_source: int) -> np.ndarray:
    """Nonzero synapses leaving each source neuron through this block."""
    view = tuple(block.view_shape)
    uses = None
    if block.out_index is not None:  # how many targets take each kernel output
        taken = block.out_index.ravel()
        uses = np.bincount(taken[taken >= 0], minlength=int(np.prod(block.kernel.out_shape(view))))
    per_view = block.kernel.fanout(view, uses)
    if block.in_index is None:
        return per_view
    flat = block.in_index.ravel()
    keep = flat >= 0
    return np.bincount(flat[keep], weights=per_view[keep], minlength=n_source).astype(np.int64)


def n_synapses(block: SynapseBlock, n_source: int) -> int:
    return int(source_fanout(block, n_source).sum())
