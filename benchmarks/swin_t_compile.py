"""Compile an MST with Swin-T's ImageNet shape for Loihi 2: time and peak memory per stage.

Swin-T: 224x224x3, patch 4, embed 96, depths 2-2-6-2, heads 3-6-12-24, window 7, random weights,
exported by the project's own model code. The build is `neurocompile build` (compile_network),
timed at each of its stages; then the validator re-checks every core, and the spike traffic
between chips is counted with host ops on the chips' processors (the target's choice) and, on
the same cores, on the system's host, side by side with the figures printed before.

    .venv/bin/python benchmarks/swin_t_compile.py [--target loihi2-halapoint] [--calibrate N] [--relay-sums N] [--stripe-cuts none|small|all]
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from neurocompile.compiler import BuildOptions, compile_network
from neurocompile.errors import NeurocompileError
from neurocompile.ir.interpret import evaluate
from neurocompile.partition.place import STRIPE_CUTS
from neurocompile.partition.traffic import message_rates, spike_traffic
from neurocompile.partition.validate import placement_problems
from neurocompile.targets import load_target

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"  # the example model code
EXPORT = """import sys, torch
from snn_models.mst import MaskedSpikingTransformer, export_onnx
torch.manual_seed(0)
export_onnx(MaskedSpikingTransformer().eval(), sys.argv[1], 224, 3)
"""


# What this benchmark printed (and the README quoted) before host ops ran on the chips'
# processors and before host nodes' own messages were counted.
BEFORE = {"build_s": 49.7, "peak_gib": 5.08, "cores_over_bound": 1.09, "inter_core": 1.649e8, "inter_chip": 1.185e8}
# The first count at the ANN's rates of a calibrated build, quoted when placement work began:
# the messages per step of attention's operands to the host alone (the whole count was larger).
BEFORE_ANN_ATTENTION_TO_HOST = 4.59e6


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="loihi2-halapoint", help="a system with enough chips for Swin-T (about 925 chips of 128 cores)")
    ap.add_argument("--calibrate", type=int, default=0, metavar="N",
                    help="calibrate on N random images (seeded) and weight the traffic by the ANN's rates too")
    ap.add_argument("--relay-sums", type=int, default=None, metavar="N",
                    help="build with --relay-sums N: the residual stream as relay neurons, read once by each block")
    ap.add_argument("--stripe-cuts", choices=STRIPE_CUTS, default="small", help="build with --stripe-cuts: which core slices stop where the input's stripe changes")
    args = ap.parse_args()
    target = load_target(args.target)
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "swin_t_mst.onnx"
        calib = np.random.default_rng(0).uniform(-1, 1, (args.calibrate, 3, 224, 224)).astype(np.float32) if args.calibrate else None
        calib_path = Path(tmp) / "calib.npy"
        if calib is not None:
            np.save(calib_path, calib)
        t0 = time.perf_counter()
        # In a process of its own: torch and the export peak at about 1.4 GiB, and this
        # process's peak (ru_maxrss) is to be the build's.
        subprocess.run([sys.executable, "-c", EXPORT, str(path)], check=True, cwd=EXAMPLES)
        export_s = time.perf_counter() - t0
        marks: list[tuple[str, float]] = []
        start = time.perf_counter()
        def step(name: str) -> None:
            marks.append((name, time.perf_counter()))
            rows.append((name, 0.0, peak_gib()))
            print(f"  {name} (peak so far {peak_gib():.2f} GiB)", flush=True)

        refused = None
        try:
            options = BuildOptions(calibrate=str(calib_path) if calib is not None else None, relay_sums=args.relay_sums, stripe_cuts=args.stripe_cuts)
            net, placement, report = compile_network(path, target, options, step=step)
        except NeurocompileError as err:  # the model does not fit: report how far the build got
            refused = str(err)
        end = time.perf_counter()
    stamps = [t for _, t in marks] + [end]
    rows = [(name, stamps[k + 1] - stamps[k], mem) for k, ((name, _), (_, _, mem)) in enumerate(zip(marks, rows))]
    table = Table(title=f"Swin-T-shaped MST (224x224, depths 2-2-6-2), build for {args.target}", title_justify="left")
    for col in ("stage", "seconds", "peak memory at start (GiB)"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for name, seconds, mem in rows:
        table.add_row(name, f"{seconds:.1f}", f"{mem:.2f}")
    table.add_row("build total", f"{end - start:.1f}", f"{peak_gib():.2f}", style="bold")
    console = Console()
    console.print(f"ONNX export (not part of the build): {export_s:.1f} s")
    console.print(table)
    if refused:
        console.print(f"build refused at '{rows[-1][0]}': {refused}")
        return
    t1 = time.perf_counter()
    problems = placement_problems(net, target, placement)
    validate_s = time.perf_counter() - t1
    p = placement
    console.print(f"latency {net.latency()} steps; {report['neurons']} neurons, {report['synapses']} synapses; {p['totals']['cores']} cores on {p['totals']['chips']} chips, "
                  f"lower bound {p['lower_bound_cores']} (x{p['totals']['cores'] / p['lower_bound_cores']:.4f}); "
                  f"validator: {len(problems)} problems in {validate_s:.1f} s")
    # The same cores with host ops on the system's host, as before they ran on the chips'
    # processors: every message into or out of a host node leaves the chips.
    host_target = dataclasses.replace(target, spec={**target.spec, "system": {**target.spec["system"], "host_ops": "host"}})
    weights = [("every neuron spiking once", None)]
    if calib is not None:
        weights.append(("ANN rates", message_rates(net, evaluate(net, calib)["post"])))
    proc = p["processors"]
    console.print(f"host ops on the chips' processors: {proc.get('ops_per_step', 0):.4g} operations per step, busiest chip "
                  f"{proc.get('busiest_chip_ops', 0):.4g}, {proc.get('step_time_s', 0) * 1e6:.0f} us per step (estimate)")
    movable = [e for e in net.meta["products"] if e["coincidence_form"]]
    console.print(f"spike products: {sum(e['runs_on'] == 'cores' for e in net.meta['products'])} of {len(net.meta['products'])} on cores; "
                  f"{len(movable)} have a form on cores, which would take {sum(e['terms'] for e in movable):.4g} coincidence neurons on at "
                  f"least {sum(e['cores_at_least'] for e in movable)} more cores for their {sum(e['ops_per_step'] for e in movable):.4g} "
                  "operations per step (`build --products-on cores`)")
    figures = Table(title="Spike messages per step (this run, and before: host ops on the host)", title_justify="left")
    for col in ("weighted by", "host ops on", "between cores", "between chips or to/from the host", "share"):
        figures.add_column(col, justify="left" if col in ("weighted by", "host ops on") else "right")
    figures.add_row("every neuron spiking once", "host (before)", f"{BEFORE['inter_core']:.4g}", f"{BEFORE['inter_chip']:.4g}", f"{BEFORE['inter_chip'] / BEFORE['inter_core']:.2f}")
    for label, rates in weights:
        for where, t in (("host", host_target), ("chip processors", target)):
            traffic = spike_traffic(net, t, placement, rates)
            before = BEFORE["inter_chip"] if rates is None else BEFORE_ANN_ATTENTION_TO_HOST
            ratio = f" (x{traffic['inter_chip'] / before:.2f} of {before:.4g})"
            figures.add_row(label, where, f"{traffic['inter_core']:.4g}", f"{traffic['inter_chip']:.4g}{ratio}", f"{traffic['inter_chip'] / traffic['inter_core']:.2f}")
    console.print(figures)
    console.print(f"before, at the ANN's rates: {BEFORE_ANN_ATTENTION_TO_HOST:.4g} messages per step from attention's operands to the host "
                  "alone (the ratios above at the ANN's rates are to that)")
    console.print(f"before: build {BEFORE['build_s']} s at {BEFORE['peak_gib']} GiB, x{BEFORE['cores_over_bound']} the lower bound; "
                  f"this run: {end - start:.1f} s at {peak_gib():.2f} GiB, x{p['totals']['cores'] / p['lower_bound_cores']:.4f}")

if __name__ == "__main__":
    main()
