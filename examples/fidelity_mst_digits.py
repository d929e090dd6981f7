"""How closely the compiled digits MST follows its ANN: paired agreement of their predictions on
all 1,797 scikit-learn digits images (less noisy than comparing two accuracies on a small test
set), T steps after the pipeline fill, with a 95 % Wilson interval.

    .venv/bin/python examples/fidelity_mst_digits.py [--steps 16 32] [--samples N]

Each SNN column is what `neurocompile run ARTIFACT --input X --steps T` computes (the default
readout: the T steps after the fill), X being all 1,797 images upscaled as in training.
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
    net = art.net
    ann = evaluate(net, x)["post"][net.readout.name].reshape(len(x), -1).argmax(axis=1)
    table = Table(title=f"digits MST, all {len(x)} scikit-learn digits, loihi2-sim, readout after the {net.latency()}-step fill", title_justify="left")
    for col in ("evaluation", "agreement with the ANN", "95 % interval", "accuracy", "seconds"):
        table.add_column(col, justify="left" if col == "evaluation" else "right")
    table.add_row("ANN (float)", "-", "-", f"{np.mean(ann == y):.2%}", "-")
    for steps in args.steps:
        t0 = time.perf_counter()
        out = run_backend(art, x, net.latency() + steps, "sim", 0, readout_start="latency").output
        seconds = time.perf_counter() - t0
        snn = out.reshape(len(x), -1).argmax(axis=1)
        agree = proportion(snn == ann)
        table.add_row(f"compiled SNN, T = {steps}", f"{agree['value']:.2%} ({len(x) - agree['hits']} differ)", f"{agree['low']:.2%} .. {agree['high']:.2%}",
                      f"{np.mean(snn == y):.2%}", f"{seconds:.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
