"""The files of a sweep: sweep.json (every cell, and per mask ratio and T the seeds pooled),
sweep.csv (every cell), accuracy_vs_steps.png and events_vs_accuracy.png (drawn from the
summary rows of sweep.json)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..compiler.artifact import json_bytes, write_file_atomic
from . import plots

COLUMNS = ["mask_ratio", "steps", "run_steps", "seed", "samples", "hits", "accuracy", "accuracy_low", "accuracy_high", "ann_agreement",
           "synaptic_events", "spikes", "energy_per_inference_j"]


def csv_bytes(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("model" if k == "mask_ratio" and r[k] is None else r[k]) for k in COLUMNS})
    return buf.getvalue().encode()


def write_sweep_report(folder: Path, result: dict) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    write_file_atomic(folder / "sweep.json", json_bytes(result))
    write_file_atomic(folder / "sweep.csv", csv_bytes(result["rows"]))
    rows = result["summary"]
    return [folder / "sweep.json", folder / "sweep.csv",
            plots.save(plots.accuracy_vs_steps(rows, result["latency"]), folder / "accuracy_vs_steps.png"),
            plots.save(plots.events_vs_accuracy(rows), folder / "events_vs_accuracy.png")]
