"""User data files: inputs and calibration sets as .npy, checked before use."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import NeurocompileError


def load_input(path: str | Path, sample_shape: tuple[int, ...] | list[int], what: str = "input") -> np.ndarray:
    """A float array [batch, *sample_shape] from an .npy file (never unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise NeurocompileError(f"{what} file {path} does not exist")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as e:
        raise NeurocompileError(f"{what} file {path} is not a readable .npy array ({e})") from None
    expected = [int(d) for d in sample_shape]
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "fiu":
        raise NeurocompileError(f"{what} file {path} has dtype {getattr(x, 'dtype', type(x))}; a numeric (float32) array is required")
    if list(x.shape[1:]) != expected:
        if list(x.shape) == expected:
            raise NeurocompileError(f"{what} file {path} has shape {list(x.shape)}: add a leading batch axis, [1, {', '.join(map(str, expected))}]")
        raise NeurocompileError(f"{what} file {path} has shape {list(x.shape)}; the model expects [batch, {', '.join(map(str, expected))}]")
    if x.shape[0] == 0:
        raise NeurocompileError(f"{what} file {path} holds no samples")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise NeurocompileError(f"{what} file {path} holds NaN or inf values")
    return x.astype(np.float64)
