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


def _check_samples(x, path: Path, expected: list[int], what: str) -> None:
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "fiu":
        raise NeurocompileError(f"{what} file {path} has dtype {getattr(x, 'dtype', type(x))}; a numeric (float32) array is required")
    if list(x.shape[1:]) != expected:
        if list(x.shape) == expected:
            raise NeurocompileError(f"{what} file {path} has shape {list(x.shape)}: add a leading batch axis, [1, {', '.join(map(str, expected))}]")
        raise NeurocompileError(f"{what} file {path} has shape {list(x.shape)}; the model expects [batch, {', '.join(map(str, expected))}]")
    if x.shape[0] == 0:
        raise NeurocompileError(f"{what} file {path} holds no samples")


def _finite(x: np.ndarray, path: Path, what: str, first: int = 0) -> np.ndarray:
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = first + int(np.argwhere(~np.isfinite(x.reshape(x.shape[0], -1)))[0, 0])
        raise NeurocompileError(f"{what} file {path} holds NaN or inf values (sample {bad})")
    return x.astype(np.float64)


def load_input(path: str | Path, sample_shape: tuple[int, ...] | list[int], what: str = "input") -> np.ndarray:
    """A float array [batch, *sample_shape] from an .npy file (never unpickled)."""
    path = Path(path)
    x = _load_npy(path, what)
    _check_samples(x, path, [int(d) for d in sample_shape], what)
    return _finite(x, path, what)


class InputSet:
    """Samples [N, *sample_shape] in one .npy file, or in a directory whose .npy files (in name
    order) are consecutive shards. Only headers are read up front; a slice reads its own samples
    from the file (plain reads at their offset, not a memory map, whose touched pages would stay
    in the process's resident memory), so a test set larger than memory streams."""

    def __init__(self, path: str | Path, sample_shape: tuple[int, ...] | list[int], limit: int | None = None):
        path = Path(path)
        expected = [int(d) for d in sample_shape]
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix == ".npy" and p.is_file())
            if not files:
                raise NeurocompileError(f"input directory {path} holds no .npy shards")
        elif path.is_file():
            files = [path]
        else:
            raise NeurocompileError(f"input file {path} does not exist")
        self.path, self.files, self.shards, self.offsets = path, files, [], [0]
        for f in files:
            try:
                shard = np.load(f, mmap_mode="r", allow_pickle=False)  # the header, checked by numpy; no data read
            except Exception as e:
                raise NeurocompileError(f"input file {f} is not a readable .npy array ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
            _check_samples(shard, f, expected, "input")
            self.shards.append((shard.shape, shard.dtype, shard.offset, shard.flags.f_contiguous and shard.ndim > 1))
            self.offsets.append(self.offsets[-1] + shard.shape[0])
            del shard
        self.total = self.offsets[-1] if limit is None else min(limit, self.offsets[-1])

    def __len__(self) -> int:
        return self.total

    def identity(self) -> list[dict]:
        """What names these samples for a resumed run: each file's path, size and modification
        time (hashing a test set of many gigabytes at every start would cost more than a chunk)."""
        return [{"file": str(f.resolve()), "bytes": f.stat().st_size, "mtime_ns": f.stat().st_mtime_ns} for f in self.files] + [{"samples": self.total}]

    def _read_shard(self, k: int, lo: int, hi: int) -> np.ndarray:
        shape, dtype, offset, fortran = self.shards[k]
        if fortran:  # a sample is not contiguous: map, copy, unmap
            m = np.load(self.files[k], mmap_mode="r", allow_pickle=False)
            x = np.array(m[lo:hi])
            del m
            return x
        row = int(np.prod(shape[1:], dtype=np.int64))
        with open(self.files[k], "rb") as f:
            f.seek(offset + lo * row * dtype.itemsize)
            x = np.fromfile(f, dtype=dtype, count=(hi - lo) * row)
        if x.size != (hi - lo) * row:
            raise NeurocompileError(f"input file {self.files[k]} is shorter than its header says (truncated?)")
        return x.reshape((hi - lo, *shape[1:]))

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples start..stop-1 as float64, checked finite."""
        parts = []
        for k in range(len(self.shards)):
            lo, hi = max(start, self.offsets[k]), min(stop, self.offsets[k + 1])
            if lo < hi:
                parts.append(_finite(self._read_shard(k, lo - self.offsets[k], hi - self.offsets[k]), self.files[k], "input", lo))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


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
