"""How closely the compiled digits MST follows its ANN: paired agreement of their predictions on
all 1,797 scikit-learn digits images (less noisy than comparing two accuracies on a small test
set), T steps after the pipeline fill, with a 95 % Wilson interval.

    .venv/bin/python examples/fidelity_mst_digits.py [--steps 16 32] [--samples N]

Each SNN column is what `neurocompile run ARTIFACT --input X --steps T` computes (the default
readout: the T steps after the fill), X being all 1,797 images upscaled as in training; the
artifact is built with the default start steps (`--start aligned`), and once more with every
population started at step 0 (`--start zero`) for comparison.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.datasets import load_digits

from neurocompile.cli.runs import run_backend
from neurocompile.compiler import BuildOptions, build
from neurocompile.compiler.artifact import load_artifact
from neurocompile.evaluation.metrics import proportion
from neurocompile.ir.interpret import evaluate
from train_mst_digits import upscale

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--samples", type=int, default=None)
    args = ap.parse_args()
    digits = load_digits()
    x = upscale((digits.images / 16.0).astype(np.float32)[:, None])[: args.samples].astype(np.float64)
    y = digits.target[: len(x)]
    with tempfile.TemporaryDirectory() as tmp:
        art = load_artifact(build(GRAPHS / "digits_mst.onnx", Path(tmp) / "mst.ncx", BuildOptions())[0])
        from_zero = load_artifact(build(GRAPHS / "digits_mst.onnx", Path(tmp) / "zero.ncx", BuildOptions(start="zero"))[0])
    net = art.net

    def predicted(output: np.ndarray) -> np.ndarray:
        return output.reshape(len(x), -1).argmax(axis=1)

    ann = predicted(evaluate(net, x)["post"][net.readout.name])
    quantized = predicted(evaluate(net, x, quantized=True)["post"][net.readout.name])
    table = Table(title=f"digits MST, all {len(x)} scikit-learn digits, loihi2-sim, readout after the {net.latency()}-step fill", title_justify="left")
    for col in ("evaluation", "agreement with the ANN", "95 % interval", "accuracy", "seconds"):
        table.add_column(col, justify="left" if col == "evaluation" else "right")

    def row(name: str, pred: np.ndarray, seconds: float | None = None) -> None:
        agree = proportion(pred == ann)
        table.add_row(name, f"{agree['value']:.2%} ({len(x) - agree['hits']} differ)", f"{agree['low']:.2%} .. {agree['high']:.2%}",
                      f"{np.mean(pred == y):.2%}", "-" if seconds is None else f"{seconds:.0f}")

    table.add_row("ANN (float)", "-", "-", f"{np.mean(ann == y):.2%}", "-")
    row("ANN with the quantized weights (fixed-point weights, float activations)", quantized)
    causes = []
    for steps in args.steps:
        t0 = time.perf_counter()
        reference = predicted(run_backend(art, x, steps, "reference", 0).output)
        row(f"float per-step reference (no delay between layers), T = {steps}", reference, time.perf_counter() - t0)
        t0 = time.perf_counter()
        snn = predicted(run_backend(art, x, net.latency() + steps, "sim", 0, readout_start="latency").output)
        row(f"compiled SNN, T = {steps}", snn, time.perf_counter() - t0)
        t0 = time.perf_counter()
        early = predicted(run_backend(from_zero, x, net.latency() + steps, "sim", 0, readout_start="latency").output)
        row(f"compiled SNN, every population from step 0 (--start zero), T = {steps}", early, time.perf_counter() - t0)
        # Each image the SNN gets otherwise than the ANN, by the first stage that already does:
        # the weights' quantization, rate coding in T steps (the float reference), or what is
        # left (fixed-point dynamics, the pipeline, host ops in integers).
        off = snn != ann
        by_weights = off & (quantized != ann)
        by_rates = off & ~by_weights & (reference != ann)
        causes.append((steps, int(off.sum()), int(by_weights.sum()), int(by_rates.sum()), int((off & ~by_weights & ~by_rates).sum())))
    Console().print(table)
    attribution = Table(title="Images on which the compiled SNN and the ANN disagree, by the first stage that already disagrees", title_justify="left")
    for col in ("T", "disagree", "quantized weights", "rate coding in T steps (float reference)", "the rest (fixed point, pipeline, host ops)"):
        attribution.add_column(col, justify="right")
    for steps, *counts in causes:
        attribution.add_row(str(steps), *map(str, counts))
    Console().print(attribution)


if __name__ == "__main__":
    main()
