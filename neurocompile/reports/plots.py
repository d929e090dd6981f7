"""The pictures of a run, a sweep and a placement (matplotlib, PNG). Each function takes the same
numbers the JSON next to it holds and returns the Figure, so that what is drawn can be checked
against them; `save` writes it."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display, the same pixels everywhere

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..compiler.artifact import write_file_atomic  # noqa: E402

DPI = 120


def save(fig: Figure, path: str | Path) -> Path:
    """The figure as a PNG, written whole or not at all. Metadata carry no date, so equal numbers
    give equal files."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    write_file_atomic(path, buf.getvalue())
    return Path(path)


def _ratios(rows: list[dict]) -> list[float | None]:
    """The mask ratios of the rows, None (the model's own ratios) first."""
    return sorted({r["mask_ratio"] for r in rows}, key=lambda r: (r is not None, r or 0.0))


def _ratio_label(ratio: float | None) -> str:
    return "the model's masks" if ratio is None else f"mask ratio {ratio:g}"


def accuracy_vs_steps(rows: list[dict], latency: int) -> Figure:
    """Accuracy (solid, with its 95 % interval) and agreement with the ANN (dashed) against the
    length of the run, one colour per mask ratio; the pipeline latency marked. rows: sweep rows
    (mask_ratio, steps, run_steps, accuracy, accuracy_low, accuracy_high, ann_agreement), one per
    (mask ratio, steps), seeds pooled."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for k, ratio in enumerate(_ratios(rows)):
        mine = sorted((r for r in rows if r["mask_ratio"] == ratio), key=lambda r: r["run_steps"])
        x = [r["run_steps"] for r in mine]
        color = f"C{k}"
        ax.plot(x, [100 * r["accuracy"] for r in mine], "o-", color=color, label=f"accuracy, {_ratio_label(ratio)}")
        ax.fill_between(x, [100 * r["accuracy_low"] for r in mine], [100 * r["accuracy_high"] for r in mine], color=color, alpha=0.15)
        if all(r.get("ann_agreement") is not None for r in mine):
            ax.plot(x, [100 * r["ann_agreement"] for r in mine], "s--", color=color, label=f"agreement with ANN, {_ratio_label(ratio)}")
    ax.axvline(latency, color="grey", linestyle=":", label=f"pipeline latency ({latency} steps)")
    ax.set(title="Accuracy against run length", xlabel="steps simulated (latency + readout steps T)", ylabel="samples (%)")
    ax.legend(fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def events_vs_accuracy(rows: list[dict]) -> Figure:
    """Synaptic events (and energy) per inference against accuracy, one series per mask ratio,
    a point per T: the MST paper's Table 3 as a picture."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for k, ratio in enumerate(_ratios(rows)):
        mine = sorted((r for r in rows if r["mask_ratio"] == ratio), key=lambda r: r["steps"])
        ax.plot([r["synaptic_events"] for r in mine], [100 * r["accuracy"] for r in mine], "o-", color=f"C{k}", label=_ratio_label(ratio))
        for r in mine:
            ax.annotate(f"T={r['steps']}", (r["synaptic_events"], 100 * r["accuracy"]), fontsize="x-small", xytext=(3, 3), textcoords="offset points")
    ax.set(title="Synaptic events against accuracy", xlabel="synaptic events per inference", ylabel="accuracy (%)")
    ax.legend(title="random spike masking", fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def rates_vs_ann(populations: list[dict]) -> Figure:
    """Per population, the SNN's mean spike rate against the rate its ANN activations predict
    (activation / threshold, clipped to 1); a converted network sits on the diagonal.
    populations: [{name, ann_rate, snn_rate}]."""
    fig, ax = plt.subplots(figsize=(5.2, 5.2))
    x = np.array([p["ann_rate"] for p in populations])
    y = np.array([p["snn_rate"] for p in populations])
    ax.scatter(x, y, s=18, color="C0", label="IF populations")
    top = max(1e-3, float(np.max(np.concatenate([x, y]))) if len(x) else 1.0) * 1.05
    ax.plot([0, top], [0, top], color="grey", linestyle="--", label="SNN rate = ANN rate")
    ax.set(title="Spike rates: SNN against ANN", xlabel="ANN activation / threshold (spikes per step)",
           ylabel="SNN spikes per neuron per step", xlim=(0, top), ylim=(0, top))
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def raster(rasters: dict[str, np.ndarray], sample: int = 0) -> Figure:
    """Spikes of the chosen populations in one sample: a dot per (step, neuron); populations
    stacked. rasters: population -> [T, n] 0/1."""
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    offset = 0
    for k, (name, r) in enumerate(rasters.items()):
        t, i = np.nonzero(r)
        ax.scatter(t, i + offset, s=0.3, marker=".", linewidths=0, color=f"C{k}", label=name, rasterized=True)
        offset += r.shape[1]
    ax.set(title=f"Spike raster, sample {sample}", xlabel="step", ylabel="neuron (populations stacked)")
    ax.legend(fontsize="x-small", markerscale=20, bbox_to_anchor=(1.01, 1), loc="upper left", title="population")
    return fig


def cores_per_chip(chips: list[int], populations: list[str], cores: np.ndarray) -> Figure:
    """Cores of each chip, coloured by the population they hold. cores [population, chip]
    (a core shared by populations counts in the share of its neurons)."""
    fig, ax = plt.subplots(figsize=(max(5.0, 0.25 * len(chips) + 3), 4.2))
    bottom = np.zeros(len(chips))
    for k, name in enumerate(populations):
        ax.bar(np.arange(len(chips)), cores[k], bottom=bottom, color=plt.cm.tab20(k % 20), label=name, width=0.8)
        bottom += cores[k]
    ax.set(title="Cores per chip, by population", xlabel="chip", ylabel="cores")
    ax.set_xticks(np.arange(len(chips)), [str(c) for c in chips], fontsize="x-small")
    ax.legend(fontsize="xx-small", ncol=2, bbox_to_anchor=(1.01, 1), loc="upper left")
    return fig


def chip_traffic(labels: list[str], messages: np.ndarray) -> Figure:
    """Spike messages per step from each chip (rows) to each chip or the host (columns); labels
    name the columns, the rows are the chips among them."""
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    im = ax.imshow(messages, cmap="viridis", interpolation="nearest", aspect="auto")
    ax.set(title="Spike messages between chips (every neuron spiking once)", xlabel="to", ylabel="from")
    if len(labels) <= 40:  # beyond, tick labels overlap into a black bar
        ax.set_xticks(np.arange(len(labels)), labels, fontsize="x-small", rotation=90)
        ax.set_yticks(np.arange(messages.shape[0]), labels[:messages.shape[0]], fontsize="x-small")
    fig.colorbar(im, ax=ax, label="messages")
    return fig
