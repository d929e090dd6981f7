"""The exact simulator against the float loop it replaces, side by side in one run.

The float loop is the MST paper's own evaluation of a converted network: the PyTorch model with
every QCFS activation replaced by integrate-and-fire neurons (reset by subtraction, threshold
`up`, initial membrane `up/2`), the whole network evaluated once per time step in float32, the
output summed over the steps. The exact simulator runs the same network compiled for loihi2-sim:
fixed-point weights and membranes, one step of latency per synapse hop, bit-identical to Lava.
Both get the same inputs, the same torch threads and the same device.

Default: a CIFAR-sized MST (32x32x3, patch 2, embed 32, depths 2-2, heads 2-4, window 4, random
weights), batch 64, T = 64, on the CPU.

    .venv/bin/python benchmarks/sim_vs_reference.py [--batch 64] [--steps 64] [--device cpu] [--swin-t]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from neurocompile.backends.sim import Simulator
from neurocompile.compiler import BuildOptions, build
from neurocompile.compiler.artifact import load_artifact

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))  # the example model code
from snn_models.mst import MaskedSpikingTransformer, export_onnx  # noqa: E402
from snn_models.qcfs import QCFS  # noqa: E402

CIFAR = dict(img_size=32, patch_size=2, in_chans=3, num_classes=10, embed_dim=32, depths=(2, 2), num_heads=(2, 4), window_size=4)
SWIN_T = dict(img_size=224, patch_size=4, in_chans=3, num_classes=1000)


class IFNeurons(nn.Module):
    """A QCFS activation converted: integrate, fire `up` when the membrane reaches it, subtract."""

    def __init__(self, up: float):
        super().__init__()
        self.up = up
        self.v: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.v is None:
            self.v = torch.full_like(x, self.up / 2)
        self.v = self.v + x
        spikes = (self.v >= self.up).to(x.dtype) * self.up
        self.v = self.v - spikes
        return spikes


def converted(model: nn.Module) -> nn.Module:
    """A copy of the model with every QCFS module replaced by IF neurons."""
    snn = copy.deepcopy(model)
    for name, module in list(snn.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, QCFS):
                setattr(module, child_name, IFNeurons(float(child.up)))
    return snn


def float_loop(snn: nn.Module, x: torch.Tensor, steps: int) -> torch.Tensor:
    """The paper's evaluation: the whole network once per step, the outputs summed."""
    for m in snn.modules():
        if isinstance(m, IFNeurons):
            m.v = None
    with torch.inference_mode():
        return sum(snn(x) for _ in range(steps))


def timed(fns, repeats: int):
    """Each function's result and median time, the functions run in turn in every repeat (so
    that a machine whose speed drifts slows both alike) after one untimed warm-up each."""
    times, results = [[] for _ in fns], [fn() for fn in fns]
    for _ in range(repeats):
        for fn, spent in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            spent.append(time.perf_counter() - t0)
    return results, [statistics.median(spent) for spent in times]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--swin-t", action="store_true", help="Swin-T's shape (224x224, depths 2-2-6-2) instead of the CIFAR-sized MST")
    args = ap.parse_args()

    shape = SWIN_T if args.swin_t else CIFAR
    torch.manual_seed(0)
    model = MaskedSpikingTransformer(**shape).eval()
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(model, Path(tmp) / "mst.onnx", shape["img_size"], shape["in_chans"])
        t0 = time.perf_counter()
        path, report = build(Path(tmp) / "mst.onnx", Path(tmp) / "mst.ncx", BuildOptions(target="loihi2-halapoint" if args.swin_t else "loihi2-sim"))
        build_s = time.perf_counter() - t0
        art = load_artifact(path)
    x = np.random.default_rng(0).normal(0.0, 1.0, (args.batch, shape["in_chans"], shape["img_size"], shape["img_size"])).astype(np.float32)

    device = torch.device(args.device)
    snn = converted(model).to(device)
    xt = torch.as_tensor(x, device=device)
    sim = Simulator(art.net, art.target.numerics, args.device)
    peaks = {}

    def measured(name, fn):
        def run():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            result = fn()
            peaks[name] = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
            return result
        return run

    (reference, exact), (ref_s, sim_s) = timed([measured("reference", lambda: float_loop(snn, xt, args.steps)),
                                                measured("sim", lambda: sim.run(x.astype(np.float64), args.steps))],  # batches and windows as it plans them
                                               args.repeats)
    ref_peak, sim_peak = peaks["reference"], peaks["sim"]

    image_steps = args.batch * args.steps
    corr = float(np.corrcoef(reference.cpu().numpy().ravel(), exact.output.ravel())[0, 1])
    table = Table(title=f"{'Swin-T' if args.swin_t else 'CIFAR-sized'} MST ({report['neurons']:,} IF and other neurons), batch {args.batch}, "
                  f"T = {args.steps}, {args.device} ({torch.get_num_threads()} threads); median of {args.repeats}, run in turn",
                  title_justify="left")
    for col in ("evaluation", "time", "image-steps / s", "peak GPU memory"):
        table.add_column(col, justify="left" if col == "evaluation" else "right")
    for name, seconds, peak in (("float loop (the paper's, per step)", ref_s, ref_peak), ("exact simulator (bit-identical to Lava)", sim_s, sim_peak)):
        table.add_row(name, f"{seconds:.2f} s", f"{image_steps / seconds:,.0f}", "-" if peak is None else f"{peak / 2**30:.2f} GiB")
    Console().print(table)
    print(f"build {build_s:.1f} s; latency {report['latency_steps']} steps; outputs' correlation {corr:.3f}; "
          f"the simulator ran batches x windows of {sim.plan(args.batch, args.steps, False)}")
    print(f"exact simulator time / float loop time: {sim_s / ref_s:.2f}x  (throughput ratio {ref_s / sim_s:.2f}x)")


if __name__ == "__main__":
    main()
