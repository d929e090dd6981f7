"""Which backend runs a network and how: the checks every run shares (steps, readout window,
recording memory) and the call into the simulator, Lava or the float reference."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..compiler.artifact import Artifact
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
