"""Spike products (neurocompile/semantics/products.py): the coincidence form is the exact integer product
of one step; the telescoping form sums to the product of the operands' rates, where the
coincidence form counts coincidences. And the readout window (`readout_start`)."""

import numpy as np
import pytest

from neurocompile.semantics.products import coincidence, product_events, telescoping, telescoping_step_limit


def _run_telescoping(a, b, out_shift, bound):
    """Steps the telescoping form over spike trains a [T, M, K], b [T, K, N]."""
    emitted = np.zeros((a.shape[1] * b.shape[2],), np.int64)
    outs = []
    sum_a, sum_b = np.zeros(a.shape[1:]), np.zeros(b.shape[1:])
    for t in range(a.shape[0]):
        sum_a += a[t]
        sum_b += b[t]
        out = telescoping(sum_a @ sum_b, emitted, t, out_shift, bound)
        emitted += out
        outs.append(out)
    return np.array(outs)


def test_coincidence_is_the_exact_integer_product_floored():
    rng = np.random.default_rng(0)
    a = rng.integers(-(2**15), 2**15, (3, 4, 16))
    b = rng.integers(0, 2, (3, 16, 5))
    for shift in (0, 3):
        exact = np.array([[[sum(int(a[w, i, k]) * int(b[w, k, j]) for k in range(16)) >> shift for j in range(5)] for i in range(4)] for w in range(3)])
        np.testing.assert_array_equal(coincidence(a.astype(float) @ b.astype(float), shift), exact)


@pytest.mark.parametrize("out_shift", [0, 2])
def test_telescoping_outputs_sum_to_the_product_of_running_sums_over_steps(out_shift):
    rng = np.random.default_rng(1)
    steps = 40
    a = (rng.random((steps, 3, 6)) < 0.4).astype(np.int64)
    b = rng.integers(0, 300, (steps, 6, 2))
    outs = _run_telescoping(a, b, out_shift, bound=2**23)
    expected = (a.sum(0) @ b.sum(0)).ravel() // (steps << out_shift)
    np.testing.assert_array_equal(outs.sum(0), expected)


def test_telescoping_clips_each_payload_and_carries_the_rest():
    rng = np.random.default_rng(2)
    steps, bound = 30, 3
    a = rng.integers(0, 2, (steps, 2, 8))
    b = rng.integers(0, 2, (steps, 8, 2))
    outs = _run_telescoping(a, b, 0, bound)
    assert np.abs(outs).max() <= bound
    residual = (a.sum(0) @ b.sum(0)).ravel() // steps - outs.sum(0)
    assert np.abs(residual).max() <= bound


def test_telescoping_gives_the_product_of_rates_where_coincidence_counts_coincidences():
    # a fires on even steps, b on odd ones: rates 1/2 each, never together.
    steps = 64
    a = np.array([[[t % 2 == 0]] for t in range(steps)], np.int64)
    b = np.array([[[t % 2 == 1]] for t in range(steps)], np.int64)
    coincidences = sum(int(coincidence(a[t] @ b[t], 0).sum()) for t in range(steps))
    assert coincidences == 0
    assert _run_telescoping(a, b, 0, 2**23).sum() == steps // 4  # T x 1/2 x 1/2


def test_step_limit_keeps_the_sums_exact_in_float64():
    limit = telescoping_step_limit(16, 2**15, 1)
    assert 16 * limit**2 * 2**15 < 2**53 <= 16 * (limit + 1) ** 2 * 2**15


def test_product_events_count_deliveries_to_coincidence_neurons_and_their_coincidences():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 2, (2, 3, 4, 5)) * rng.integers(1, 9, (2, 3, 4, 5))
    b = rng.integers(0, 2, (2, 3, 5, 6))
    # brute force over the coincidence neurons (x, w, m, k, n): inputs received, then firings
    pa = np.broadcast_to((a != 0)[..., None], (2, 3, 4, 5, 6))
    pb = np.broadcast_to((b != 0)[:, :, None], (2, 3, 4, 5, 6))
    brute = pa.sum(axis=(1, 2, 3, 4)) + pb.sum(axis=(1, 2, 3, 4)) + (pa & pb).sum(axis=(1, 2, 3, 4))
    np.testing.assert_array_equal(product_events(a, b), brute)
