"""User data files: inputs and calibration sets as .npy, checked before use."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import NeurocompileError


def _load_npy(path: Path, what: str):
    """What np.load finds in the file, without unpickling anything."""
    if not path.is_file():
        raise NeurocompileError(f"{what} file {path} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:
        raise NeurocompileError(f"{what} file {path} is not a readable .npy array ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def load_input(path: str | Path, sample_shape: tuple[int, ...] | list[int], what: str = "input") -> np.ndarray:
    """A float array [batch, *sample_shape] from an .npy file (never unpickled)."""
    path = Path(path)
    x = _load_npy(path, what)
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


def load_labels(path: str | Path, samples: int) -> np.ndarray:
    """Integer class labels [N] (.npy, never unpickled) for the first `samples` inputs; N may be
    larger (the inputs were cut with --samples), never smaller. Whole-number floats are taken
    as the integers they hold."""
    path = Path(path)
    y = _load_npy(path, "labels")
    if not isinstance(y, np.ndarray):
        raise NeurocompileError(f"labels file {path} is an .npz archive; save the labels alone with np.save")
    if y.ndim != 1:
        raise NeurocompileError(f"labels file {path} has shape {list(y.shape)}; one integer label per sample, [batch], is required")
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise NeurocompileError(f"labels file {path} has dtype {y.dtype}; integer class labels are required")
    if len(y) < samples:
        raise NeurocompileError(f"labels file {path} has {len(y)} labels for {samples} inputs")
    return y[:samples].astype(np.int64)


def check_output_file(path: str | Path, suffix: str, what: str = "--out") -> Path:
    """A file the run may write: named with its format's suffix, in an existing directory, not
    inside an artifact (which its manifest's hashes protect)."""
    path = Path(path)
    if path.suffix != suffix:
        raise NeurocompileError(f"{what} {path}: the result is a {suffix} file; name it {path.name}{suffix} or similar")
    parent = path.resolve().parent
    if not parent.is_dir():
        raise NeurocompileError(f"{what} {path}: directory {parent} does not exist")
    if path.is_dir():
        raise NeurocompileError(f"{what} {path} is a directory")
    for folder in (parent, *parent.parents):
        if (folder / "manifest.json").is_file():
            raise NeurocompileError(f"{what} {path} is inside the artifact {folder}; write results next to it")
    return path
