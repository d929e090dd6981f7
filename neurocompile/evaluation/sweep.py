"""A sweep: one model built once per mask ratio, each build evaluated for every number of readout
steps T and every seed, on the whole test set (`neurocompile sweep`). A cell is exactly the `run`
of that artifact with `--steps T --seed S` (readout after the pipeline fill)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..compiler.artifact import Artifact
from ..data import InputSet
from ..errors import NeurocompileError
from .metrics import proportion
from .records import as_run_result
from .stream import Executor, RunConfig, evaluate

SEED_MAX = 2**32 - 1
SEEDS_MAX = 10_000


def parse_numbers(text: str, what: str, kind: type) -> list:
    """'16,32,64' -> [16, 32, 64]; duplicates dropped, order kept."""
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise NeurocompileError(f"{what} '{text}': a comma-separated list of {'integers' if kind is int else 'numbers'} is required") from None
    if not values:
        raise NeurocompileError(f"{what} '{text}' lists nothing")
    return list(dict.fromkeys(values))


def parse_seeds(text: str) -> list[int]:
    """'0-4' -> [0, 1, 2, 3, 4]; '1,5,9' -> [1, 5, 9]; ranges and lists mix: '0-2,7'."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m or (m[2] is not None and int(m[2]) < int(m[1])):
            raise NeurocompileError(f"--seeds '{text}': use seeds and ranges such as 0-4 or 0,3,7")
        lo, hi = int(m[1]), int(m[2] or m[1])
        if hi > SEED_MAX:
            raise NeurocompileError(f"--seeds '{text}': seeds between 0 and {SEED_MAX} are required")
        if len(seeds) + hi - lo + 1 > SEEDS_MAX:
            raise NeurocompileError(f"--seeds '{text}': more than {SEEDS_MAX} seeds; each one evaluates the whole test set")
        seeds.extend(range(lo, hi + 1))
    if not seeds:
        raise NeurocompileError(f"--seeds '{text}' lists no seed")
    return list(dict.fromkeys(seeds))


@dataclass(frozen=True)
class Grid:
    steps: list[int]
    mask_ratios: list[float | None]  # None: the model's own ratios
    seeds: list[int]

    def check(self) -> None:
        if min(self.steps) < 1:
            raise NeurocompileError(f"--steps: every T must be at least 1, got {min(self.steps)}")
        for r in self.mask_ratios:
            if r is not None and not 0.0 <= r < 1.0:
                raise NeurocompileError(f"--mask-ratio: every ratio must be in [0, 1), got {r:g}")

    @property
    def cells(self) -> int:
        return len(self.steps) * len(self.mask_ratios) * len(self.seeds)


def cell_row(art: Artifact, ratio: float | None, steps: int, seed: int, record: dict, labels: np.ndarray, ann_prediction: np.ndarray) -> dict:
    from ..partition.energy import run_energy

    latency = art.net.latency()
    acc = proportion(record["prediction"] == labels)
    energy = run_energy(art.net, art.target, art.placement, as_run_result(record, "sim", latency + steps, art.net.meta["output_shape"]))
    return {
        "mask_ratio": ratio, "steps": steps, "run_steps": latency + steps, "seed": seed, "samples": acc["samples"], "hits": acc["hits"],
        "accuracy": acc["value"], "accuracy_low": acc["low"], "accuracy_high": acc["high"],
        "ann_agreement": float(np.mean(record["prediction"] == ann_prediction)),
        "synaptic_events": energy["synaptic_events"], "spikes": energy["spikes"], "energy_per_inference_j": energy["energy_per_inference_j"],
    }


def summarise(rows: list[dict]) -> list[dict]:
    """One row per (mask ratio, T): means over the seeds; the accuracy interval pools the
    seeds' samples."""
    out = []
    keys = list(dict.fromkeys((r["mask_ratio"], r["steps"]) for r in rows))
    for ratio, steps in keys:
        mine = [r for r in rows if r["mask_ratio"] == ratio and r["steps"] == steps]
        total = sum(r["samples"] for r in mine)
        pooled = proportion(np.arange(total) < sum(r["hits"] for r in mine))
        row = {"mask_ratio": ratio, "steps": steps, "run_steps": mine[0]["run_steps"], "seeds": len(mine), "samples": mine[0]["samples"],
               "accuracy": pooled["value"], "accuracy_low": pooled["low"], "accuracy_high": pooled["high"],
               "accuracy_seed_std": float(np.std([r["accuracy"] for r in mine]))}
        for k in ("ann_agreement", "synaptic_events", "spikes", "energy_per_inference_j"):
            row[k] = float(np.mean([r[k] for r in mine]))
        out.append(row)
    return out


def run_sweep(arts: dict[float | None, Artifact], grid: Grid, inputs: InputSet, labels: np.ndarray, executor: Executor | None = None,
              progress: Callable[[str, float], None] | None = None, batch_size: int | None = None) -> dict:
    """Every cell of the grid on every sample: {'rows': per cell, 'summary': per (mask ratio, T),
    'ann_accuracy', 'latency', 'samples'}. The ANN's predictions (which no mask, T or seed
    changes) are computed with the first cell."""
    rows, ann_prediction = [], None
    for ratio, art in arts.items():
        latency = art.net.latency()
        for steps in grid.steps:
            for seed in grid.seeds:
                name = f"mask {'model' if ratio is None else f'{ratio:g}'}, T={steps}, seed {seed}"
                config = RunConfig("sim", latency + steps, seed, latency, ann=ann_prediction is None, batch_size=batch_size)
                record = evaluate(art, inputs, config, executor, progress=(lambda n, name=name: progress(name, n)) if progress else None)
                if ann_prediction is None:
                    ann_prediction = record["ann_prediction"]
                rows.append(cell_row(art, ratio, steps, seed, record, labels, ann_prediction))
    first = next(iter(arts.values()))
    return {"rows": rows, "summary": summarise(rows), "ann_accuracy": float(np.mean(ann_prediction == labels)), "latency": first.net.latency(),
            "samples": len(inputs), "steps": grid.steps, "mask_ratios": grid.mask_ratios, "seeds": grid.seeds}


def variant_name(ratio: float | None) -> str:
    return "model" if ratio is None else f"mask-{ratio:g}"


def build_variant(model: Path, folder: Path, ratio: float | None, options) -> Artifact:
    """The model built with every mask at `ratio` (None: its own ratios) into
    `folder`/artifacts; `options` are the BuildOptions every variant shares."""
    from dataclasses import replace

    from ..compiler import build
    from ..compiler.artifact import load_artifact

    (folder / "artifacts").mkdir(parents=True, exist_ok=True)
    opts = options if ratio is None else replace(options, mask_ratio=f"{ratio:g}")
    path, _ = build(model, folder / "artifacts" / f"{variant_name(ratio)}.ncx", opts)
    return load_artifact(path)
