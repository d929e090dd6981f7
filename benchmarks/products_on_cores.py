"""Spike products on processors (where `--products-on auto`, the default, puts the digits MST's)
against coincidence neurons on the cores (`build --products-on cores`), side by side on the digits MST: neurons, cores, latency, the
processors' work, spike messages per step at the ANN's rates, and accuracy on the 360 test images.

    .venv/bin/python benchmarks/products_on_cores.py [--target loihi2] [--steps 16 32] [--samples N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from neurocompile.cli.runs import run_backend
from neurocompile.compiler import BuildOptions, build
from neurocompile.compiler.artifact import load_artifact

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"
SITES = ("processors", "cores")


def predictions(art, x, steps: int) -> tuple[np.ndarray, float]:
    """Classes after `steps` steps past the fill, and seconds per sample."""
    t0 = time.perf_counter()
    out = run_backend(art, x, steps + art.net.latency(), "sim", 0, readout_start="latency").output
    return out.reshape(len(x), -1).argmax(axis=1), (time.perf_counter() - t0) / len(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="loihi2")
    ap.add_argument("--steps", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--samples", type=int, default=None)
    args = ap.parse_args()
    x = np.load(GRAPHS / "digits_mst_test_x.npy")[: args.samples].astype(np.float64)
    y = np.load(GRAPHS / "digits_test_y.npy")[: len(x)]
    rows: dict[str, dict[str, str]] = {}
    classes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for site in SITES:
            options = BuildOptions(target=args.target, products_on=site, calibrate=str(GRAPHS / "digits_mst_test_x.npy"))
            t0 = time.perf_counter()
            path, report = build(GRAPHS / "digits_mst.onnx", Path(tmp) / f"{site}.ncx", options)
            seconds = time.perf_counter() - t0
            art = load_artifact(path)
            traffic, proc = report["spike_traffic_per_step"], art.placement.get("processors", {})
            on_cores = sum(e["runs_on"] == "cores" for e in art.net.meta["products"])
            row = rows[site] = {
                "products on cores": f"{on_cores} of {len(art.net.meta['products'])}",
                "neurons": str(report["neurons"]),
                "cores (lower bound)": f"{art.placement['totals']['cores']} ({art.placement['lower_bound_cores']})",
                "latency (steps)": str(art.net.latency()),
                "processor operations / step": f"{proc.get('ops_per_step', 0):.4g}",
                "messages between cores / step": f"{traffic['inter_core']:.4g}",
                "messages between chips or to the host / step": f"{traffic['inter_chip']:.4g}",
                "build (s)": f"{seconds:.1f}",
            }
            for steps in args.steps:
                classes[site, steps], per_sample = predictions(art, x, steps)
                row[f"accuracy, T = {steps}"] = f"{100 * np.mean(classes[site, steps] == y):.2f} %"
                row[f"simulator ms / sample, T = {steps}"] = f"{1e3 * per_sample:.2f}"
    table = Table(title=f"digits MST on {args.target}: spike products on processors or cores ({len(x)} test images, "
                        "messages weighted by the ANN's rates)", title_justify="left")
    table.add_column("")
    for site in SITES:
        table.add_column(site, justify="right")
    for key in rows[SITES[0]]:
        table.add_row(key, *(rows[site][key] for site in SITES))
    Console(width=160).print(table)
    same = {steps: int(np.sum(classes["processors", steps] == classes["cores", steps])) for steps in args.steps}
    print(json.dumps({"same_prediction": same, "images": len(x)}))


if __name__ == "__main__":
    main()
