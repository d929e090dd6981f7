"""Host ops: functions with no neuron form (softmax, layer norm), run off the neurocores.

Each has one integer form that every backend calls, so that their results are bit-identical; it
uses only integer arithmetic (no libm), so it is identical on every machine too (the float forms,
for ANN mode, are in ir/interpret.py). Inputs are integer currents `x` in units of 1/scale;
outputs are graded payloads in units of 2^-out_frac. Written against the array API, so numpy
arrays (the Lava process models) and torch tensors (the simulator, on any device) compute the same
integers.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import array_namespace, device

# 2^(k/256) in Q16 for k = 0..256: the fractional part of every exponential. Frozen integers;
# tests/test_hostops.py pins their checksum.
EXP2_LUT = np.array([round(2 ** (k / 256) * 65536) for k in range(257)], np.int64)
Q = 16  # fraction bits of exponents and of exp2 values
K_FRAC = 28  # fraction bits of the exponent constant: keeps its rounding below 1e-5 relative


def exp_constant(scale: float) -> int:
    """log2(e) / scale in Q28: e^(x / scale) = 2^((x * k) / 2^28) for an integer score x."""
    return int(round(np.log2(np.e) / scale * 2**K_FRAC))


def _on(like, values: np.ndarray):
    """Constant integers (a table, a node's parameters) as an array of `like`'s kind and device."""
    xp = array_namespace(like)
    return xp.asarray(values, dtype=xp.int64, device=device(like))


def exp2_fixed(z):
    """2^(z / 2^16) in Q16 for z <= 0 (int64), by table and linear interpolation."""
    xp = array_namespace(z)
    lut = _on(z, EXP2_LUT)
    n = z >> Q  # floor: the integer part, <= 0
    f = z & ((1 << Q) - 1)  # the fraction, in [0, 2^16)
    idx, rest = f >> 8, f & 255
    mant = lut[idx] + (((lut[idx + 1] - lut[idx]) * rest) >> 8)  # [2^16, 2^17)
    return mant >> xp.clip(-n, None, 62)


def softmax_fixed(x, exp_k: int, out_frac: int):
    """Softmax over the last axis of integer scores x (value x/scale), as payloads p with
    sum(p) <= 2^out_frac (floor division)."""
    xp = array_namespace(x)
    x = xp.astype(x, xp.int64)
    z = ((x - xp.max(x, axis=-1, keepdims=True)) * exp_k) >> (K_FRAC - Q)
    e = exp2_fixed(z)
    return (e << out_frac) // xp.sum(e, axis=-1, keepdims=True)


def isqrt(v):
    """floor(sqrt(v)) for non-negative int64, exactly: a float estimate (IEEE square roots are
    correctly rounded on every device), then integer fixes."""
    xp = array_namespace(v)
    r = xp.astype(xp.floor(xp.sqrt(xp.astype(v, xp.float64))), xp.int64)
    r = r - xp.astype(r * r > v, xp.int64)
    return r + xp.astype((r + 1) * (r + 1) <= v, xp.int64)


SOFTMAX_OUT_FRAC = 15  # probabilities in units of 2^-15
LAYERNORM_FRAC = 12  # outputs and gamma/beta in units of 2^-12


def layernorm_fixed(x, eps_int: int, gamma_q: np.ndarray, beta_q: np.ndarray, gb_frac: int, out_frac: int):
    """Layer norm over the last axis of integer inputs x (value x/scale). gamma_q and beta_q are
    the affine parameters in units of 2^-gb_frac; eps_int is epsilon in units of 1/scale^2.
    Returns payloads in units of 2^-out_frac. The mean is floored to an input unit, so that
    squares of deviations, not of inputs, are summed (they stay far inside int64)."""
    xp = array_namespace(x)
    x = xp.astype(x, xp.int64)
    gamma_q, beta_q = _on(x, gamma_q), _on(x, beta_q)
    n = x.shape[-1]
    d = x - xp.sum(x, axis=-1, keepdims=True) // n
    var = xp.sum(d * d, axis=-1, keepdims=True) // n
    std = xp.clip(isqrt(var + eps_int), 1, None)
    normed = (d << out_frac) // std  # (x - mean) / std in units of 2^-out_frac
    return ((normed * gamma_q) >> gb_frac) + ((beta_q << out_frac) >> gb_frac)


def host_op_fixed(node, x):
    """A host op node's integer output [B, n] from its integer input currents plus bias [B, n]."""
    xp = array_namespace(x)
    rows = xp.reshape(x, (x.shape[0], -1, node.shape[-1]))
    if node.op == "softmax":
        y = softmax_fixed(rows, node.exp_k, node.out_frac)
    else:
        y = layernorm_fixed(rows, node.eps_int, node.gamma_q, node.beta_q, node.gb_frac, node.out_frac)
    return xp.reshape(y, (x.shape[0], -1))
