"""The compiler: ONNX model -> frontend -> passes -> artifact directory."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..targets import load_target
from .artifact import sha256_file, write_artifact
from .pipeline import PASSES, BuildOptions, PassResult, Step, compile_network

__all__ = ["PASSES", "BuildOptions", "PassResult", "build", "compile_network", "default_artifact_path"]


def default_artifact_path(model: str | Path) -> Path:
    return Path(model).with_suffix(".ncx")


def build(model: str | Path, out: str | Path | None, options: BuildOptions, step: Step = lambda name: None) -> tuple[Path, dict[str, Any]]:
    """Compiles the model and writes the artifact (default: next to the model)."""
    target = load_target(options.target)
    net, placement, report = compile_network(model, target, options, step)
    opts = asdict(options)
    if options.calibrate:
        opts["calibrate"] = {"file": Path(options.calibrate).name, "sha256": sha256_file(options.calibrate)}
    step("write artifact")
    path = write_artifact(out or default_artifact_path(model), net, target, placement, report, sha256_file(model), opts)
    return path, report
