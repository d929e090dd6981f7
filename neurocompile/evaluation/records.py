"""What an evaluation keeps of each sample: flat arrays keyed by name, small enough to hold for a
whole test set (a sample's output, prediction and per-population spike, event and message
counts; per-neuron counts only summed over the samples)."""

from __future__ import annotations

import numpy as np

from ..ir.result import RunResult

SUMMED = ("neuron_spikes/", "input_saturated")  # summed over samples; every other array has one row per sample


def predictions(output: np.ndarray) -> np.ndarray:
    return output.reshape(output.shape[0], -1).argmax(axis=1).astype(np.int64)


def chunk_record(result: RunResult, ann_output: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The record of a run over consecutive samples."""
    n = result.output.shape[0]
    rec = {
        "output": result.output.reshape(n, -1).astype(np.float64),
        "readout_int": np.asarray(result.readout_int).reshape(n, -1),
        "prediction": predictions(result.output),
        "synaptic_ops": np.asarray(result.synaptic_ops, np.int64),
        "input_saturated": np.array(int(result.input_saturated), np.int64),
    }
    rec["total_spikes"] = np.asarray(result.total_spikes, np.int64)
    for name, counts in result.counts.items():
        rec[f"spikes/{name}"] = counts.sum(axis=1).astype(np.int64)
        rec[f"neuron_spikes/{name}"] = counts.sum(axis=0).astype(np.int64)
    for kind, store in (("events", result.events), ("messages", result.messages)):
        for name, v in store.items():
            rec[f"{kind}/{name}"] = np.asarray(v, np.int64)
    if ann_output is not None:
        rec["ann_output"] = ann_output.reshape(n, -1).astype(np.float64)
        rec["ann_prediction"] = predictions(ann_output)
    return rec


def merge(records: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The record of consecutive chunks, in order."""
    out = {}
    for key in records[0]:
        parts = [r[key] for r in records]
        out[key] = sum(parts[1:], parts[0].copy()) if key.startswith(SUMMED) else np.concatenate(parts)
    return out


def _named(rec: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in rec.items() if k.startswith(prefix)}


def as_run_result(rec: dict[str, np.ndarray], backend: str, steps: int, output_shape: list[int]) -> RunResult:
    """A RunResult whose per-population counts are one column per sample (the sample's total):
    what the summary and the energy model read."""
    n = rec["output"].shape[0]
    counts = {name: v[:, None] for name, v in _named(rec, "spikes/").items()}
    return RunResult(backend, steps, rec["output"].reshape((n, *output_shape)), rec["readout_int"], counts, rec["synaptic_ops"],
                     int(rec["input_saturated"]), events=_named(rec, "events/"), messages=_named(rec, "messages/"))
