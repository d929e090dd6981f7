"""An MST with Swin-T's ImageNet shape through the simulator: set-up time, time per simulated step
and peak memory of a process that loads the artifact and simulates it.

Swin-T: 224x224x3 input, patch 4, embed 96, depths 2-2-6-2, heads 3-6-12-24, window 7, random
weights, exported by the project's own model code (examples/snn_models/mst.py), built for
loihi2-halapoint. The export, the build and the simulation each run in a process of their own, so
that each peak memory is its own. One input.

    .venv/bin/python benchmarks/swin_t_sim.py [--steps 8] [--device cpu] [--window W]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from neurocompile.backends.sim import Simulator
from neurocompile.compiler import BuildOptions, build
from neurocompile.compiler.artifact import load_artifact

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))  # the example model code
from snn_models.mst import MaskedSpikingTransformer, export_onnx  # noqa: E402


def peak_gib() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited through exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def simulate(artifact: str, steps: int, device: str, window: int | None) -> dict:
    """The child process: load, set up, simulate; every figure of this process alone."""
    t0 = time.perf_counter()
    art = load_artifact(artifact)
    loaded, peak_loaded = time.perf_counter(), peak_gib()
    sim = Simulator(art.net, art.target.numerics, device)
    ready, peak_ready = time.perf_counter(), peak_gib()
    window = window or sim.plan(1, steps, record=False)[1]
    x = np.random.default_rng(0).normal(0, 1, (1, 3, 224, 224))
    result = sim.run(x, steps, batch_size=1, window=window)
    done = time.perf_counter()
    pops = art.net.populations()
    return {"load_s": loaded - t0, "setup_s": ready - loaded, "simulate_s": done - ready, "steps": steps, "window": window,
            "peak_loaded_gib": peak_loaded, "peak_ready_gib": peak_ready, "peak_gib": peak_gib(), "populations": len(pops), "if_neurons": sum(p.size for p in pops if p.kind == "if"),
            "latency": art.net.latency(), "spikes": int(result.total_spikes[0]), "threads": torch.get_num_threads()}


def export(directory: str) -> list:
    """The child process that exports the model to ONNX."""
    t0 = time.perf_counter()
    torch.manual_seed(0)
    model = MaskedSpikingTransformer().eval()
    export_onnx(model, Path(directory) / "swin_t_mst.onnx", 224, 3)
    return [("construct and export ONNX (opset 17)", time.perf_counter() - t0, peak_gib())]


def build_artifact(directory: str) -> list:
    """The child process that builds the artifact, as `neurocompile build` does: its peak memory
    is the build's own (torch and the exported model live in another process)."""
    t0 = time.perf_counter()
    build(Path(directory) / "swin_t_mst.onnx", Path(directory) / "swin_t_mst.ncx", BuildOptions(target="loihi2-halapoint"))
    return [("neurocompile build (loihi2-halapoint)", time.perf_counter() - t0, peak_gib())]


def child(*args: str) -> object:
    proc = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--window", type=int, help="steps per window (default: what fits half the free memory)")
    ap.add_argument("--export", metavar="DIR", help=argparse.SUPPRESS)  # the child processes
    ap.add_argument("--build", metavar="DIR", help=argparse.SUPPRESS)
    ap.add_argument("--simulate", metavar="ARTIFACT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.export:
        print(json.dumps(export(args.export)))
        return
    if args.build:
        print(json.dumps(build_artifact(args.build)))
        return
    if args.simulate:
        print(json.dumps(simulate(args.simulate, args.steps, args.device, args.window)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        rows = child("--export", tmp) + child("--build", tmp)
        fig = child("--simulate", str(Path(tmp) / "swin_t_mst.ncx"), "--steps", str(args.steps), "--device", args.device,
                    *(["--window", str(args.window)] if args.window else []))
    table = Table(title="MST with Swin-T's shape (224x224, depths 2-2-6-2): one input, random weights", title_justify="left")
    for col in ("stage", "seconds", "peak memory (GiB)"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for name, seconds, mem in rows:
        table.add_row(name, f"{seconds:.1f}", f"{mem:.2f}")
    table.add_row("simulating process: load the artifact", f"{fig['load_s']:.1f}", f"{fig['peak_loaded_gib']:.2f}")
    table.add_row("simulating process: simulator set-up", f"{fig['setup_s']:.1f}", f"{fig['peak_ready_gib']:.2f}")
    table.add_row(f"simulating process: {fig['steps']} steps ({args.device}, {fig['threads']} threads)", f"{fig['simulate_s']:.1f}", f"{fig['peak_gib']:.2f}")
    Console().print(table)
    print(f"{fig['populations']} populations, {fig['if_neurons']} IF neurons, latency {fig['latency']} steps; "
          f"{fig['simulate_s'] / fig['steps']:.2f} s per step (windows of {fig['window']} steps); spikes in {fig['steps']} steps: {fig['spikes']}")
    print(f"simulator set-up {fig['setup_s']:.1f} s after load; peak memory of the simulating process {fig['peak_gib']:.2f} GiB")


if __name__ == "__main__":
    main()
