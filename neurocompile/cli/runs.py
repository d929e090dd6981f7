"""Running artifacts on a backend, and comparing backends: what `run` and `compare` do."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..compiler.artifact import Artifact, write_file_atomic
from ..errors import NeurocompileError
from ..ir.nodes import Product
from ..ir.result import RunResult
from ..semantics.products import telescoping_step_limit

BACKENDS = ("sim", "lava", "reference")
PRECISIONS = ("fixed", "float")  # bit-accurate, or Lava's floating_pt models
Progress = Callable[[int], None]


def readout_start_step(art: Artifact, readout_start: int | str, backend: str) -> int:
    """The first step the readout sums: a number, or 'latency' (the network's pipeline depth,
    so that the readout sums only steps whose input has crossed every layer; the reference
    backend has no delay between layers, so for it 'latency' is 0)."""
    if readout_start == "latency":
        return 0 if backend == "reference" else art.net.latency()
    try:
        start = int(readout_start)
    except (TypeError, ValueError):
        raise NeurocompileError(f"--readout-start must be a step number or 'latency', got '{readout_start}'") from None
    if start < 0:
        raise NeurocompileError(f"--readout-start must be at least 0, got {start}")
    return start


READOUT_STEPS_MAX = 2**32 - 1  # the readout sums 32-bit inputs in 64 bits: exact for this many steps


def check_steps(art: Artifact, steps: int) -> None:
    if steps < 1:
        raise NeurocompileError(f"--steps must be at least 1, got {steps}")
    if steps > READOUT_STEPS_MAX:
        raise NeurocompileError(f"a run of {steps} steps: the readout sums 32-bit inputs in 64 bits, exactly for at most {READOUT_STEPS_MAX} steps")
    for pop in art.net.populations():
        if isinstance(pop, Product) and pop.form == "telescoping":
            a, b = art.net.operands(pop.name)
            limit = telescoping_step_limit(pop.a_shape[-1], a.max_payload(), b.max_payload())
            if steps > limit:
                raise NeurocompileError(f"product '{pop.name}': the telescoping form is exact for at most {limit} steps, {steps} asked")


def check_recording(art: Artifact, samples: int, steps: int) -> None:
    """Recorded spikes take a byte per neuron, step and sample on each backend: refused up front
    when that exceeds the memory available, with what it needs."""
    import torch

    from ..backends.sim import available_memory

    need = 2 * samples * steps * sum(p.size for p in art.net.populations())
    have = available_memory(torch.device("cpu"))
    if need > have:
        raise NeurocompileError(f"recording {samples} samples x {steps} steps of every neuron needs {need / 2**30:.3g} GiB (two backends); "
                                f"{have / 2**30:.3g} GiB are available: use fewer --samples or --steps")


def run_backend(art: Artifact, x: np.ndarray, steps: int, backend: str, seed: int, record: bool = False,
                precision: str = "fixed", progress: Progress | None = None, readout_start: int | str = 0, per_core: bool = False,
                device: str = "cpu", batch_size: int | None = None) -> RunResult:
    """`per_core`: the Lava emission follows the artifact's placement, one process per core slice.
    `device` and `batch_size` place and batch the simulator; `progress` counts samples, except
    for the reference backend, which counts steps."""
    check_steps(art, steps)
    if record:
        check_recording(art, x.shape[0], steps)
    start = readout_start_step(art, readout_start, backend)
    if start >= steps:
        raise NeurocompileError(f"the readout starts at step {start} but the run has only {steps} steps")
    num = art.target.numerics
    if backend == "sim":
        from ..backends.sim import Simulator

        if precision != "fixed":
            raise NeurocompileError("the simulator is bit-accurate fixed point only; --precision float runs on --backend lava")
        return Simulator(art.net, num, device).run(x, steps, seed=seed, record=record, progress=progress, readout_start=start, batch_size=batch_size)
    if backend == "lava":
        from ..backends.lava.run import core_slices, run_lava

        return run_lava(art.net, x, steps, num, seed=seed, precision=precision,
                        record=record, hardware=art.target.mode == "hw", progress=progress, readout_start=start,
                        slices=core_slices(art.placement) if per_core else None)
    if backend == "reference":
        from ..backends.reference import run_reference

        return run_reference(art.net, x, steps, seed=seed, progress=progress, readout_start=start)
    raise NeurocompileError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")


def summary(result: RunResult, seed: int, labels: np.ndarray | None = None, readout_start: int = 0, energy: dict | None = None) -> dict[str, Any]:
    out = {
        "backend": result.backend,
        "steps": result.steps,
        "readout_start": readout_start,
        # Half-open step ranges: the steps before the readout starts (the pipeline fill, by
        # default), and the steps it sums.
        "windows": {"before_readout": [0, readout_start], "readout": [readout_start, result.steps]},
        "samples": int(result.output.shape[0]),
        "seed": seed,
        "predictions": result.output.reshape(result.output.shape[0], -1).argmax(axis=1).tolist(),
        "output": result.output.reshape(result.output.shape[0], -1).tolist(),
        "spikes": {name: v.tolist() for name, v in result.spikes.items()},
        "total_spikes": result.total_spikes.tolist(),
        "synaptic_ops": result.synaptic_ops.tolist(),
        "input_saturated": result.input_saturated,
    }
    if energy is not None:
        out["energy"] = energy
    if labels is not None:
        out["accuracy"] = float(np.mean(np.asarray(out["predictions"]) == labels[: len(out["predictions"])]))
    return out


def save_result(path: str | Path, result: RunResult) -> None:
    """The result as .npz, written whole or not at all."""
    arrays = {"output": result.output, "total_spikes": result.total_spikes, "synaptic_ops": result.synaptic_ops}
    for name, counts in result.counts.items():
        arrays[f"spikes/{name}"] = counts.sum(axis=1)
        arrays[f"counts/{name}"] = counts.astype(np.int32)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_file_atomic(path, buf.getvalue())


@dataclass
class Divergence:
    population: str
    step: int
    neuron: int
    sample: int
    sim: int
    lava: int

    def __str__(self) -> str:
        return f"population '{self.population}', step {self.step}, neuron {self.neuron}, sample {self.sample}: sim {self.sim}, lava {self.lava}"


def first_divergence(a: RunResult, b: RunResult) -> Divergence | None:
    """The earliest step at which any population's spikes differ (ties: topological order)."""
    best = None
    for name, ra in a.rasters.items():
        rb = b.rasters[name]
        diff = np.argwhere(ra != rb)  # [step, sample, neuron], sorted by step
        if diff.size and (best is None or diff[0, 0] < best.step):
            t, k, i = (int(v) for v in diff[0])
            best = Divergence(name, t, i, k, int(ra[t, k, i]), int(rb[t, k, i]))
    return best


