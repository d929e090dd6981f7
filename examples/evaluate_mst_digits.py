"""Accuracy of the digits MST on the 360 test images: the ANN, the float reference (no delay
between layers, the MST paper's evaluation) and the compiled fixed-point SNN on the simulator,
with both product forms. Prints the Markdown table of the README.

    .venv/bin/python examples/evaluate_mst_digits.py [--steps 16 32 64 128] [--samples N]

Each compiled row is what `neurocompile run ARTIFACT --input graphs/digits_mst_test_x.npy
--labels graphs/digits_test_y.npy --steps S [--readout-start R]` prints, with S and R as the row
says (L is the latency of the network in steps; the run lasts R + S steps, R = L by default).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track

from neurocompile.cli.runs import run_backend
from neurocompile.compiler import BuildOptions, build
from neurocompile.compiler.artifact import load_artifact
from neurocompile.ir.interpret import evaluate

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"


def accuracy(art, x, y, steps, backend="sim", readout_start=0) -> float:
    out = run_backend(art, x, steps, backend, seed=0, readout_start=readout_start).output
    return float(np.mean(out.reshape(len(x), -1).argmax(axis=1) == y))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--samples", type=int, default=None)
    args = ap.parse_args()
    x = np.load(GRAPHS / "digits_mst_test_x.npy")[: args.samples].astype(np.float64)
    y = np.load(GRAPHS / "digits_test_y.npy")[: len(x)]
    ann_accuracy = json.loads((GRAPHS / "digits_mst.json").read_text())["test_accuracy"]
    with tempfile.TemporaryDirectory() as tmp:
        arts = {form: load_artifact(build(GRAPHS / "digits_mst.onnx", Path(tmp) / f"{form}.ncx", BuildOptions(product_form=form))[0])
                for form in ("coincidence", "telescoping")}
        net = arts["coincidence"].net
        latency = net.latency()
        ann = float(np.mean(evaluate(net, x)["post"][net.readout.name].reshape(len(x), -1).argmax(axis=1) == y))
        rows = {
            "float reference (no delay between layers, as the paper), T steps": lambda T, a: accuracy(a, x, y, T, "reference"),
            "compiled SNN, readout sums all T steps (`--steps T --readout-start 0`)": lambda T, a: accuracy(a, x, y, T),
            "compiled SNN, readout sums steps L..T-1 (`--steps T-L`)": lambda T, a: accuracy(a, x, y, T, readout_start="latency") if T > latency else None,
            "compiled SNN, T steps after the L-step fill (`--steps T`, the default)": lambda T, a: accuracy(a, x, y, T + latency, readout_start="latency"),
        }
        table = []
        jobs = [(form, label, T) for form in arts for label in rows for T in args.steps]
        results = {}
        for form, label, T in track(jobs, description="evaluating", console=Console(stderr=True)):
            results[form, label, T] = rows[label](T, arts[form])
    fmt = lambda v: "n/a" if v is None else f"{100 * v:.2f} %"
    print(f"ANN (float, evaluate): {100 * ann:.2f} % (onnxruntime: {100 * ann_accuracy:.2f} %); latency L = {latency} steps; {len(x)} test images\n")
    print("| products | evaluation | " + " | ".join(f"T = {T}" for T in args.steps) + " |")
    print("|---|---|" + "---|" * len(args.steps))
    for form in arts:
        for label in rows:
            table.append(f"| {form} | {label} | " + " | ".join(fmt(results[form, label, T]) for T in args.steps) + " |")
    print("\n".join(table))


if __name__ == "__main__":
    main()
