"""Evaluation of a test set in chunks of samples: read through memory maps, run, recorded per
sample, written as each chunk finishes (so that memory stays flat and an interrupted run
resumes), and merged at the end.

A sample's result depends on nothing but the sample, the artifact and the run's options: every
random draw is keyed by (seed, node, step, neuron), the same for every sample, and each sample
starts from the reset state. So chunks can run in any order, size and process, on a local loop or
on Ray workers (evaluation.distributed), and give the same bits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

from ..compiler.artifact import Artifact, npz_bytes, sha256_file, write_file_atomic
from ..data import InputSet
from ..errors import NeurocompileError
from .backends import check_steps, run_backend
from .records import chunk_record, merge
from .store import PartialResults, missing

Progress = Callable[[float], None]
Span = tuple[int, int]

# Samples per chunk when --batch-size does not say: a simulator chunk is one batch at most (it
# plans its own batches inside), a Lava chunk pays for building the processes once.
CHUNK_SAMPLES = {"sim": 256, "lava": 32, "reference": 64}


@dataclass(frozen=True)
class RunConfig:
    """How each sample runs: everything a result depends on (and, besides, where and in what
    batches the simulator runs, which it does not)."""
    backend: str
    steps: int  # the whole run: readout start + the steps the readout sums
    seed: int
    readout_start: int
    precision: str = "fixed"
    per_core: bool = False
    ann: bool = True  # also record the ANN's outputs (the artifact's float network)
    device: str = "cpu"
    batch_size: int | None = None

    def identity(self) -> dict:
        """The options a result depends on."""
        d = asdict(self)
        for k in ("device", "batch_size"):
            d.pop(k)
        return d


def check_config(art: Artifact, config: RunConfig) -> None:
    """What run_backend checks, for the simulator that ChunkRunner runs directly; before any
    chunk starts, on whichever process."""
    check_steps(art, config.steps)
    if config.backend == "sim" and config.precision != "fixed":
        raise NeurocompileError("the simulator is bit-accurate fixed point only; --precision float runs on --backend lava")
    if config.readout_start >= config.steps:
        raise NeurocompileError(f"the readout starts at step {config.readout_start} but the run has only {config.steps} steps")


class ChunkRunner:
    """Runs chunks of samples of one artifact; a simulator is set up once and reused."""

    def __init__(self, art: Artifact, config: RunConfig):
        check_config(art, config)
        self.art, self.config, self._sim = art, config, None

    def __call__(self, x: np.ndarray, progress: Progress | None = None) -> dict[str, np.ndarray]:
        c = self.config
        if c.backend == "sim":
            if self._sim is None:
                from ..backends.sim import Simulator

                self._sim = Simulator(self.art.net, self.art.target.numerics, c.device)
            result = self._sim.run(x, c.steps, seed=c.seed, progress=progress, readout_start=c.readout_start, batch_size=c.batch_size)
        else:
            result = run_backend(self.art, x, c.steps, c.backend, c.seed, precision=c.precision, readout_start=c.readout_start,
                                 per_core=c.per_core, progress=progress if c.backend == "lava" else None)
        return chunk_record(result, self.ann(x) if c.ann else None)

    def ann(self, x: np.ndarray) -> np.ndarray:
        """The float network's outputs, one sample at a time on one BLAS thread: a float matrix
        product's rounding depends on how many rows it multiplies and on how many threads split
        the sums, and the record must not depend on chunks or workers. (Other CPUs or BLAS
        builds may still round the float ANN differently; the SNN's integers never do.)"""
        from threadpoolctl import threadpool_limits

        from ..ir.interpret import evaluate

        with threadpool_limits(limits=1, user_api="blas"):
            return np.concatenate([evaluate(self.art.net, x[k:k + 1])["post"][self.art.net.readout.name] for k in range(x.shape[0])])


class Executor(Protocol):
    """Runs chunks and yields (span, record) as each finishes, in any order; `done(n)` reports
    samples finished so far, fractions allowed."""

    def map(self, art: Artifact, config: RunConfig, inputs: InputSet, spans: list[Span], done: Progress) -> Iterator[tuple[Span, dict]]: ...


class LocalExecutor:
    """One process, chunk after chunk."""

    def map(self, art: Artifact, config: RunConfig, inputs: InputSet, spans: list[Span], done: Progress) -> Iterator[tuple[Span, dict]]:
        runner = ChunkRunner(art, config)
        finished = 0
        for start, stop in spans:
            rec = runner(inputs.read(start, stop), progress=lambda k, base=finished: done(base + k))
            finished += stop - start
            done(finished)
            yield (start, stop), rec


def run_identity(art: Artifact, inputs: InputSet, config: RunConfig) -> dict:
    """What a resumed run must share with the one it continues."""
    return {"artifact": sha256_file(Path(art.path) / "manifest.json"), "inputs": inputs.identity(), "config": config.identity()}


def evaluate(art: Artifact, inputs: InputSet, config: RunConfig, executor: Executor | None = None, result_path: Path | None = None,
             resume: bool = False, progress: Progress | None = None) -> dict[str, np.ndarray]:
    """The merged record of every sample. With `result_path`, each finished chunk is written to
    its partial-results directory first, and `resume` continues one left by an interrupted run."""
    check_config(art, config)
    executor = executor or LocalExecutor()
    chunk = config.batch_size or CHUNK_SAMPLES.get(config.backend, 64)
    store = PartialResults(result_path, run_identity(art, inputs, config), resume) if result_path is not None else None
    done_spans = store.done() if store else []
    todo = missing(done_spans, len(inputs), chunk)
    already = sum(b - a for a, b in done_spans)
    records: dict[Span, dict] = {}
    report = (lambda n: progress(already + n)) if progress else (lambda n: None)
    report(0)
    for span, rec in executor.map(art, config, inputs, todo, report):
        if store is not None:
            store.write(*span, rec)
        else:
            records[span] = rec
    if store is None:
        return merge([records[s] for s in sorted(records)])
    merged = merge(list(store.read()))
    write_file_atomic(result_path, npz_bytes(merged))  # complete before the partial results go
    store.remove()
    return merged
