"""An MST with Swin-T's ImageNet shape through the simulator: time and peak memory per stage,
time per simulated step.

Swin-T: 224x224x3 input, patch 4, embed 96, depths 2-2-6-2, heads 3-6-12-24, window 7, random
weights, exported by the project's own model code (examples/snn_models/mst.py). One input.

    .venv/bin/python benchmarks/swin_t_sim.py [--steps 4]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from neurocompile.backends.sim import Simulator
from neurocompile.frontend import onnx_to_ir
from neurocompile.passes.quantize import quantize
from neurocompile.targets import load_target

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))  # the example model code
from snn_models.mst import MaskedSpikingTransformer, export_onnx  # noqa: E402


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()
    rows = []

    def stage(name, fn):
        t0 = time.perf_counter()
        out = fn()
        rows.append((name, time.perf_counter() - t0, peak_gib()))
        return out

    target = load_target("loihi2-sim")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "swin_t_mst.onnx"
        torch.manual_seed(0)
        model = stage("construct (28 M parameters)", lambda: MaskedSpikingTransformer().eval())
        stage("export ONNX (opset 17)", lambda: export_onnx(model, path, 224, 3))
        net = stage("frontend (and lowering)", lambda: onnx_to_ir(path))
    stage("quantize", lambda: quantize(net, target, 4.0))
    sim = stage("simulator set-up", lambda: Simulator(net, target.numerics))
    x = np.random.default_rng(0).normal(0, 1, (1, 3, 224, 224))
    stamps: list[float] = []
    t0 = time.perf_counter()
    result = sim.run(x, args.steps, progress=lambda k: stamps.append(time.perf_counter()))
    per_step = np.diff([t0] + stamps)
    rows.append((f"simulate {args.steps} steps", float(per_step.sum()), peak_gib()))

    table = Table(title="MST with Swin-T's shape (224x224, depths 2-2-6-2): one input, random weights", title_justify="left")
    for col in ("stage", "seconds", "peak memory (GiB)"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for name, seconds, mem in rows:
        table.add_row(name, f"{seconds:.1f}", f"{mem:.2f}")
    Console().print(table)
    pops = net.populations()
    print(f"{len(pops)} populations, {sum(p.size for p in pops if p.kind == 'if')} IF neurons, "
          f"{sum(p.size for p in pops if p.on_host)} host values, latency {net.latency()} steps")
    print(f"seconds per step: {' '.join(f'{s:.2f}' for s in per_step)} (median {np.median(per_step):.2f}); "
          f"spikes in {args.steps} steps: {int(result.total_spikes[0])}")


if __name__ == "__main__":
    main()
