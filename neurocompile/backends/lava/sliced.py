"""A population emitted as the placement has it: one Lava process per core slice, seen by the
rest of the emission (and by the code that reads its variables) as one process."""

from __future__ import annotations

import dataclasses

import numpy as np


def core_slices(placement: dict) -> dict[str, list[tuple[int, int]]]:
    """Per population placed on cores, its slices (start, stop) in neuron order."""
    out: dict[str, list[tuple[int, int]]] = {}
    for core in placement["cores"]:
        for piece in core["slices"]:
            out.setdefault(piece["population"], []).append((piece["start"], piece["stop"]))
    return {name: sorted(pieces) for name, pieces in out.items()}


def node_slice(pop, start: int, stop: int):
    """The population's neurons start..stop as a population of their own: per-neuron arrays
    cut, everything else shared."""
    cut = {f.name: getattr(pop, f.name)[start:stop] for f in dataclasses.fields(pop)
           if isinstance(getattr(pop, f.name), np.ndarray) and getattr(pop, f.name).shape == (pop.size,)}
    return dataclasses.replace(pop, name=f"{pop.name}[{start}:{stop}]", shape=(stop - start,), **cut)


# State variables that hold one value per neuron (on their last axis); the others (step counters)
# are the same in every slice.
PER_NEURON_VARS = {"v", "count", "raster", "bias", "acc", "active"}


class _SlicedVar:
    """One variable of a population's slice processes, read and written as the population's."""

    def __init__(self, parts: list, per_neuron: bool):
        self.parts, self.per_neuron = parts, per_neuron

    @property
    def shape(self) -> tuple[int, ...]:
        first = self.parts[0].shape
        return first[:-1] + (sum(v.shape[-1] for v in self.parts),) if self.per_neuron else first

    def get(self) -> np.ndarray:
        if self.per_neuron:
            return np.concatenate([np.asarray(v.get()) for v in self.parts], axis=-1)
        return self.parts[0].get()

    def set(self, value: np.ndarray) -> None:
        if not self.per_neuron:
            for v in self.parts:
                v.set(value)
            return
        edges = np.cumsum([v.shape[-1] for v in self.parts])[:-1]
        for v, piece in zip(self.parts, np.split(np.asarray(value), edges, axis=-1)):
            v.set(piece)


class _FanOut:
    """The output ports of a population's slices, connected together wherever it goes."""

    def __init__(self, ports: list):
        self.ports = ports

    def connect(self, destination) -> None:
        for port in self.ports:
            port.connect(destination)


class SlicedProcess:
    """A population emitted as one process per core slice, seen as one process: each slice
    sends its output placed in a population-sized vector (processes.placed), so whatever the
    population's output fed, every slice feeds; its variables concatenate theirs; running or
    stopping any slice runs or stops the whole network."""

    def __init__(self, parts: list):
        self.parts = parts
        self.s_out = _FanOut([p.s_out for p in parts]) if hasattr(parts[0], "s_out") else None

    def run(self, **kwargs):
        return self.parts[0].run(**kwargs)

    def stop(self):
        return self.parts[0].stop()

    @property
    def runtime(self):
        return self.parts[0].runtime

    def __getattr__(self, name: str):
        if name.startswith("_") or name == "parts":
            raise AttributeError(name)
        return _SlicedVar([getattr(p, name) for p in self.parts], name in PER_NEURON_VARS)
