"""A run's summary (what `run` prints) and the comparison of two backends (what `compare` and
`hil` check). How each backend runs lives in evaluation.backends; it is re-exported here for the
scripts that import it from this module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..evaluation.backends import BACKENDS, PRECISIONS, check_recording, check_steps, readout_start_step, run_backend
from ..ir.result import RunResult

__all__ = ["BACKENDS", "PRECISIONS", "check_recording", "check_steps", "readout_start_step", "run_backend", "summary", "compare_results"]


def summary(result: RunResult, seed: int, readout_start: int = 0, energy: dict | None = None) -> dict[str, Any]:
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
    return out


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
