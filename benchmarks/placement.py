"""Placement of the digits MST on loihi2: packed (the default) against naive sequential packing
(one slice per core). Prints cores, the lower bound, time, and the inter-core and inter-chip
spike traffic per step weighted by the ANN's rates on the test images.

    .venv/bin/python benchmarks/placement.py [--model graphs/digits_mst.onnx]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from neurocompile.compiler import BuildOptions, compile_network
from neurocompile.partition import place
from neurocompile.ir.interpret import evaluate
from neurocompile.partition.traffic import message_rates, spike_traffic
from neurocompile.partition.validate import placement_problems
from neurocompile.targets import load_target

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=GRAPHS / "digits_mst.onnx")
    ap.add_argument("--inputs", type=Path, default=GRAPHS / "digits_mst_test_x.npy")
    ap.add_argument("--target", default="loihi2")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    target = load_target(args.target)
    net, _, _ = compile_network(args.model, target, BuildOptions())
    rates = message_rates(net, evaluate(net, np.load(args.inputs)[:128])["post"])
    rows = {}
    for strategy in ("naive", "packed"):
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            placement = place(net, target, strategy)
            times.append(time.perf_counter() - t0)
        problems = placement_problems(net, target, placement)
        assert not problems, problems[:3]
        rows[strategy] = (placement, float(np.median(times)), spike_traffic(net, target, placement, rates))
    t = Table(title=f"{args.model.name} on {args.target}: placement (medians of {args.repeats} runs; traffic in spike messages per step, ANN rates)", title_justify="left")
    for col in ("strategy", "cores", "lower bound", "cores / bound", "chips", "time (s)", "inter-core traffic", "inter-chip traffic", "local"):
        t.add_column(col, justify="left" if col == "strategy" else "right")
    for strategy, (p, seconds, traffic) in rows.items():
        t.add_row(strategy, str(p["totals"]["cores"]), str(p["lower_bound_cores"]), f"{p['totals']['cores'] / p['lower_bound_cores']:.2f}",
                  str(p["totals"]["chips"]), f"{seconds:.2f}", f"{traffic['inter_core']:.0f}", f"{traffic['inter_chip']:.0f}", f"{traffic['local']:.0f}")
    console = Console()
    console.print(t)
    naive, packed = rows["naive"], rows["packed"]
    console.print(f"packed vs naive: cores x{packed[0]['totals']['cores'] / naive[0]['totals']['cores']:.2f}, "
                  f"inter-core traffic x{packed[2]['inter_core'] / naive[2]['inter_core']:.3f} "
                  f"({naive[2]['inter_core'] - packed[2]['inter_core']:.0f} fewer messages per step), every core validated")


if __name__ == "__main__":
    main()
