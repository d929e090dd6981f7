"""Host ops: functions with no neuron form (softmax, layer norm), run off the neurocores.

Each has one integer form that every backend calls, so that their results are bit-identical; it
uses only integer arithmetic (no libm), so it is identical on every machine too (the float forms,
for ANN mode, are in ir/interpret.py). Inputs are integer currents `x` in units of 1/scale; outputs are
graded payloads in units of 2^-out_frac.
"""

from __future__ import annotations

import numpy as np

# 2^(k/256) in Q16 for k = 0..256: the fractional part of every exponential. Frozen integers;
# tests/test_hostops.py pins their checksum.
EXP2_LUT = np.array([round(2 ** (k / 256) * 65536) for k in range(257)], np.int64)
Q = 16  # fraction bits of exponents and of exp2 values
K_FRAC = 28  # fraction bits of the exponent constant: keeps its rounding below 1e-5 relative


def exp_constant(scale: float) -> int:
    """log2(e) / scale in Q28: e^(x / scale) = 2^((x * k) / 2^28) for an integer score x."""
    return int(round(np.log2(np.e) / scale * 2**K_FRAC))


def exp2_fixed(z: np.ndarray) -> np.ndarray:
    """2^(z / 2^16) in Q16 for z <= 0 (int64), by table and linear interpolation."""
    n = z >> Q  # floor: the integer part, <= 0
    f = z & ((1 << Q) - 1)  # the fraction, in [0, 2^16)
    idx, rest = f >> 8, f & 255
    mant = EXP2_LUT[idx] + (((EXP2_LUT[idx + 1] - EXP2_LUT[idx]) * rest) >> 8)  # [2^16, 2^17)
    shift = np.minimum(-n, 62)
    return mant >> shift


def softmax_fixed(x: np.ndarray, exp_k: int, out_frac: int) -> np.ndarray:
    """Softmax over the last axis of integer scores x (value x/scale), as payloads p with
    sum(p) <= 2^out_frac (floor division)."""
    x = x.astype(np.int64)
    z = ((x - x.max(axis=-1, keepdims=True)) * exp_k) >> (K_FRAC - Q)
    e = exp2_fixed(z)
    return (e << out_frac) // e.sum(axis=-1, keepdims=True)


def isqrt(v: np.ndarray) -> np.ndarray:
    """floor(sqrt(v)) for non-negative int64, exactly: a float estimate, then integer fixes."""
    r = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)
    r -= (r * r > v).astype(np.int64)
    r += ((r + 1) * (r + 1) <= v).astype(np.int64)
    return r


SOFTMAX_OUT_FRAC = 15  # probabilities in units of 2^-15
LAYERNORM_FRAC = 12  # outputs and gamma/beta in units of 2^-12


def layernorm_fixed(x: np.ndarray, eps_int: int, gamma_q: np.ndarray, beta_q: np.ndarray, gb_frac: int, out_frac: int) -> np.ndarray:
    """Layer norm over the last axis of integer inputs x (value x/scale). gamma_q and beta_q are
    the affine parameters in units of 2^-gb_frac; eps_int is epsilon in units of 1/scale^2.
    Returns payloads in units of 2^-out_frac. The mean is floored to an input unit, so that
    squares of deviations, not of inputs, are summed (they stay far inside int64)."""
    x = x.astype(np.int64)
    n = x.shape[-1]
    d = x - x.sum(axis=-1, keepdims=True) // n
    var = (d * d).sum(axis=-1, keepdims=True) // n
    std = np.maximum(isqrt(var + eps_int), 1)
    normed = (d << out_frac) // std  # (x - mean) / std in units of 2^-out_frac
    return ((normed * gamma_q) >> gb_frac) + ((beta_q << out_frac) >> gb_frac)


def host_op_fixed(node, x: np.ndarray) -> np.ndarray:
    """A host op node's integer output [B, n] from its integer input currents plus bias [B, n]."""
    rows = x.reshape(x.shape[0], -1, node.shape[-1])
    if node.op == "softmax":
        y = softmax_fixed(rows, node.exp_k, node.out_frac)
    else:
        y = layernorm_fixed(rows, node.eps_int, node.gamma_q, node.beta_q, node.gb_frac, node.out_frac)
    return y.reshape(x.shape[0], -1)
