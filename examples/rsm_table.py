"""What random spike masking saves on the digits MST: the project's version of the MST paper's
Table 3. Prints a Markdown table: spikes, synaptic events, estimated energy per inference and
power (target loihi2), the paper's spike-count power, and accuracy as mean and standard deviation
over seeds, for the unmasked model and the masked fine-tuned one at several ratios.

    .venv/bin/python examples/rsm_table.py [--all-digits] [--steps 32] [--seeds 3] [--samples N] [--rows 0 3] [--models DIR]

docs/energy.md's table is `--all-digits` with the defaults (about 15 minutes on 2 cores).

Each row is what `neurocompile build MODEL --mask-ratio R` then `neurocompile run ARTIFACT --input
graphs/digits_mst_test_x.npy --labels graphs/digits_test_y.npy --steps T --seed S` print (the
readout sums the T steps after the network's L-step pipeline fill); figures are means per inference.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track
from sklearn.datasets import load_digits

from neurocompile.cli.runs import run_backend
from neurocompile.compiler import BuildOptions, build
from neurocompile.compiler.artifact import load_artifact
from neurocompile.partition.energy import run_energy
from train_mst_digits import upscale

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"

# (label, model, --mask-ratio). The fine-tuned model carries masks on q, k and attention spikes
# (75 %) and on the MLP's first layer (0 %), so one export covers every row.
ROWS = [
    ("unmasked (digits_mst)", "digits_mst.onnx", None),
    ("fine-tuned, attention 0 %", "digits_mst_rsm.onnx", "attn=0,mlp=0"),
    ("fine-tuned, attention 50 %", "digits_mst_rsm.onnx", "attn=0.5,mlp=0"),
    ("fine-tuned, attention 75 %", "digits_mst_rsm.onnx", "attn=0.75,mlp=0"),
    ("fine-tuned, attention 75 % + MLP 50 %", "digits_mst_rsm.onnx", "attn=0.75,mlp=0.5"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=32, help="steps the readout sums, after the pipeline's latency")
    ap.add_argument("--seeds", type=int, default=3, help="seeds of each masked row (its masks' random streams)")
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--all-digits", action="store_true", help="all 1,797 scikit-learn digits (training images included), upscaled as in "
                    "training, instead of the 360 test images")
    ap.add_argument("--rows", type=int, nargs="+", default=None, help="only these rows (0 = unmasked, 3 = attention 75 %%, ...)")
    ap.add_argument("--models", type=Path, default=GRAPHS, help="folder holding digits_mst.onnx and digits_mst_rsm.onnx (default: graphs/; "
                    "e.g. the --out of a fine-tuning with other settings)")
    args = ap.parse_args()
    if args.all_digits:
        digits = load_digits()
        x = upscale((digits.images / 16.0).astype(np.float32)[:, None])[: args.samples].astype(np.float64)
        y = digits.target[: len(x)]
    else:
        x = np.load(GRAPHS / "digits_mst_test_x.npy")[: args.samples].astype(np.float64)
        y = np.load(GRAPHS / "digits_test_y.npy")[: len(x)]
    rows = [ROWS[k] for k in args.rows] if args.rows else ROWS
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for k, (label, model, ratio) in enumerate(rows):
            path, _ = build(args.models / model, Path(tmp) / f"{k}.ncx", BuildOptions(mask_ratio=ratio))
            art = load_artifact(path)
            masked = any(b.failure for b in art.net.synapses()) or any(getattr(p, "failure_a", 0) for p in art.net.populations())
            jobs += [(label, art, seed) for seed in (range(args.seeds) if masked else [0])]
        runs: dict[str, list] = {}
        for label, art, seed in track(jobs, description="running", console=Console(stderr=True)):
            steps = art.net.latency() + args.steps
            res = run_backend(art, x, steps, "sim", seed, readout_start="latency")
            accuracy = float(np.mean(res.output.reshape(len(x), -1).argmax(axis=1) == y))
            runs.setdefault(label, []).append((accuracy, run_energy(art.net, art.target, art.placement, res)))
    base = None
    print(f"Digits MST, {len(x)} {'scikit-learn digits' if args.all_digits else 'test images'}, T = {args.steps} steps after the pipeline's latency, target loihi2 "
          f"(energy constants from targets/loihi2.toml, 1 ms per step); means per inference, accuracy over seeds.\n")
    print("| model and masking | seeds | spikes | synaptic events | dynamic energy (µJ) | total energy (µJ) | power (mW) | paper's P (α W) | accuracy (%) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, _, _ in rows:
        accs = np.array([a for a, _ in runs[label]]) * 100
        mean = {key: float(np.mean([e[key] for _, e in runs[label]])) for key in ("spikes", "synaptic_events", "dynamic_energy_j", "energy_per_inference_j", "power_w", "paper_power_alpha_w")}
        base = base or mean
        rel = lambda key: f" (x{mean[key] / base[key]:.2f})"
        print(f"| {label} | {len(accs)} | {mean['spikes']:.0f} | {mean['synaptic_events']:.3g}{rel('synaptic_events')} | "
              f"{mean['dynamic_energy_j'] * 1e6:.1f}{rel('dynamic_energy_j')} | {mean['energy_per_inference_j'] * 1e6:.1f} | {mean['power_w'] * 1e3:.1f} | "
              f"{mean['paper_power_alpha_w']:.3g}{rel('paper_power_alpha_w')} | {accs.mean():.2f} ± {accs.std(ddof=1) if len(accs) > 1 else 0:.2f} |")


if __name__ == "__main__":
    main()
