"""Compile an MST with Swin-T's ImageNet shape for Loihi 2: time and peak memory per stage.

Swin-T: 224x224x3, patch 4, embed 96, depths 2-2-6-2, heads 3-6-12-24, window 7, random weights,
exported by the project's own model code. The build is `neurocompile build` (compile_network),
timed at each of its stages; then the validator re-checks every core.

    .venv/bin/python benchmarks/swin_t_compile.py [--target loihi2-halapoint]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from neurocompile.compiler import BuildOptions, compile_network
from neurocompile.errors import NeurocompileError
from neurocompile.partition.validate import placement_problems
from neurocompile.targets import load_target

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))  # the example model code
from snn_models.mst import MaskedSpikingTransformer, export_onnx  # noqa: E402


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="loihi2-halapoint", help="a system with enough chips for Swin-T (about 925 chips of 128 cores)")
    args = ap.parse_args()
    target = load_target(args.target)
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "swin_t_mst.onnx"
        torch.manual_seed(0)
        t0 = time.perf_counter()
        export_onnx(MaskedSpikingTransformer().eval(), path, 224, 3)
        export_s = time.perf_counter() - t0
        marks: list[tuple[str, float]] = []
        start = time.perf_counter()
        def step(name: str) -> None:
            marks.append((name, time.perf_counter()))
            rows.append((name, 0.0, peak_gib()))
            print(f"  {name} (peak so far {peak_gib():.2f} GiB)", flush=True)

        refused = None
        try:
            net, placement, report = compile_network(path, target, BuildOptions(), step=step)
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
    console.print(f"{report['neurons']} neurons, {report['synapses']} synapses; {p['totals']['cores']} cores on {p['totals']['chips']} chips, "
                  f"lower bound {p['lower_bound_cores']} (x{p['totals']['cores'] / p['lower_bound_cores']:.2f}); "
                  f"validator: {len(problems)} problems in {validate_s:.1f} s")
    traffic = report["spike_traffic_per_step"]
    console.print(f"spike messages per step if every neuron spiked once: {traffic['inter_core']:.4g} between cores, "
                  f"{traffic['inter_chip']:.4g} of them between chips or to the host (x{traffic['inter_chip'] / traffic['inter_core']:.2f}), "
                  f"{traffic['local']:.4g} within a core")


if __name__ == "__main__":
    main()
