"""The integer arithmetic of spike-product nodes, shared by the simulator and the Lava process.

Two forms (ir.nodes.PRODUCT_FORMS; docs/semantics.md, "Products"):
- coincidence: out(t) = (A(t) @ B(t)) >> shift, the per-step product the MST paper evaluates. Its
  sum over time counts coincidences, which is not the product of the operands' rates.
- telescoping: out(t) = P(t) - P(t-1) with P(t) = S_A(t) @ S_B(t) / (t+1), the running sums S
  divided once by the step count, so that the outputs sum to T x (mean A) @ (mean B): the product
  of rates. Each payload is clipped to the node's bound and the clipped part carried to the next
  step, so the sum is exact up to a residual no larger than the bound.

The callers multiply the operands' views ([..., M, K] @ [..., K, N]) in float64, which is exact
while every partial sum stays below 2^53 (`telescoping_step_limit`), and hand the result here.
Written against the array API: numpy arrays and torch tensors give the same integers.
"""

from __future__ import annotations

import math

from array_api_compat import array_namespace

EXACT_FLOAT64 = 2**53


def coincidence(ab, out_shift: int):
    """The payload from A(t) @ B(t)."""
    xp = array_namespace(ab)
    return xp.astype(xp.round(ab), xp.int64) >> out_shift


def telescoping(sums, emitted, t: int, out_shift: int, bound: int):
    """The payload of step t (0-based) from S_A(t) @ S_B(t) and what the node emitted before;
    the caller adds the result to `emitted`."""
    xp = array_namespace(sums, emitted)
    total = xp.reshape(xp.astype(xp.round(sums), xp.int64), emitted.shape)
    target = total // ((t + 1) << out_shift)
    return xp.clip(target - emitted, -bound, bound)


def telescoping_step_limit(k: int, max_a: int, max_b: int) -> int:
    """The most steps over which k x S_A x S_B stays exact in float64."""
    return math.isqrt((EXACT_FLOAT64 - 1) // max(1, k * max_a * max_b))


def product_events(a, b):
    """The synaptic events of A @ B lowered onto coincidence neurons, one neuron per (m, k, n)
    that fires when A[m, k] and B[k, n] are both nonzero, feeding a sum neuron per (m, n): each
    nonzero A[m, k] reaches the N neurons of its row, each nonzero B[k, n] the M of its column,
    and each coincidence reaches its sum. Summed over all but the first (batch) axis.
    a [B, ..., M, K], b [B, ..., K, N]."""
    xp = array_namespace(a, b)
    nz_a, nz_b = a != 0, b != 0  # booleans, counted in int64 by the sums (no int64 copy of the operands)
    m, n = a.shape[-2], b.shape[-1]
    meets = xp.sum(nz_a, axis=-2, dtype=xp.int64) * xp.sum(nz_b, axis=-1, dtype=xp.int64)
    batch = a.shape[0]

    def total(v):
        return xp.sum(xp.reshape(v, (batch, -1)), axis=1, dtype=xp.int64)

    return total(nz_a) * n + total(nz_b) * m + total(meets)
