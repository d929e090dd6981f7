"""Synaptic failure (docs/semantics.md, "Synaptic failure"): which spikes or synaptic events a
random spike mask drops. The integer parameters of every failing edge are derived here once, from
the IR's float probability, and every backend draws through the functions below."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from array_api_compat import array_namespace

from ..ir.nodes import Product, SynapseBlock
from .rng import failure_threshold, neuron_survivors, stream_id, survivors


@dataclass(frozen=True)
class Failure:
    threshold: int  # out of 2^16: an event fails when its draw is below
    stream: int  # the random stream it draws from
    per_synapse: bool  # one draw per synaptic event (else one per presynaptic spike)


def block_failure(block: SynapseBlock) -> Failure | None:
    """Per spike, a block draws from its mask's stream, shared with every edge the mask covers;
    per synapse, from its own."""
    if block.failure <= 0:
        return None
    per_synapse = block.failure_mode == "synapse"
    return Failure(failure_threshold(block.failure), stream_id(block.name if per_synapse else block.failure_group), per_synapse)


def operand_failure(prod: Product, side: str) -> Failure | None:
    """A masked product operand ('a' or 'b'): each of its spikes fails, per spike."""
    p = getattr(prod, f"failure_{side}")
    if p <= 0:
        return None
    return Failure(failure_threshold(p), stream_id(getattr(prod, f"failure_group_{side}")), False)


def surviving_spikes(failure: Failure | None, seed: int, step: int, x):
    """A source's outputs [..., n] with the spikes its mask drops this step set to zero."""
    if failure is None:
        return x
    return x * neuron_survivors(seed, failure.stream, step, x, failure.threshold)


def synapse_ids(m: sp.csr_matrix) -> np.ndarray:
    """The counter of each stored synapse of M [n_target, n_source] (CSR order) for per-synapse
    draws: target * n_source + source."""
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    return rows * m.shape[1] + m.indices.astype(np.int64)


def kept_synapses(ids, failure: Failure, seed: int, step: int):
    """Per stored synapse (CSR order), whether it transmits this step."""
    return survivors(seed, failure.stream, step, ids, failure.threshold)


def kept_events(x, sources, keep):
    """Synaptic events [B] of a per-synapse failing block: kept synapses whose source sent
    something. x [B, n_source]; sources: each stored synapse's source neuron."""
    xp = array_namespace(x)
    return xp.sum(xp.astype(x[:, sources[keep]] != 0, xp.int64), axis=1)


def failing_synapses(m: sp.csr_matrix, ids: np.ndarray, failure: Failure, seed: int, step: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A block whose every synapse fails on its own, on numpy arrays: (current [B, n_target] =
    kept M @ x, in the matrix's units, unrounded; synaptic events [B]). x [B, n_source]."""
    keep = kept_synapses(ids, failure, seed, step)
    kept = sp.csr_matrix((m.data * keep, m.indices, m.indptr), shape=m.shape)
    return np.asarray(kept @ x.T.astype(np.float64)).T, kept_events(x, m.indices, keep)


def shift(acc, s: int):
    """acc * 2^s for integer acc; a negative s is an arithmetic right shift (floor)."""
    return acc << s if s >= 0 else acc >> -s
