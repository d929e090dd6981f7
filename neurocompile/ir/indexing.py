"""Index maps on batches: the gathers that layout ops leave in synapse blocks."""

from __future__ import annotations

import numpy as np


def gather(x: np.ndarray, index: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """x [B, n] -> [B, *shape], element k reading x[:, index.flat[k]], or 0 where index is -1."""
    b = x.shape[0]
    if index is None:
        return x.reshape((b,) + tuple(shape))
    flat = index.ravel()
    if flat.size and flat.min() < 0:
        padded = np.concatenate([x.reshape(b, -1), np.zeros((b, 1), x.dtype)], axis=1)
        flat = np.where(flat >= 0, flat, padded.shape[1] - 1)
        return padded[:, flat].reshape((b,) + tuple(shape))
    return x.reshape(b, -1)[:, flat].reshape((b,) + tuple(shape))


def operand_views(prod, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A product's operands as the matrices it multiplies: outputs a [B, n_a], b [B, n_b] ->
    [B, ..., M, K] and [B, ..., K, N] through its index maps."""
    return gather(a, prod.a_index, prod.a_shape), gather(b, prod.b_index, prod.b_shape)
