"""The simulator on torch: the same integers whatever the batch, the window of steps or the device,
and kernels whose float sums cannot round."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurocompile.backends.sim as sim_module
from neurocompile.backends import cpu_kernels
from neurocompile.backends.sim import Simulator
from neurocompile.errors import NeurocompileError
from neurocompile.ir.kernels import Conv2d, Dense, Elementwise

from conftest import GRAPHS

CASES = {
    "mst, masks per spike": ("digits_mst_rsm", {}, "digits_mst_test_x.npy"),
    "mst, masks per synapse, telescoping": ("digits_mst_rsm", {"failure_mode": "synapse", "mask_ratio": "0.3", "product_form": "telescoping"},
                                            "digits_mst_test_x.npy"),
    "cnn, rate-coded": ("digits_cnn", {"encoding": "rate"}, "digits_test_x.npy"),
}


def same(a, b) -> None:
    np.testing.assert_array_equal(a.readout_int, b.readout_int)
    for field in ("counts", "membranes", "events", "messages", "rasters"):
        da, db = getattr(a, field), getattr(b, field)
        assert set(da) == set(db), field
        for name in da:
            np.testing.assert_array_equal(da[name], db[name], err_msg=f"{field}[{name}]")


@pytest.mark.parametrize("case", CASES)
def test_results_do_not_depend_on_batch_or_window(artifacts, case):
    model, options, inputs = CASES[case]
    art = artifacts(model, **options)
    x = np.load(GRAPHS / inputs)[:5].astype(np.float64)
    sim = Simulator(art.net, art.target.numerics)
    whole = sim.run(x, 12, seed=3, record=True, batch_size=5, window=12)
    assert sum(int(c.sum()) for c in whole.counts.values()) > 0
    for batch, window in ((1, 1), (2, 5), (5, 7)):
        same(whole, sim.run(x, 12, seed=3, record=True, batch_size=batch, window=window))


def test_the_plan_fits_the_memory_it_is_given(artifacts, monkeypatch):
    art = artifacts("digits_cnn")
    sim = Simulator(art.net, art.target.numerics)
    per_step = sim.bytes_per_sample_step()
    monkeypatch.setattr(sim_module, "available_memory", lambda device: 2 * 40 * 8 * per_step)
    batch, window = sim.plan(1000, 64, record=False)
    assert 1 <= batch < 1000 and 1 <= window <= 64
    monkeypatch.setattr(sim_module, "available_memory", lambda device: 10**12)
    # With memory to spare, the longest window, and as many samples as keep a population's rows
    # within the CPU's tile.
    largest = max(p.size for p in art.net.populations())
    batch, window = sim.plan(1000, 64, record=False)
    assert window == 64 and batch == sim_module.TILE_BYTES // (4 * largest) // 64
    assert sim.plan(1000, 64, record=False, batch_size=7)[0] == 7


def test_convolution_paths_are_exact_up_to_the_float32_bound():
    """Integer payloads and mantissas whose sums reach just below 2^24: torch's CPU convolution
    and the unfolded matrix product (the GPU path) both give the exact integers."""
    rng = np.random.default_rng(0)
    weight = rng.integers(-128, 128, (6, 2, 3, 3))
    view = (1, 4, 9, 10)
    bound = int(np.abs(weight).reshape(6, -1).sum(axis=1).max())
    x = rng.integers(-(2**24 // bound), 2**24 // bound + 1, (3,) + view)
    w32, x32 = torch.as_tensor(weight, dtype=torch.float32), torch.as_tensor(x, dtype=torch.float32)
    for pads in ((1, 0, 2, 1), (1, 1, 1, 1), (2, 1, 2, 1), (0, 0, 0, 0)):  # padding on one side, on both, on both and more on one
        kernel = Conv2d(weight=weight.astype(np.float64), strides=(2, 1), pads=pads, dilations=(1, 2), group=2)
        expected = kernel.apply(x.astype(np.float64), weight.astype(np.float64)).reshape(3, -1)  # float64: exact
        for unfold in (False, True):  # torch's CPU convolution; the unfolded product a GPU runs
            got = sim_module._conv2d(kernel, view, w32, unfold=unfold)(x32)
            np.testing.assert_array_equal(got.numpy().astype(np.int64), expected.astype(np.int64), err_msg=f"pads={pads}, unfold={unfold}")


def test_cuda_is_refused_in_one_line_without_a_gpu(artifacts, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    art = artifacts("digits_mlp")
    with pytest.raises(NeurocompileError, match="--device cuda: torch .* sees no CUDA GPU"):
        Simulator(art.net, art.target.numerics, "cuda")


@pytest.mark.parametrize("case", CASES)
def test_tensor_operations_give_the_compiled_loops_integers(artifacts, case, monkeypatch):
    """The path a GPU runs (tensor gathers, products, IF steps, softmax and counts), run on the
    CPU in place of the compiled loops: the same integers everywhere. CI has no GPU; this keeps
    that path tested without one."""
    model, options, inputs = CASES[case]
    art = artifacts(model, **options)
    x = np.load(GRAPHS / inputs)[:3].astype(np.float64)
    compiled = Simulator(art.net, art.target.numerics).run(x, 10, seed=2, record=True, window=4)
    monkeypatch.setattr(sim_module, "COMPILED_LOOPS", False)
    same(compiled, Simulator(art.net, art.target.numerics).run(x, 10, seed=2, record=True, window=4))


@pytest.mark.cuda
def test_cuda_gives_the_cpu_integers(artifacts):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible to torch")
    for model, options, inputs in CASES.values():
        art = artifacts(model, **options)
        x = np.load(GRAPHS / inputs)[:4].astype(np.float64)
        cpu = Simulator(art.net, art.target.numerics, "cpu").run(x, 16, seed=1, record=True)
        same(cpu, Simulator(art.net, art.target.numerics, "cuda").run(x, 16, seed=1, record=True))


def test_compiled_cpu_loops_equal_the_tensor_operations():
    """The numba loops (IF recurrence with saturation, delivery with a floor shift, column
    gather) give the integers of the tensor operations a GPU runs."""
    rng = np.random.default_rng(5)
    w, b, n, vmax, threshold = 9, 3, 5000, 2**23 - 1, 32768
    current = rng.integers(-2**24, 2**24, (w, b, n)).astype(np.int32)  # large enough to saturate
    current[:, 0] //= 256  # and small enough to fire and not fire
    v0 = rng.integers(-vmax, vmax, (b, n))
    v, spikes, counts = v0.copy(), np.empty((w, b, n), np.float32), np.zeros((b, n), np.int64)
    cpu_kernels.integrate_and_fire(v, current, spikes, counts, threshold, vmax)
    expected = torch.zeros((w, b, n), dtype=torch.int32)
    v_expected = sim_module.integrate_and_fire(torch.as_tensor(v0), torch.as_tensor(current), expected, threshold, vmax)
    np.testing.assert_array_equal(spikes, expected.numpy())
    np.testing.assert_array_equal(v, v_expected.numpy())
    np.testing.assert_array_equal(counts, expected.numpy().sum(axis=0))
    assert 0 < spikes.mean() < 1 and (np.abs(v_expected.numpy()) == vmax).any()  # both regimes were exercised

    y = rng.integers(-2**30, 2**30, (w * b, n)).astype(np.float64)
    for right in (0, 3):
        cur, pending = np.zeros((w, b, n), np.int32), rng.integers(-1000, 1000, (b, n)).astype(np.int32)
        first = pending.copy()
        cpu_kernels.deliver(cur, y, pending, right)
        shifted = sim_module.shift(torch.as_tensor(y).to(torch.int64), -right).reshape(w, b, n).numpy()
        np.testing.assert_array_equal(cur[0], first)
        np.testing.assert_array_equal(cur[1:], shifted[:-1])
        np.testing.assert_array_equal(pending, shifted[-1])

    x = rng.normal(size=(7, 301)).astype(np.float32)
    index = rng.integers(0, 301, 1000)
    out = np.empty((7, 1000), np.float32)
    cpu_kernels.gather_columns(x, index, out)
    np.testing.assert_array_equal(out, x[:, index])


@pytest.mark.parametrize("scale", [0.5, 40.0, 3e4])
def test_compiled_softmax_equals_the_shared_integer_softmax(scale):
    """The CPU simulator's softmax loop gives hostops.softmax_fixed's integers (the form Lava's
    process models run), for rows that span the whole int32 range, ties and constant rows."""
    from neurocompile.semantics.hostops import EXP2_LUT, K_FRAC, Q, SOFTMAX_OUT_FRAC, exp_constant, softmax_fixed

    rng = np.random.default_rng(11)
    x = rng.integers(-int(8 * scale) - 1, int(8 * scale) + 1, (40, 49)).astype(np.int32)  # scores within a few units: graded
    x[0] = rng.integers(-2**31, 2**31 - 1, 49)  # the whole range: one-hot, and exponents far below the table
    x[1] = 7  # a constant row
    x[3, :5] = x[3].max()  # ties at the top
    k = exp_constant(scale)
    out = np.empty_like(x)
    cpu_kernels.softmax(x, EXP2_LUT, k, K_FRAC - Q, SOFTMAX_OUT_FRAC, out)
    expected = softmax_fixed(x.astype(np.int64), k, SOFTMAX_OUT_FRAC)
    np.testing.assert_array_equal(out, expected)
    assert (expected.sum(axis=1) <= 2**SOFTMAX_OUT_FRAC).all() and len(np.unique(expected)) > 10


@pytest.mark.parametrize("kind", ["dense", "elementwise"])
def test_dropping_the_padding_of_a_view_keeps_every_sum(kind):
    """A block's view with padded rows, columns and positions, compacted: the same outputs."""
    rng = np.random.default_rng(6)
    n_source, rows, k, m = 50, 12, 8, 5
    index = rng.integers(0, n_source, (rows, k))
    index[::3] = -1  # whole rows of padding
    index[:, 2] = -1  # a whole column
    index[1, 5] = -1  # a lone hole
    if kind == "elementwise":
        index[1::3, :6] = -1  # mostly padding: an elementwise view is compacted only then
    kernel = Dense(np.zeros((m, k))) if kind == "dense" else Elementwise(np.zeros(k))
    w_mant = rng.integers(-127, 128, (m, k) if kind == "dense" else (k,))
    out_index = rng.integers(-1, rows * (m if kind == "dense" else k), 40)
    x = torch.as_tensor(rng.integers(0, 2, (4, n_source)), dtype=torch.float64)

    def apply(view, in_index, w, out_map):
        gathered = sim_module._Gather(in_index, view, n_source, torch.device("cpu"))(x)
        y = sim_module.KERNELS[type(kernel)](kernel, view, torch.as_tensor(w, dtype=torch.float64))(gathered)
        return sim_module._Gather(out_map, out_map.shape, y.shape[1], torch.device("cpu"))(y)

    view, in_index, w, out_map = sim_module._compact(kernel, (rows, k), index, w_mant, out_index)
    assert np.prod(view) < rows * k
    np.testing.assert_array_equal(apply(view, in_index, w, out_map).numpy(), apply((rows, k), index, w_mant, out_index).numpy())


