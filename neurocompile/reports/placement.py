"""The pictures of a placement (`inspect ARTIFACT --plot DIR`): the cores of each chip coloured by
the populations they hold (cores_per_chip.png), and the spike messages between chips and to the
host if every neuron spikes once (chip_traffic.png); their numbers in placement_plots.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..compiler.artifact import Artifact, json_bytes, write_file_atomic
from ..partition.traffic import chip_traffic
from . import plots

SHOWN_POPULATIONS = 19  # the rest drawn as one "other" colour: a legend of hundreds helps nobody


def cores_by_population(placement: dict) -> tuple[list[int], list[str], np.ndarray]:
    """(chips, populations, cores [population, chip]): a core shared by several populations
    counts for each in the share of its neurons; the largest populations by cores first, the
    rest summed as 'other'."""
    chips = sorted({c["chip"] for c in placement["cores"]})
    col = {chip: k for k, chip in enumerate(chips)}
    share: dict[str, np.ndarray] = {}
    for core in placement["cores"]:
        total = sum(sl["stop"] - sl["start"] for sl in core["slices"]) or 1
        for sl in core["slices"]:
            share.setdefault(sl["population"], np.zeros(len(chips)))[col[core["chip"]]] += (sl["stop"] - sl["start"]) / total
    names = sorted(share, key=lambda n: (-share[n].sum(), n))
    shown, rest = names[:SHOWN_POPULATIONS], names[SHOWN_POPULATIONS:]
    rows = [share[n] for n in shown]
    if rest:
        shown = [*shown, f"other ({len(rest)} populations)"]
        rows.append(sum((share[n] for n in rest), np.zeros(len(chips))))
    return chips, shown, np.array(rows)


def write_placement_plots(folder: Path, art: Artifact) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    chips, names, cores = cores_by_population(art.placement)
    traffic = chip_traffic(art.net, art.target, art.placement)
    labels = [f"chip {c}" for c in range(traffic.shape[0] - 1)] + ["host"]
    write_file_atomic(folder / "placement_plots.json", json_bytes({
        "chips": chips, "populations": names, "cores": cores.tolist(),
        "traffic": {"from": labels, "to": labels, "messages": traffic.tolist(), "weighted_by": "one spike per neuron"}}))
    return [folder / "placement_plots.json",
            plots.save(plots.cores_per_chip(chips, names, cores), folder / "cores_per_chip.png"),
            plots.save(plots.chip_traffic(labels, traffic), folder / "chip_traffic.png")]
