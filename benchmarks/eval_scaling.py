"""Evaluation throughput of the digits MST: one process (on every core, and on one thread), and
local Ray clusters of 1 and 2 workers, side by side in one run; samples per second, the ratio to
one process, and the per-sample cost of going through Ray (1 worker against one process on one
thread: both use one CPU).

    .venv/bin/python benchmarks/eval_scaling.py [--samples 360] [--steps 32] [--repeats 3]

One process uses every core (torch and numba threads); a Ray worker gets one CPU. On a 2-core
machine two workers cannot do much better than one process: the figure says how close they come.
Cluster start-up is timed apart from the evaluation.
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
from threadpoolctl import threadpool_limits

from neurocompile.compiler import BuildOptions, build
from neurocompile.compiler.artifact import load_artifact
from neurocompile.data import InputSet
from neurocompile.evaluation.distributed import RayExecutor, connect
from neurocompile.evaluation.stream import RunConfig, evaluate

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=360)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=30, help="samples per chunk (a Ray task)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import numba
    import ray
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        art = load_artifact(build(GRAPHS / "digits_mst.onnx", Path(tmp) / "mst.ncx", BuildOptions())[0])
        np.save(Path(tmp) / "x.npy", np.load(GRAPHS / "digits_mst_test_x.npy")[: args.samples])
        inputs = InputSet(Path(tmp) / "x.npy", art.net.meta["input_shape"])
        latency = art.net.latency()
        config = RunConfig("sim", latency + args.steps, 0, latency, batch_size=args.batch_size)
        results, seconds, startup = {}, {}, {}
        seconds["1 process"] = [timed(lambda: results.setdefault("1 process", evaluate(art, inputs, config))) for _ in range(args.repeats)]
        threads = torch.get_num_threads(), numba.get_num_threads()
        torch.set_num_threads(1)
        numba.set_num_threads(1)
        with threadpool_limits(limits=1):  # and BLAS, as in a Ray worker
            seconds["1 process, 1 thread"] = [timed(lambda: results.setdefault("1 process, 1 thread", evaluate(art, inputs, config)))
                                              for _ in range(args.repeats)]
        torch.set_num_threads(threads[0])
        numba.set_num_threads(threads[1])
        for workers in (1, 2):
            name = f"Ray, {workers} worker{'s' if workers > 1 else ''}"
            startup[name] = timed(lambda: connect(workers, None))
            evaluate(art, inputs, config, RayExecutor(workers))  # warm: workers import and set up once
            seconds[name] = [timed(lambda: results.setdefault(name, evaluate(art, inputs, config, RayExecutor(workers)))) for _ in range(args.repeats)]
            ray.shutdown()
    base = results["1 process"]
    same = all(all(np.array_equal(base[k], r[k]) for k in base) for r in results.values())
    n = len(inputs)
    table = Table(title=f"digits MST, {n} samples x {latency + args.steps} steps, chunks of {args.batch_size}; median of {args.repeats}", title_justify="left")
    for col in ("evaluation", "seconds", "samples/s", "vs 1 process", "cluster start (s)"):
        table.add_column(col, justify="left" if col == "evaluation" else "right")
    med = {k: statistics.median(v) for k, v in seconds.items()}
    for name, s in med.items():
        table.add_row(name, f"{s:.2f}", f"{n / s:.1f}", f"{med['1 process'] / s:.2f}x", f"{startup[name]:.1f}" if name in startup else "-")
    console = Console()
    console.print(table)
    overhead = (med["Ray, 1 worker"] - med["1 process, 1 thread"]) / n
    console.print(f"Ray's cost per sample (1 worker against 1 process on 1 thread, both one CPU): {overhead * 1e3:+.1f} ms; "
                  f"results identical across all: {same}")


if __name__ == "__main__":
    main()
