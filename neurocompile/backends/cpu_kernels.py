"""The CPU simulator's step-by-step and bookkeeping loops, compiled by numba.

A window's synaptic currents are matrix products (torch does those well); what remains is a
recurrence along the steps, one pass per neuron, and moving integers through index maps. Written
as tensor operations it makes a temporary array for every operation of every step; compiled, it
reads each value once and writes each output once, and an index map made of runs of consecutive
neurons is copied or delivered run by run (benchmarks/sim_vs_reference.py: the CIFAR-sized MST
went from 4.0x the float loop's time to 1.76x with the first of these loops and the padding
dropped, and to 0.85-0.93x with delivery through runs, compiled elementwise blocks and product
bookkeeping). The integer semantics are those of docs/semantics.md; a GPU runs the same steps
as tensor operations (`neurocompile.backends.sim`, `COMPILED_LOOPS` off), and the tests hold the
two equal, loop by loop and on whole networks.
"""

from __future__ import annotations

import numba
import numpy as np


# Neurons per parallel task: the membranes of a tile stay in the core's cache over the window,
# and one sample of a 4096-neuron population still splits over two cores.
TILE = 2048


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
def gather_runs(x: np.ndarray, run_source: np.ndarray, run_start: np.ndarray, out: np.ndarray) -> None:
    """gather_columns for an index made of runs of consecutive neurons (a window's tokens, a
    patch merge's quarter: runs as long as a token's channels): run r fills out's columns
    run_start[r] to run_start[r + 1] - 1 from x's columns run_source[r] on, or with zeros
    where run_source[r] < 0 (padding). A run is copied as a slice (a block copy, several
    times faster than an element loop here); single indices cannot be."""
    for r in numba.prange(x.shape[0]):
        xr, outr = x[r], out[r]
        for q in range(run_source.shape[0]):
            first, start, stop = run_source[q], run_start[q], run_start[q + 1]
            if first < 0:
                outr[start:stop] = 0
            else:
                outr[start:stop] = xr[first:first + stop - start]


@numba.njit(cache=True, nogil=True, parallel=True)
def count_nonzero(out: np.ndarray, counts: np.ndarray) -> None:
    """Adds to counts [B, n] (int64) the steps of out [w, B, n] whose value is nonzero: one
    pass, where a tensor comparison and a sum over the first axis make two and a bool copy."""
    w, b, n = out.shape
    tiles = (n + TILE - 1) // TILE
    for task in numba.prange(b * tiles):
        j, k0 = task // tiles, (task % tiles) * TILE
        k1 = min(n, k0 + TILE)
        cj = counts[j, k0:k1]
        for i in range(w):
            oi = out[i, j, k0:k1]
            for k in range(k1 - k0):
                cj[k] += oi[k] != 0


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


@numba.njit(cache=True, nogil=True, parallel=True)
def deliver_runs(current: np.ndarray, y: np.ndarray, run_source: np.ndarray, run_start: np.ndarray, weight: np.ndarray,
                 pending: np.ndarray, right_shift: int) -> None:
    """deliver() of values read through an index map made of runs (gather_runs' form): target
    neurons run_start[q] to run_start[q + 1] - 1 get y's columns from run_source[q] on, or
    nothing where it is negative; times weight (int64 products) where it has one entry per
    target (an elementwise block's), as they are where it has one. The gather, the product and
    the delivery in one pass: no gathered copy is written. One run over the whole row reads y
    in target order."""
    w, b, n = current.shape
    scaled = weight.shape[0] == n
    for task in numba.prange(b):
        first, last = current[0, task], pending[task]
        for k in range(n):
            first[k] += last[k]
    for r in numba.prange(w * b):
        i, j = r // b, r % b
        yr = y[r]
        dst = current[i + 1, j] if i < w - 1 else pending[j]
        if i == w - 1:
            dst[:] = 0
        for q in range(run_source.shape[0]):
            src, start, stop = run_source[q], run_start[q], run_start[q + 1]
            if src < 0:
                continue
            # Slices first: loops over them from 0 vectorise, offset indices do not.
            d, v = dst[start:stop], yr[src:src + stop - start]
            if scaled:
                wq = weight[start:stop]
                for k in range(stop - start):
                    d[k] += (np.int64(v[k]) * wq[k]) >> right_shift
            else:
                for k in range(stop - start):
                    d[k] += np.int64(v[k]) >> right_shift


@numba.njit(cache=True, nogil=True, parallel=True)
def product_events(a: np.ndarray, b: np.ndarray, events: np.ndarray) -> None:
    """semantics.products.product_events of the views a [R, G, m, k] and b [R, G, k, n] into
    events [R]: per group, each nonzero of A reaches n coincidence neurons, each nonzero of B
    m, and each (m, k, n) where both are nonzero reaches its sum. Counting loops instead of
    the boolean copies and reductions of the tensor form."""
    rows, groups, m, k = a.shape
    n = b.shape[3]
    for r in numba.prange(rows):
        total = 0
        for g in range(groups):
            ag, bg = a[r, g], b[r, g]
            for kk in range(k):
                col_a = row_b = 0
                for mm in range(m):
                    col_a += ag[mm, kk] != 0
                for nn in range(n):
                    row_b += bg[kk, nn] != 0
                total += col_a * n + row_b * m + col_a * row_b
        events[r] = total


@numba.njit(cache=True, nogil=True, parallel=True)
def floor_shift(y: np.ndarray, right_shift: int, out: np.ndarray) -> None:
    """out = int32(int64(y) >> right_shift) for y [R, n] of floats holding exact integers (a
    coincidence product's sums): semantics.products.coincidence in one pass."""
    for r in numba.prange(y.shape[0]):
        yr, outr = y[r], out[r]
        for j in range(y.shape[1]):
            outr[j] = np.int64(yr[j]) >> right_shift


# Set-up: index maps of a Swin-T run to tens of millions of entries, where numpy's temporaries
# (a mask, a shifted copy, a comparison per operation) cost seconds.

@numba.njit(cache=True, nogil=True)
def index_runs(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An index map [n] as runs of consecutive entries (or of padding, -1): (the first entry of
    each run or -1, where each run starts, with n appended)."""
    n = index.shape[0]
    count = 0
    for j in range(n):
        if j == 0 or (index[j] < 0) != (index[j - 1] < 0) or (index[j] >= 0 and index[j] != index[j - 1] + 1):
            count += 1
    source, start = np.empty(count, np.int64), np.empty(count + 1, np.int64)
    q = 0
    for j in range(n):
        if j == 0 or (index[j] < 0) != (index[j - 1] < 0) or (index[j] >= 0 and index[j] != index[j - 1] + 1):
            source[q], start[q] = max(index[j], -1), j
            q += 1
    start[count] = n
    return source, start


@numba.njit(cache=True, nogil=True)
def compose_per_target(position: np.ndarray, sources: np.ndarray, weights: np.ndarray, n_target: int) -> tuple[np.ndarray, np.ndarray]:
    """An elementwise block per target neuron k: the view position p = position[k] (k itself
    where position is empty; -1: none), the source neuron sources[p] (p where empty; -1: none)
    and the weight weights[p % weights.size] (the weights repeat over the view). Returns
    (source neuron or -1, weight or 0)."""
    source, weight = np.empty(n_target, np.int64), np.zeros(n_target, np.int64)
    for k in range(n_target):
        p = position[k] if position.shape[0] else k
        s = -1 if p < 0 else (sources[p] if sources.shape[0] else p)
        source[k] = max(s, -1)
        if s >= 0:
            weight[k] = weights[p % weights.shape[0]]
    return source, weight
