"""Train and export the example digit networks that ship in ``graphs/``.

Trains three small models on the scikit-learn digits set (8x8 grey images, bundled with
scikit-learn, so no download): a QCFS MLP, a QCFS CNN with a residual block, and a plain
ReLU MLP. Each is exported to ONNX and checked against onnxruntime; test and calibration
images are saved next to the models.

Deterministic: re-running with the same --seed gives the same weights and the same bytes.

    .venv/bin/python examples/train_digits.py --out graphs
"""

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from snn_models.digits import DigitsCNN, DigitsMLP, DigitsReluMLP, digits_split, make_deterministic
from snn_models.qcfs import QCFS

COMMAND = ".venv/bin/python examples/train_digits.py --out graphs"
LEVELS = 8
BATCH = 64
LR = 1e-2
CALIB_IMAGES = 256
# Largest accepted |onnxruntime - torch| on the test logits. Float reordering gives ~1e-5; a
# QCFS level flipped by rounding at a Floor boundary would show up far above this.
ORT_TOLERANCE = 1e-4

# name -> (constructor, QCFS levels or None for the ReLU network)
MODELS: dict[str, tuple[Callable[[], nn.Module], int | None]] = {
    "digits_mlp": (lambda: DigitsMLP(LEVELS), LEVELS),
    "digits_cnn": (lambda: DigitsCNN(LEVELS), LEVELS),
    "digits_mlp_relu": (DigitsReluMLP, None),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("graphs"), help="output folder")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs per model")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights and batch order")
    return parser.parse_args()


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> None:
    """Adam with a cosine learning-rate decay; the batch order comes from its own generator."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        # drop_last semantics: a final batch of one image would break BatchNorm statistics.
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(order) - BATCH + 1, BATCH):
            batch = order[start : start + BATCH]
            optimizer.zero_grad()
            loss_fn(model(xt[batch]), yt[batch]).backward()
            optimizer.step()
        schedule.step()
    model.eval()


def export(model: nn.Module, path: Path) -> None:
    torch.onnx.export(
        model.eval(),
        torch.zeros(1, 1, 8, 8),
        str(path),
        opset_version=17,
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        do_constant_folding=True,
    )


def check_onnx(model: nn.Module, path: Path, x: np.ndarray) -> tuple[np.ndarray, float]:
    """Run the exported file in onnxruntime; return its logits and the max |diff| to torch."""
    onnx.checker.check_model(onnx.load(str(path)))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"image": x})[0]
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    max_diff = float(np.abs(logits - reference).max())
    if max_diff > ORT_TOLERANCE:
        raise RuntimeError(f"{path}: onnxruntime differs from torch by {max_diff:.3g}")
    return logits, max_diff


def qcfs_thresholds(model: nn.Module) -> list[float]:
    return [round(m.up.item(), 6) for m in model.modules() if isinstance(m, QCFS)]


def main() -> None:
    args = parse_args()
    make_deterministic()
    # Nothing draws from numpy's global generator today; seeded so that a future use stays
    # reproducible (the split has its own random_state).
    np.random.seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    x_train, y_train, x_test, y_test = digits_split()
    np.save(args.out / "digits_test_x.npy", x_test)
    np.save(args.out / "digits_test_y.npy", y_test)
    np.save(args.out / "digits_calib_x.npy", x_train[:CALIB_IMAGES])

    # `models` goes into the JSON; `checks` (file size, diff to torch) only describe this run
    # on this machine, so they are printed but not recorded, keeping the JSON byte-identical.
    models, checks = {}, {}
    for name, (factory, levels) in MODELS.items():
        # Seed per model, so each one's weights do not depend on which models ran before it.
        torch.manual_seed(args.seed)
        model = factory()
        train(model, x_train, y_train, args.epochs, args.seed)
        path = args.out / f"{name}.onnx"
        export(model, path)
        logits, max_diff = check_onnx(model, path, x_test)
        models[name] = {
            "file": path.name,
            "test_accuracy": round(float((logits.argmax(1) == y_test).mean()), 6),
            "levels": levels,
            "parameters": sum(p.numel() for p in model.parameters()),
            "qcfs_up": qcfs_thresholds(model),
        }
        checks[name] = (path.stat().st_size, max_diff)

    record = {
        "command": COMMAND,
        "seed": args.seed,
        "epochs": args.epochs,
        "test_x": "digits_test_x.npy",
        "test_y": "digits_test_y.npy",
        "calib_x": "digits_calib_x.npy",
        "models": models,
    }
    (args.out / "digits_models.json").write_text(json.dumps(record, sort_keys=True, indent=2) + "\n")
    print_table(models, checks, time.perf_counter() - started)


def print_table(models: dict, checks: dict, seconds: float) -> None:
    print(f"{'model':<16} {'levels':>6} {'params':>7} {'bytes':>7} {'accuracy':>9} {'ort diff':>9}")
    for name, entry in models.items():
        size, max_diff = checks[name]
        levels = "-" if entry["levels"] is None else entry["levels"]
        print(
            f"{name:<16} {levels:>6} {entry['parameters']:>7} {size:>7} "
            f"{entry['test_accuracy']:>9.4f} {max_diff:>9.2e}"
        )
    print(f"total {seconds:.1f} s")


if __name__ == "__main__":
    main()
