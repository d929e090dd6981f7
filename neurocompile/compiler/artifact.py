"""The artifact directory (*.ncx): written atomically, read only after its hashes check.

manifest.json  format_version, version, target, source_sha256, options, files {name: sha256}
graph.json     the IR (nodes, edges, meta) and the target it was built for
params.npz     every array, saved without pickle, byte-deterministic
placement.json cores, totals, lower_bound_cores, host_ops
report.json    summary figures
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import io
import json
import os
import shutil
import signal
import tempfile
import threading
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np

from .. import __version__
from ..errors import NeurocompileError
from ..ir.graph import Network
from ..ir.serialize import FORMAT_VERSION, from_document, to_document
from ..targets import Target
from .checks import check_artifact

FILES = ("graph.json", "params.npz", "placement.json", "report.json")


@dataclass
class Artifact:
    path: Path
    net: Network
    target: Target
    manifest: dict[str, Any]
    placement: dict[str, Any]
    report: dict[str, Any]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def json_bytes(doc: Any) -> bytes:
    try:
        return (json.dumps(doc, sort_keys=True, indent=1, allow_nan=False) + "\n").encode()
    except ValueError as e:
        raise NeurocompileError(f"artifact would hold a non-finite number: {e}") from None


def write_file_atomic(path: str | Path, data: bytes) -> None:
    """Writes a temporary sibling, then renames it into place: no reader sees half a file."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)  # nothing half-written stays behind
        if isinstance(e, OSError):
            raise NeurocompileError(f"cannot write {path}: {e.strerror or e}") from None
        raise