def test_gathers_by_runs_equal_gathers_by_index():
    """An index map read as runs of consecutive neurons (and of padding) gives what indexing
    gives: maps with long runs, single indices, padding at either end and in between."""
    rng = np.random.default_rng(8)
    n = 97
    x = torch.as_tensor(rng.normal(size=(5, n)).astype(np.float32))
    padded = np.concatenate([x.numpy(), np.zeros((5, 1), np.float32)], axis=1)
    runs_seen = 0
    for trial in range(60):
        pieces = []
        for _ in range(rng.integers(1, 12)):
            first, length = int(rng.integers(-1, n)), int(rng.integers(1, 20))
            pieces.append(np.full(length, -1) if first < 0 else np.arange(first, min(n, first + length)))
        index = np.concatenate(pieces) if trial % 4 else rng.integers(-1, n, 50)  # every fourth: no runs
        gather = sim_module._Gather(index, (index.size,), n, torch.device("cpu"))
        runs_seen += gather.runs is not None
        np.testing.assert_array_equal(gather(x).numpy(), padded[:, np.where(index >= 0, index, n)], err_msg=f"trial {trial}")
    assert 30 <= runs_seen < 60  # both paths ran


def test_compiled_delivery_counting_and_products_equal_the_tensor_forms():
    """The CPU's elementwise delivery (scale, floor shift, one step late; through the runs of an
    index map), its count of nonzero outputs, its product events and its coincidence payloads
    give the integers of the tensor forms that a GPU (and semantics.products, which Lava's
    process models run) compute."""
    from neurocompile.semantics.products import coincidence, product_events

    rng = np.random.default_rng(9)
    w, b, n = 6, 3, 3000
    x = rng.integers(-2**20, 2**20, (w * b, n)).astype(np.int32)
    x[:, ::7] = 0
    weight = rng.integers(-2**9, 2**9, n).astype(np.int32)
    def check(runs, scale, values, right):
        """deliver_runs against the tensor form on values (x as the runs read it)."""
        cur, pending = rng.integers(-9, 9, (w, b, n)).astype(np.int32), rng.integers(-1000, 1000, (b, n)).astype(np.int32)
        before, first = cur.copy(), pending.copy()
        cpu_kernels.deliver_runs(cur, x, *runs, scale, pending, right)
        scaled = sim_module.shift(torch.as_tensor(values).to(torch.int64) * torch.as_tensor(scale), -right).reshape(w, b, n).numpy()
        np.testing.assert_array_equal(cur[0], before[0] + first)
        np.testing.assert_array_equal(cur[1:], before[1:] + scaled[:-1])
        np.testing.assert_array_equal(pending, scaled[-1])

    for right in (0, 5):  # one run over the whole row: an elementwise block read in target order
        check(sim_module._whole_row(n), weight, x, right)
    # Through an index map read as runs (padding included), scaled or not: as if the map had
    # been gathered first.
    index = np.concatenate([np.arange(100, 1100), np.full(500, -1), np.arange(0, 1500)])
    runs = sim_module._runs(index)
    assert runs is not None and runs[0].size == 3
    gathered = np.where(index >= 0, x[:, np.maximum(index, 0)], 0)
    for scale in (np.ones(1, np.int32), weight):
        check(runs, scale, gathered, 3)

    out = torch.as_tensor(x.reshape(w, b, n))
    counts = torch.full((b, n), 3, dtype=torch.int64)
    cpu_kernels.count_nonzero(out.numpy(), counts.numpy())
    np.testing.assert_array_equal(counts.numpy(), 3 + (out != 0).sum(dim=0).numpy())

    r, g, m, k, nn = 7, 5, 4, 6, 3
    a = (rng.random((r, g, m, k)) < 0.3).astype(np.float32)
    a[0, 0] = 0  # a group with no spike
    bv = rng.integers(-3, 4, (r, g, k, nn)).astype(np.float32) * (rng.random((r, g, k, nn)) < 0.5)
    events = np.empty(r, np.int64)
    cpu_kernels.product_events(a, bv, events)
    np.testing.assert_array_equal(events, product_events(torch.as_tensor(a), torch.as_tensor(bv)).numpy())
    y = (a.astype(np.float64) @ bv.astype(np.float64)).reshape(r, -1) * 2**20 + 3  # negative sums too, odd ones
    for shift_by in (0, 4):
        got = np.empty(y.shape, np.int32)
        cpu_kernels.floor_shift(y, shift_by, got)
        np.testing.assert_array_equal(got, coincidence(torch.as_tensor(y), shift_by).numpy())
    assert (y < 0).any() and events.min() < events.max()
