"""The simulator on torch: the same integers whatever the batch, the window of steps or the device,
and kernels whose float sums cannot round."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurocompile.backends.sim as sim_module
from neurocompile.backends.sim import Simulator
from neurocompile.errors import NeurocompileError
from neurocompile.ir.kernels import Conv2d

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
    kernel = Conv2d(weight=weight.astype(np.float64), strides=(2, 1), pads=(1, 0, 2, 1), dilations=(1, 2), group=2)
    view = (1, 4, 9, 10)
    bound = int(np.abs(weight).reshape(6, -1).sum(axis=1).max())
    x = rng.integers(-(2**24 // bound), 2**24 // bound + 1, (3,) + view)
    expected = kernel.apply(x.astype(np.float64), weight.astype(np.float64)).reshape(3, -1)  # float64: exact
    w32, x32 = torch.as_tensor(weight, dtype=torch.float32), torch.as_tensor(x, dtype=torch.float32)
    for unfold in (False, True):  # torch's CPU convolution; the unfolded product a GPU runs
        got = sim_module._conv2d(kernel, view, w32, unfold=unfold)(x32)
        np.testing.assert_array_equal(got.numpy().astype(np.int64), expected.astype(np.int64), err_msg=f"unfold={unfold}")


def test_cuda_is_refused_in_one_line_without_a_gpu(artifacts, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    art = artifacts("digits_mlp")
    with pytest.raises(NeurocompileError, match="--device cuda: torch .* sees no CUDA GPU"):
        Simulator(art.net, art.target.numerics, "cuda")


@pytest.mark.cuda
def test_cuda_gives_the_cpu_integers(artifacts):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible to torch")
    for model, options, inputs in CASES.values():
        art = artifacts(model, **options)
        x = np.load(GRAPHS / inputs)[:4].astype(np.float64)
        cpu = Simulator(art.net, art.target.numerics, "cpu").run(x, 16, seed=1, record=True)
        same(cpu, Simulator(art.net, art.target.numerics, "cuda").run(x, 16, seed=1, record=True))
