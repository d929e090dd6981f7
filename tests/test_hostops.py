"""Host ops in integer arithmetic: close to the float functions, exact where it claims to be."""

import hashlib

import numpy as np
import pytest

from neurocompile.ir.interpret import layernorm_float, softmax_float
from neurocompile.semantics.hostops import EXP2_LUT, exp2_fixed, exp_constant, isqrt, layernorm_fixed, softmax_fixed


def test_exp2_table_is_frozen():
    # Both backends, on every machine, must use these exact integers.
    assert EXP2_LUT[0] == 65536 and EXP2_LUT[256] == 131072
    assert hashlib.sha256(EXP2_LUT.tobytes()).hexdigest() == "2e3205cfdd5283ea09fc429a34ae7ec9cc63e23ee8f326e0f56a1269bdbdfc48"


def test_exp2_error_is_within_two_units_of_its_format():
    z = -np.arange(0, 40 << 16, 977, dtype=np.int64)
    exact = 2.0 ** (z / 65536) * 65536  # Q16
    assert np.abs(exp2_fixed(z) - exact).max() <= 2.0


def test_isqrt_is_exact():
    v = np.concatenate([np.arange(0, 5000), np.array([2**52 - 1, 2**52, 2**60 + 12345, 2**62 - 1])]).astype(np.int64)
    r = isqrt(v)
    assert np.all(r * r <= v) and np.all((r + 1) * (r + 1) > v)


@pytest.mark.parametrize("scale", [64.0, 1024.0, 32768.0 / 3])
def test_softmax_fixed_tracks_float(scale):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (100, 49))
    x[:, :5] -= 100  # the shifted-window mask
    xi = np.rint(x * scale).astype(np.int64)
    p = softmax_fixed(xi, exp_constant(scale), 15)
    assert np.abs(p / 2**15 - softmax_float(xi / scale)).max() < 5e-4
    assert np.all(p.sum(axis=-1) <= 2**15) and np.all(p >= 0)


@pytest.mark.parametrize("scale", [4096.0, 32768.0])
def test_layernorm_fixed_tracks_float(scale):
    rng = np.random.default_rng(1)
    x, g, b = rng.normal(1, 2, (50, 96)), rng.normal(1, 0.2, 96), rng.normal(0, 0.3, 96)
    xi = np.rint(x * scale).astype(np.int64)
    y = layernorm_fixed(xi, int(round(1e-5 * scale**2)), np.rint(g * 4096).astype(np.int64), np.rint(b * 4096).astype(np.int64), 12, 12)
    assert np.abs(y / 4096 - layernorm_float(xi / scale, 1e-5, g, b)).max() < 2e-3
