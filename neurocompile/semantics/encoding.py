"""Input encoding (docs/semantics.md, "Input"): what the input population emits for a sample."""

from __future__ import annotations

import numpy as np

from ..ir.nodes import InputPopulation
from ..numerics import Numerics
from .rng import rate_probability


def encode_input(pop: InputPopulation, x: np.ndarray, numerics: Numerics) -> tuple[np.ndarray, int]:
    """Per-sample input [B, ...] -> ([B, n] graded payload, or spike probability out of 2^16;
    the number of elements clipped to the payload range)."""
    x = np.asarray(x, np.float64).reshape(x.shape[0], -1)
    if pop.graded:
        pmax = numerics.input_payload_max
        raw = np.rint(x * 2.0**pop.payload_frac_bits)
        return np.clip(raw, -pmax, pmax).astype(np.int64), int(np.count_nonzero(np.abs(raw) > pmax))
    return rate_probability(x), 0
