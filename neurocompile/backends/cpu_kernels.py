"""The CPU simulator's step-by-step loops, compiled by numba.

A window's synaptic currents are matrix products (torch does those well); what remains is a
recurrence along the steps, one pass per neuron. Written as numpy operations it makes a
temporary array for every operation of every step; compiled, it reads each current once and
writes each output once (benchmarks/sim_vs_reference.py: the CIFAR-sized MST went from 4.0x to
1.76x the float loop's time with these loops and the padding dropped). The
integer semantics are those of docs/semantics.md; a GPU runs the same recurrence on tensors
(`neurocompile.backends.sim.integrate_and_fire`) and the tests hold the two equal.
"""

from __future__ import annotations

import numba
import numpy as np


TILE = 4096  # neurons per parallel task: the membranes of a tile stay in the core's cache over the window


@numba.njit(cache=True, nogil=True, parallel=True)
def integrate_and_fire(v: np.ndarray, current: np.ndarray, spikes: np.ndarray, counts: np.ndarray, threshold: int, vmax: int) -> None:
    """IF neurons over a window, in place: v [B, n] (int64) the membranes before it, current
    [w, B, n] (int32); writes spikes [w, B, n] (float32, 0 or 1), adds each neuron's spikes to
    counts [B, n] (int64) and leaves the membranes after the window in v. Each step
    v = clip(v + I, -vmax, vmax); a spike where v >= threshold, which subtracts it."""
    w, b, n = current.shape
    tiles = (n + TILE - 1) // TILE
    for task in numba.prange(b * tiles):
        j, k0 = task // tiles, (task % tiles) * TILE
        k1 = min(n, k0 + TILE)
        vj, cj = v[j, k0:k1], counts[j, k0:k1]
        for i in range(w):
            ij, sj = current[i, j, k0:k1], spikes[i, j, k0:k1]
            for k in range(k1 - k0):  # contiguous: the compiler vectorises it
                x = min(max(vj[k] + ij[k], -vmax), vmax)
                fired = x >= threshold
                vj[k] = x - threshold * fired
                sj[k] = fired
                cj[k] += fired


@numba.njit(cache=True, nogil=True, parallel=True)
def gather_columns(x: np.ndarray, index: np.ndarray, out: np.ndarray) -> None:
    """out[r, j] = x[r, index[j]] for rows r of x [R, n] and indices in [0, n) (the caller's
    promise, which _Gather checks once: nothing is checked here). Rows in parallel: torch's
    index_select along the second axis is the slower gather on a CPU."""
    for r in numba.prange(x.shape[0]):
        xr, outr = x[r], out[r]
        for j in range(index.shape[0]):
            outr[j] = xr[index[j]]


@numba.njit(cache=True, nogil=True, parallel=True)
def deliver(current: np.ndarray, y: np.ndarray, pending: np.ndarray, right_shift: int) -> None:
    """Adds a block's currents to its target's window, in place: current [w, B, n] (int32) gets
    pending [B, n] (int32: what the window before left) at its first step and the sums y
    [w * B, n] (floats holding exact integers, shifted right by right_shift, a floor) of each
    step at the next; the last step's sums become pending. Converting, shifting and adding in
    one pass instead of three."""
    w, b, n = current.shape
    tiles = (n + TILE - 1) // TILE
    for task in numba.prange(b * tiles):
        j, k0 = task // tiles, (task % tiles) * TILE
        k1 = min(n, k0 + TILE)
        first, last = current[0, j, k0:k1], pending[j, k0:k1]
        for k in range(k1 - k0):
            first[k] += last[k]
        for i in range(w - 1):
            yi, dst = y[i * b + j, k0:k1], current[i + 1, j, k0:k1]
            for k in range(k1 - k0):
                dst[k] += np.int64(yi[k]) >> right_shift
        yi = y[(w - 1) * b + j, k0:k1]
        for k in range(k1 - k0):
            last[k] = np.int64(yi[k]) >> right_shift


@numba.njit(cache=True, nogil=True, parallel=True)
def softmax(x: np.ndarray, lut: np.ndarray, exp_k: int, shift: int, out_frac: int, out: np.ndarray) -> None:
    """semantics.hostops.softmax_fixed over the rows of x [R, n] (int32 currents), into out
    [R, n] (int32): z = ((x - max) * exp_k) >> shift, 2^(z / 2^16) by the table `lut` with
    linear interpolation, then (e << out_frac) // sum(e). One pass per row instead of a
    temporary per operation; tests hold it equal to the array-API form."""
    r_count, n = x.shape
    for r in numba.prange(r_count):
        xr = x[r]
        top = np.int64(xr[0])
        for j in range(1, n):
            top = max(top, np.int64(xr[j]))
        e = np.empty(n, np.int64)
        total = np.int64(0)
        for j in range(n):
            z = ((np.int64(xr[j]) - top) * exp_k) >> shift
            f = z & 0xFFFF
            idx, rest = f >> 8, f & 255
            mant = lut[idx] + (((lut[idx + 1] - lut[idx]) * rest) >> 8)
            e[j] = mant >> min(-(z >> 16), 62)
            total += e[j]
        for j in range(n):
            out[r, j] = (e[j] << out_frac) // total