def compare_results(a: RunResult, b: RunResult) -> dict[str, Any]:
    pops = {}
    for name, ca in a.counts.items():
        cb = b.counts[name]
        pops[name] = {"neurons": int(ca.shape[1]), "sim": ca.sum(axis=1).tolist(), "lava": cb.sum(axis=1).tolist(), "identical": bool(np.array_equal(ca, cb))}
    readout_same = bool(np.array_equal(a.readout_int, b.readout_int))
    # Synaptic events and spike messages per edge: where failures act, spikes alone can agree
    # while what got through differs.
    traffic_same = all(np.array_equal(a.events[k], b.events.get(k)) for k in a.events) and \
        all(np.array_equal(a.messages[k], b.messages.get(k)) for k in a.messages) and set(a.messages) == set(b.messages)
    div = first_divergence(a, b) if a.rasters is not None and b.rasters is not None else None
    identical = all(p["identical"] for p in pops.values()) and readout_same and traffic_same and div is None
    return {
        "identical": identical,
        "populations": pops,
        "readout_identical": readout_same,
        "traffic_identical": traffic_same,
        "synaptic_ops": {"sim": a.synaptic_ops.tolist(), "lava": b.synaptic_ops.tolist()},
        "first_divergence": None if div is None else div.__dict__,
        "divergence_text": None if div is None else str(div),
    }
