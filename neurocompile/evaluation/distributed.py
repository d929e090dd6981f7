"""Evaluation on Ray: chunks of samples run as Ray tasks on a local cluster (`--workers N`) or an
existing one (`--ray-address ADDR`). The artifact's files go to the object store once; each worker
process loads them once and keeps its simulator. A task whose worker dies is retried by Ray
(`max_retries`); its chunk is recorded when a try finishes, and only then, so nothing is lost or
counted twice. Errors of the run itself (bad input) are not retried: they end the evaluation.

Ray moves arguments and results between processes of one cluster with its own serialisation;
nothing a user hands to neurocompile is unpickled (artifacts and inputs are .json and .npy)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Iterator

from ..compiler.artifact import Artifact
from ..data import InputSet
from ..errors import NeurocompileError
from .stream import ChunkRunner, Progress, RunConfig, Span

TASK_RETRIES = 3  # tries after a worker dies, per chunk
IN_FLIGHT_PER_WORKER = 2  # chunks queued per worker: enough to keep it busy, few enough to bound memory


def _import_ray():
    try:
        import ray
    except ImportError:
        raise NeurocompileError("--workers and --ray-address run on Ray, which is not installed: pip install 'neurocompile[ray]'") from None
    return ray


def connect(workers: int | None, address: str | None) -> tuple[int, bool]:
    """Joins the cluster at `address`, or starts a local one of `workers` CPUs; reuses one this
    process already joined. Returns (CPUs the cluster offers, whether this call started it)."""
    ray = _import_ray()
    if ray.is_initialized():
        return int(ray.cluster_resources().get("CPU", 1)), False
    try:
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, ValueError, RuntimeError) as e:
        where = f"the Ray cluster at {address}" if address else f"a local Ray cluster of {workers} workers"
        raise NeurocompileError(f"cannot start or reach {where}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return int(ray.cluster_resources().get("CPU", 1)), True


def artifact_files(art: Artifact) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(art.path).iterdir()) if p.is_file()}


_RUNNERS: dict[tuple, ChunkRunner] = {}  # per worker process: (artifact, config) -> its runner


def _runner(files: dict[str, bytes], config: RunConfig) -> ChunkRunner:
    from ..compiler.artifact import load_artifact, sha256_bytes

    key = (sha256_bytes(files["manifest.json"]), config)
    if key not in _RUNNERS:
        with tempfile.TemporaryDirectory(prefix="neurocompile-worker-") as tmp:  # loaded whole: the files can go
            folder = Path(tmp) / "artifact.ncx"
            folder.mkdir()
            for name, data in files.items():
                (folder / name).write_bytes(data)
            art = load_artifact(folder)
        _RUNNERS.clear()  # one artifact at a time per worker: a sweep moves on to the next
        _RUNNERS[key] = ChunkRunner(art, config)
    return _RUNNERS[key]


def run_chunk(files: dict[str, bytes], config: RunConfig, x, start: int) -> dict:
    """The task: one chunk's record, on a worker. `start` (the chunk's first sample) names the
    chunk in logs and tests; the result does not depend on it."""
    import numba
    import ray
    import torch

    # Ray gives each task a CPU; torch and numba would start a thread per core of the machine.
    cpus = max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
    torch.set_num_threads(cpus)
    numba.set_num_threads(min(cpus, numba.config.NUMBA_NUM_THREADS))
    return _runner(files, config)(x)


class RayExecutor:
    """`task` is the function each chunk runs (run_chunk; tests wrap it to kill a worker)."""

    def __init__(self, workers: int | None = None, address: str | None = None, task: Callable = run_chunk):
        self.workers, self.address, self.task = workers, address, task

    def map(self, art: Artifact, config: RunConfig, inputs: InputSet, spans: list[Span], done: Progress) -> Iterator[tuple[Span, dict]]:
        ray = _import_ray()
        cpus, started = connect(self.workers, self.address)
        try:
            remote = ray.remote(self.task).options(num_cpus=1, max_retries=TASK_RETRIES, retry_exceptions=False)
            files = ray.put(artifact_files(art))
            queue, pending, finished = list(spans), {}, 0
            limit = max(1, cpus * IN_FLIGHT_PER_WORKER)
            while queue or pending:
                while queue and len(pending) < limit:
                    start, stop = queue.pop(0)
                    pending[remote.remote(files, config, inputs.read(start, stop), start)] = (start, stop)
                ready, _ = ray.wait(list(pending), num_returns=1)
                span = pending.pop(ready[0])
                try:
                    rec = ray.get(ready[0])
                except ray.exceptions.RayTaskError as e:
                    if isinstance(e.cause, NeurocompileError):
                        raise NeurocompileError(str(e.cause)) from None
                    raise
                except ray.exceptions.WorkerCrashedError:
                    raise NeurocompileError(f"samples {span[0]}..{span[1] - 1}: the Ray worker died {TASK_RETRIES + 1} times running them") from None
                finished += span[1] - span[0]
                done(finished)
                yield span, rec
        finally:
            for ref in pending:  # after an error or an interrupt: nothing keeps running for nobody
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()
