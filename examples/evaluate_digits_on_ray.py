"""Evaluate the shipped digits MST on all 1,797 scikit-learn digits images with local Ray
workers, and write its report: per-sample results, accuracy and agreement with the ANN with their
95 % intervals, spike rates against the ANN's and a raster.

    .venv/bin/python examples/evaluate_digits_on_ray.py [--workers 2 | --ray-address ADDR] [--steps 32] [--samples N] [--out DIR]

It runs what a user would type (DIR defaults to out/digits_ray):

    neurocompile build graphs/digits_mst.onnx -o DIR/digits_mst.ncx
    neurocompile run DIR/digits_mst.ncx --input DIR/digits_x.npy --labels DIR/digits_y.npy --steps 32 \\
        --workers 2 --out DIR/result.npz --report DIR/report
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from train_mst_digits import upscale

ROOT = Path(__file__).resolve().parent.parent


def neurocompile(*args) -> None:
    cmd = [sys.executable, "-m", "neurocompile.cli", *map(str, args)]
    print("$ neurocompile " + " ".join(map(str, args)), flush=True)
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2, help="local Ray workers to start")
    ap.add_argument("--ray-address", default=None, help="run on this existing Ray cluster instead")
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--samples", type=int, default=None, help="the first N images only")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "digits_ray")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    digits = load_digits()  # ships inside scikit-learn: nothing is downloaded
    x = upscale((digits.images / 16.0).astype(np.float32)[:, None])[: args.samples]
    np.save(args.out / "digits_x.npy", x.astype(np.float32))
    np.save(args.out / "digits_y.npy", digits.target[: len(x)].astype(np.int64))
    neurocompile("build", ROOT / "graphs" / "digits_mst.onnx", "-o", args.out / "digits_mst.ncx")
    neurocompile("run", args.out / "digits_mst.ncx", "--input", args.out / "digits_x.npy", "--labels", args.out / "digits_y.npy",
                 "--steps", args.steps, *(["--ray-address", args.ray_address] if args.ray_address else ["--workers", args.workers]),
                 "--out", args.out / "result.npz", "--report", args.out / "report")


if __name__ == "__main__":
    main()
