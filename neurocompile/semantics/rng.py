"""Counter-based pseudo-random numbers: a pure function of (seed, stream, step, index).

Nothing here keeps state, so every backend draws the same numbers for the same spike in any
order, batch, process split or device (docs/semantics.md, "Random numbers"). The functions take
numpy arrays or torch tensors alike (array API): the arithmetic is int64 with every value kept in
[0, 2^32), and a product wraps modulo 2^64, which leaves the low 32 bits that the mixer keeps
exact in either library.
"""

from __future__ import annotations

import zlib

from array_api_compat import array_namespace, device

MASK32 = 0xFFFFFFFF
MIX1, MIX2 = 0x7FEB352D, 0x846CA68B  # the multipliers of the mixer


def mix32(x):
    """A 32-bit avalanche mixer (xorshift-multiply) on int64 values in [0, 2^32), or on a Python
    int."""
    x = x & MASK32
    x = x ^ (x >> 16)
    x = (x * MIX1) & MASK32
    x = x ^ (x >> 15)
    x = (x * MIX2) & MASK32
    return x ^ (x >> 16)


def hash32(seed: int, stream: int, step: int, index):
    """Values in [0, 2^32) (int64) for the given counters; `index` an integer array."""
    h = mix32(mix32(mix32(seed & MASK32) ^ (stream & MASK32)) ^ (step & MASK32))
    return mix32(h ^ (index & MASK32))


def stream_id(name: str) -> int:
    """A stable 32-bit stream number for a named node (CRC-32 of its UTF-8 name)."""
    return zlib.crc32(name.encode("utf-8")) & 0xFFFFFFFF


PROB_BITS = 16


def rate_probability(x):
    """Spike probability of rate-coded input, as an integer out of 2^16 (clip(x, 0, 1))."""
    xp = array_namespace(x)
    return xp.astype(xp.round(xp.clip(x, 0.0, 1.0) * (1 << PROB_BITS)), xp.int64)


def _arange(like, n: int):
    xp = array_namespace(like)
    return xp.arange(n, dtype=xp.int64, device=device(like))


def rate_spikes(seed: int, stream: int, step: int, prob):
    """Bernoulli spikes: the top 16 bits of the hash below the probability. prob [..., n]."""
    draws = hash32(seed, stream, step, _arange(prob, prob.shape[-1])) >> (32 - PROB_BITS)
    return draws < prob


def failure_threshold(p: float) -> int:
    """A failure probability as an integer out of 2^16: an event fails when its draw is below."""
    return int(round(p * (1 << PROB_BITS)))


def survivors(seed: int, stream: int, step: int, index, threshold: int):
    """Which events survive a synaptic failure: the top 16 bits of the hash of each event's
    counters, at or above the threshold. One draw per index (a source neuron, or a synapse)."""
    return (hash32(seed, stream, step, index) >> (32 - PROB_BITS)) >= threshold


def neuron_survivors(seed: int, stream: int, step: int, like, threshold: int):
    """`survivors` of every neuron of a population whose outputs are `like` [..., n]."""
    return survivors(seed, stream, step, _arange(like, like.shape[-1]), threshold)
