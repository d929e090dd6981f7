"""Counter-based pseudo-random numbers: a pure function of (seed, stream, step, index).

Nothing here keeps state, so every backend draws the same numbers for the same spike in any
order, batch or process split (docs/semantics.md, "Random numbers").
"""

from __future__ import annotations

import zlib

import numpy as np

MASK32 = np.uint64(0xFFFFFFFF)


def mix32(x: np.ndarray) -> np.ndarray:
    """A 32-bit avalanche mixer (xorshift-multiply, constants 0x7feb352d and 0x846ca68b),
    computed in uint64 and masked so that no step depends on overflow behaviour."""
    x = np.asarray(x, np.uint64) & MASK32
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & MASK32
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & MASK32
    x ^= x >> np.uint64(16)
    return x


def hash32(seed: int, stream: int, step: int, index: np.ndarray) -> np.ndarray:
    """uint32 values (as uint64) for the given counters; `index` may be any integer array."""
    h = mix32(np.uint64(seed & 0xFFFFFFFF))
    h = mix32(h ^ np.uint64(stream & 0xFFFFFFFF))
    h = mix32(h ^ np.uint64(step & 0xFFFFFFFF))
    return mix32(h ^ (np.asarray(index, np.uint64) & MASK32))


def stream_id(name: str) -> int:
    """A stable 32-bit stream number for a named node (CRC-32 of its UTF-8 name)."""
    return zlib.crc32(name.encode("utf-8")) & 0xFFFFFFFF


PROB_BITS = 16


def rate_probability(x: np.ndarray) -> np.ndarray:
    """Spike probability of rate-coded input, as an integer out of 2^16 (clip(x, 0, 1))."""
    return np.rint(np.clip(x, 0.0, 1.0) * (1 << PROB_BITS)).astype(np.int64)


def rate_spikes(seed: int, stream: int, step: int, prob: np.ndarray) -> np.ndarray:
    """Bernoulli spikes: the top 16 bits of the hash below the probability. prob [..., n]."""
    n = prob.shape[-1]
    draws = (hash32(seed, stream, step, np.arange(n)) >> np.uint64(32 - PROB_BITS)).astype(np.int64)
    return draws < prob


def failure_threshold(p: float) -> int:
    """A failure probability as an integer out of 2^16: an event fails when its draw is below."""
    return int(round(p * (1 << PROB_BITS)))


def survivors(seed: int, stream: int, step: int, index: np.ndarray, threshold: int) -> np.ndarray:
    """Which events survive a synaptic failure: the top 16 bits of the hash of each event's
    counters, at or above the threshold. One draw per index (a source neuron, or a synapse)."""
    draws = (hash32(seed, stream, step, index) >> np.uint64(32 - PROB_BITS)).astype(np.int64)
    return draws >= threshold
