"""Time the bit-accurate simulator against Lava on the same artifact and inputs.

Both backends run the same samples for the same steps in one process, side by side; the spikes
are checked to be identical before any time is reported. Lava's first sample includes compiling
the process graph and starting its OS processes, so it is reported apart from the steady state.

    .venv/bin/python benchmarks/sim_vs_lava.py [--model digits_cnn] [--samples 5] [--steps 32]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from neurocompile.backends.lava.run import run_lava
from neurocompile.backends.sim import Simulator
from neurocompile.compiler import BuildOptions, build
from neurocompile.compiler.artifact import load_artifact

ROOT = Path(__file__).resolve().parent.parent


def lava_times(net, x, steps, num):
    stamps = [time.perf_counter()]
    result = run_lava(net, x, steps, num, progress=lambda k: stamps.append(time.perf_counter()))
    return result, np.diff(stamps)


def sim_times(sim, x, steps, repeats=5):
    per_sample = []
    for k in range(x.shape[0]):
        best = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            result = sim.run(x[k:k + 1], steps)
            best.append(time.perf_counter() - t0)
        per_sample.append(statistics.median(best))
    return result, np.array(per_sample)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="digits_cnn")
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--steps", type=int, default=32)
    args = ap.parse_args()

    x_all = np.load(ROOT / "graphs" / "digits_test_x.npy")
    x = x_all[: args.samples].astype(np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        path, _ = build(ROOT / "graphs" / f"{args.model}.onnx", Path(tmp) / "m.ncx", BuildOptions())
        art = load_artifact(path)
    num = art.target.numerics
    sim = Simulator(art.net, num)

    lava_result, lava_t = lava_times(art.net, x, args.steps, num)
    check = sim.run(x, args.steps)
    for name, counts in check.counts.items():
        if not np.array_equal(counts, lava_result.counts[name]):
            raise SystemExit(f"backends disagree on population {name}: no timing reported")
    _, sim_t = sim_times(sim, x, args.steps)
    t0 = time.perf_counter()
    sim.run(x_all.astype(np.float64), args.steps)
    batched = (time.perf_counter() - t0) / x_all.shape[0]

    steady = lava_t[1:] if lava_t.size > 1 else lava_t
    lava_med, sim_med = float(np.median(steady)), float(np.median(sim_t))
    table = Table(title=f"{args.model}: {args.samples} samples x {args.steps} steps, spikes identical on both backends", title_justify="left")
    for col in ("backend", "per sample (median)", "per step", "vs simulator"):
        table.add_column(col, justify="left" if col == "backend" else "right")
    table.add_row("Lava, first sample (compile + start)", f"{lava_t[0] * 1e3:.1f} ms", f"{lava_t[0] / args.steps * 1e3:.2f} ms", f"{lava_t[0] / sim_med:.0f}x")
    table.add_row("Lava, later samples", f"{lava_med * 1e3:.1f} ms", f"{lava_med / args.steps * 1e3:.2f} ms", f"{lava_med / sim_med:.0f}x")
    table.add_row("simulator, one sample at a time", f"{sim_med * 1e3:.2f} ms", f"{sim_med / args.steps * 1e3:.3f} ms", "1x")
    table.add_row(f"simulator, batch of {x_all.shape[0]}", f"{batched * 1e3:.3f} ms", f"{batched / args.steps * 1e3:.4f} ms", f"{batched / sim_med:.2f}x")
    Console().print(table)
    print(f"ratio Lava / simulator per sample (median, steady state): {lava_med / sim_med:.0f}x unbatched, {lava_med / batched:.0f}x batched")


if __name__ == "__main__":
    main()
