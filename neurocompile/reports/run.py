"""The report of a run (`run --report DIR`): summary.json, the spike rates of every IF population
against its ANN activations (rates.png, numbers in rates.json) and a raster of one sample
(raster.png, spikes in raster.npz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..compiler.artifact import Artifact, json_bytes, npz_bytes, write_file_atomic
from ..data import InputSet
from ..evaluation.stream import RunConfig
from ..ir.graph import Network
from ..ir.interpret import evaluate, spike_rates
from ..ir.nodes import IFPopulation
from . import plots

RATE_SAMPLES = 256  # the ANN's activations are computed on the first samples only (one batch)
RASTER_POPULATIONS = 4


def rate_points(net: Network, inputs: InputSet, config: RunConfig, record: dict[str, np.ndarray]) -> list[dict]:
    """Per IF population, on the first samples: the SNN's spikes per neuron per step after the
    population's pipeline delay, and the rate its ANN activations predict."""
    n = min(len(inputs), RATE_SAMPLES)
    expected = spike_rates(net, evaluate(net, inputs.read(0, n))["post"])
    delay = net.delays()
    points = []
    for pop in net.populations():
        if isinstance(pop, IFPopulation) and f"spikes/{pop.name}" in record:
            live = max(1, config.steps - delay[pop.name])
            snn = float(record[f"spikes/{pop.name}"][:n].sum()) / (n * pop.size * live)
            points.append({"name": pop.name, "ann_rate": float(expected[pop.name].mean()), "snn_rate": snn})
    return points


def raster_populations(net: Network) -> list[str]:
    """A few IF populations spread over the network's depth: the first, the last, and between."""
    spiking = [p.name for p in net.populations() if isinstance(p, IFPopulation)]
    if len(spiking) <= RASTER_POPULATIONS:
        return spiking
    picks = np.linspace(0, len(spiking) - 1, RASTER_POPULATIONS).round().astype(int)
    return [spiking[k] for k in dict.fromkeys(picks)]


def sample_raster(art: Artifact, inputs: InputSet, config: RunConfig, names: list[str]) -> dict[str, np.ndarray]:
    """Sample 0's spikes [T, n] in the chosen populations, from the simulator (which every
    backend matches spike for spike)."""
    from ..backends.sim import Simulator

    result = Simulator(art.net, art.target.numerics, config.device).run(inputs.read(0, 1), config.steps, seed=config.seed, record=True,
                                                                        readout_start=config.readout_start)
    return {name: result.rasters[name][:, 0] for name in names}


def write_run_report(folder: Path, art: Artifact, inputs: InputSet, config: RunConfig, summary: dict, record: dict[str, np.ndarray],
                     raster_names: list[str] | None = None) -> None:
    """`raster_names`: the populations of the raster (default: raster_populations)."""
    folder.mkdir(exist_ok=True)
    write_file_atomic(folder / "summary.json", json_bytes(summary))
    points = rate_points(art.net, inputs, config, record)
    write_file_atomic(folder / "rates.json", json_bytes(points))
    plots.save(plots.rates_vs_ann(points), folder / "rates.png")
    rasters = sample_raster(art, inputs, config, raster_names or raster_populations(art.net))
    write_file_atomic(folder / "raster.npz", npz_bytes(rasters))
    plots.save(plots.raster(rasters), folder / "raster.png")
