"""Partial results of an evaluation on disk, one file per finished chunk of samples, so that an
interrupted run resumes where it stopped. The directory sits next to the result (`R.npz` ->
`R.npz.partial/`), names the run it belongs to in `run.json`, and is removed once the result is
written. Every file is written whole or not at all (write to a temporary, then rename)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..compiler.artifact import json_bytes, npz_bytes, write_file_atomic
from ..errors import NeurocompileError

CHUNK = re.compile(r"chunk-(\d{12})-(\d{12})\.npz")


class PartialResults:
    def __init__(self, result: Path, identity: dict[str, Any], resume: bool):
        self.dir = result.with_name(result.name + ".partial")
        self.identity = json.loads(json_bytes(identity))  # as it reads back from disk
        if self.dir.exists():
            if not resume:
                raise NeurocompileError(f"{self.dir} holds the partial results of an interrupted run: pass --resume to continue it, or remove it")
            try:
                found = json.loads((self.dir / "run.json").read_text())
            except (OSError, ValueError):
                raise NeurocompileError(f"--resume: {self.dir}/run.json is missing or unreadable; remove {self.dir} to start again") from None
            differs = sorted(k for k in set(found) | set(self.identity) if found.get(k) != self.identity.get(k))
            if differs:
                raise NeurocompileError(f"--resume: the partial results in {self.dir} belong to a different run ({', '.join(differs)} differ); "
                                        "rerun with the same options, or remove it")
        else:
            self.dir.mkdir()
            write_file_atomic(self.dir / "run.json", json_bytes(self.identity))

    def done(self) -> list[tuple[int, int]]:
        """The sample ranges whose chunks are on disk, in order."""
        spans = []
        for f in self.dir.iterdir():
            m = CHUNK.fullmatch(f.name)
            if m:
                spans.append((int(m[1]), int(m[2])))
        return sorted(spans)

    def write(self, start: int, stop: int, record: dict[str, np.ndarray]) -> None:
        write_file_atomic(self.dir / f"chunk-{start:012d}-{stop:012d}.npz", npz_bytes(record))

    def read(self) -> Iterator[dict[str, np.ndarray]]:
        for start, stop in self.done():
            with np.load(self.dir / f"chunk-{start:012d}-{stop:012d}.npz", allow_pickle=False) as z:
                yield {k: z[k] for k in z.files}

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def missing(done: list[tuple[int, int]], total: int, chunk: int) -> list[tuple[int, int]]:
    """The ranges of [0, total) not covered by `done` (sorted, disjoint), cut into chunks."""
    todo, at = [], 0
    for start, stop in [*done, (total, total)]:
        for lo in range(at, start, chunk):
            todo.append((lo, min(lo + chunk, start)))
        at = max(at, stop)
    return todo
