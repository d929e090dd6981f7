"""What a run produces, whichever backend ran it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RunResult:
    backend: str
    steps: int
    output: np.ndarray  # [B, *output shape] float: the readout summed over the steps
    readout_int: np.ndarray  # [B, n_out] int64: the raw accumulator
    counts: dict[str, np.ndarray]  # population -> [B, n] spike counts
    synaptic_ops: np.ndarray  # [B] synaptic events (one per spike per nonzero synapse it reaches)
    input_saturated: int = 0  # input elements clipped to the payload range
    membranes: dict[str, np.ndarray] = field(default_factory=dict)  # population -> [B, n] final v
    rasters: dict[str, np.ndarray] | None = field(default=None)  # population -> [T, B, n] uint8
    # Per edge and sample [B], after failures: synaptic events of each block, and spike messages
    # (nonzero outputs sent) on each block and each product operand ("PRODUCT:a", "PRODUCT:b").
    events: dict[str, np.ndarray] = field(default_factory=dict)
    messages: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def concatenate(cls, parts: list["RunResult"]) -> "RunResult":
        """The result of the samples of `parts` (batches of one run), in order."""
        first = parts[0]

        def joined(get, axis: int = 0):
            return np.concatenate([get(p) for p in parts], axis=axis)

        def per_name(get, axis: int = 0):
            return {name: joined(lambda p: get(p)[name], axis) for name in get(first)}

        return cls(first.backend, first.steps, joined(lambda p: p.output), joined(lambda p: p.readout_int), per_name(lambda p: p.counts),
                   joined(lambda p: p.synaptic_ops), sum(p.input_saturated for p in parts), per_name(lambda p: p.membranes),
                   None if first.rasters is None else per_name(lambda p: p.rasters, axis=1), per_name(lambda p: p.events),
                   per_name(lambda p: p.messages))

    @property
    def spikes(self) -> dict[str, np.ndarray]:
        """Total spikes per population and sample, [B]."""
        return {name: c.sum(axis=1) for name, c in self.counts.items()}

    @property
    def total_spikes(self) -> np.ndarray:
        return sum(self.spikes.values(), np.zeros(self.output.shape[0], np.int64))