@contextmanager
def signals_deferred(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) during the block takes effect as soon as it ends. An interrupt inside
    zipfile's opening of a member leaves the archive unclosable, and its close would replace the
    KeyboardInterrupt with a ValueError: the user would see an internal error, not
    "interrupted". Signal handlers can only be set from the main thread; elsewhere the block
    runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {s: signal.getsignal(s) for s in signums}
    previous = {s: h for s, h in previous.items() if h is not None}  # None: a handler not set from Python, left alone
    for s in previous:
        signal.signal(s, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in dict.fromkeys(pending):
            signal.raise_signal(s)


def write_npz(f: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    """Writes an .npz that np.load reads to the file f, with fixed timestamps and order so equal
    arrays give equal bytes. Each array streams into the file: no copy of it, or of the whole
    archive, is made in memory (a Swin-T's parameters and index maps are 1.6 GB)."""
    with signals_deferred(), zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            arr = np.ascontiguousarray(arrays[key])
            if arr.dtype == object:
                raise NeurocompileError(f"array '{key}' has dtype object, which cannot be saved without pickle")
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=arr.nbytes + 4096 > zipfile.ZIP64_LIMIT) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """write_npz's bytes."""
    buf = io.BytesIO()
    write_npz(buf, arrays)
    return buf.getvalue()


def write_artifact(path: str | Path, net: Network, target: Target, placement: dict, report: dict, source_sha256: str, options: dict) -> Path:
    """Writes into a temporary sibling directory, then renames it into place: a reader never
    sees a half-written artifact, and a failure leaves the previous one untouched."""
    path = Path(path)
    doc, arrays = to_document(net)
    doc["target"] = target.to_json()
    contents = {
        "graph.json": json_bytes(doc),
        "placement.json": json_bytes(placement),
        "report.json": json_bytes(report),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; an artifact is an ordinary directory
    try:
        with open(tmp / "params.npz", "wb") as f:
            write_npz(f, arrays)
        files = {name: sha256_bytes(data) for name, data in contents.items()}
        files["params.npz"] = sha256_file(tmp / "params.npz")
        manifest = {
            "format_version": FORMAT_VERSION,
            "version": __version__,
            "target": target.name,
            "source_sha256": source_sha256,
            "options": options,
            "files": files,
        }
        contents["manifest.json"] = json_bytes(manifest)
        for name, data in contents.items():
            (tmp / name).write_bytes(data)
        _move_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


AT_FDCWD, RENAME_EXCHANGE = -100, 2


def exchange(a: Path, b: Path) -> bool:
    """Swaps two directory entries in one step (Linux's renameat2 with RENAME_EXCHANGE); False
    where the platform or file system has no such call."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _move_into_place(tmp: Path, path: Path) -> None:
    """Puts the finished directory tmp at path. A new path is a rename; an existing artifact is
    exchanged with tmp in one step, so that path holds the old or the new artifact at every
    instant (whatever signal or failure comes), and two builds racing to one path both end
    with a valid artifact there. Without an exchange call, the old artifact is moved aside
    first: then a crash between the two renames leaves it in a `.NAME.old.*` sibling."""
    for _ in range(3):  # a concurrent build may create or replace path between the steps
        if not path.exists():
            try:
                os.rename(tmp, path)
                return
            except OSError as e:
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                continue
        if not path.is_dir() or not (path / "manifest.json").is_file():
            raise NeurocompileError(f"{path} exists and is not an artifact; refusing to replace it")
        if exchange(tmp, path):
            shutil.rmtree(tmp, ignore_errors=True)  # now the old artifact
            return
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
        os.rename(path, old / "a")
        os.rename(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
        return
    raise NeurocompileError(f"{path}: other builds kept replacing it; try again")


def _read_json(path: Path, name: str) -> Any:
    try:
        return json.loads((path / name).read_text())
    except (OSError, ValueError) as e:
        raise NeurocompileError(f"artifact {path}: cannot read {name} ({e})") from None


def load_artifact(path: str | Path, recompute_placement: bool = False) -> Artifact:
    """The artifact, checked: hashes, then every value the backends consume (compiler/checks.py).
    `recompute_placement` also recomputes each core's figures from the network."""
    path = Path(path)
    if not path.is_dir():
        raise NeurocompileError(f"artifact {path} does not exist (build one with `neurocompile build MODEL.onnx`)")
    if not (path / "manifest.json").is_file():
        raise NeurocompileError(f"{path} is not an artifact: it has no manifest.json")
    manifest = _read_json(path, "manifest.json")
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise NeurocompileError(f"artifact {path}: unsupported format_version {manifest.get('format_version') if isinstance(manifest, dict) else None}")
    files = manifest.get("files", {})
    if not isinstance(files, dict):
        raise NeurocompileError(f"artifact {path}: manifest.json: files is not an object of file name -> sha256")
    for name in FILES:
        if name not in files:
            raise NeurocompileError(f"artifact {path}: manifest lists no sha256 for {name}")
        if not (path / name).is_file():
            raise NeurocompileError(f"artifact {path}: {name} is missing")
        got = sha256_file(path / name)
        if got != files[name]:
            raise NeurocompileError(f"artifact {path}: {name} has sha256 {got[:12]}..., the manifest says {str(files[name])[:12]}... (tampered or corrupt; rebuild it)")
    doc = _read_json(path, "graph.json")
    try:
        with np.load(path / "params.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise NeurocompileError(f"artifact {path}: params.npz does not load without pickle ({e})") from None
    try:
        with np.errstate(all="ignore"):  # absurd values are refused below, in one line, not warned about
            net = from_document(doc, arrays)
            target = Target.from_json(doc["target"])
    except NeurocompileError as e:
        raise NeurocompileError(f"artifact {path}: graph.json: {e}") from None
    except KeyError as e:
        raise NeurocompileError(f"artifact {path}: graph.json or params.npz lacks {e} (not what a build writes; rebuild the artifact)") from None
    except (TypeError, ValueError, IndexError, AttributeError) as e:
        raise NeurocompileError(f"artifact {path}: graph.json does not describe a network ({type(e).__name__}: {e})") from None
    placement, report = _read_json(path, "placement.json"), _read_json(path, "report.json")
    try:
        with np.errstate(all="ignore"):
            check_artifact(net, target, manifest, placement, report, f"artifact {path}", recompute_placement)
    except (TypeError, ValueError, IndexError, KeyError, AttributeError) as e:  # a field of the wrong kind
        raise NeurocompileError(f"artifact {path}: a value of the wrong kind ({type(e).__name__}: {e}; not what a build writes, rebuild the artifact)") from None
    return Artifact(path, net, target, manifest, placement, report)
