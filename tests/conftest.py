"""Shared fixtures: the shipped example models, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Test processes share the machine's cores (pytest -n): a thread pool each would fight over
    # them. Set before numpy, torch and numba read it; the commands tests start inherit it.
    os.environ["NUMBA_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np
import pytest

from neurocompile.compiler import BuildOptions, build

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"


def target_with(directory: Path, **limits):
    """loihi2 with some of its `key = value` lines changed (per-core limits, `chips`), written
    to `directory` and loaded: a target on which one limit binds."""
    from neurocompile.targets import load_target

    lines = [f"{line.split('=')[0].strip()} = {limits[line.split('=')[0].strip()]}" if line.split("=")[0].strip() in limits else line
             for line in (ROOT / "targets" / "loihi2.toml").read_text().splitlines()]
    path = Path(directory) / ("_".join(f"{k}{v}" for k, v in limits.items()) + ".toml")
    path.write_text("\n".join(lines) + "\n")
    return load_target(str(path))


@pytest.fixture(autouse=True)
def _lava_only_under_its_marker(request, monkeypatch):
    """A test that starts Lava in this process must carry the `lava` marker, so that
    `-m "not lava"` leaves every Lava run out."""
    if request.node.get_closest_marker("lava") is None:
        from neurocompile.backends.lava.emit import LavaNetwork

        def refuse(self, run_cfg):
            raise AssertionError(f"{request.node.nodeid} starts Lava: mark it with @pytest.mark.lava")

        monkeypatch.setattr(LavaNetwork, "run", refuse)


@pytest.fixture(scope="session")
def digits():
    """Test images [360, 1, 8, 8] in [0, 1] and labels [360]."""
    return np.load(GRAPHS / "digits_test_x.npy"), np.load(GRAPHS / "digits_test_y.npy")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    """Builds (model, options) once per session; returns the loaded artifact."""
    from neurocompile.compiler.artifact import load_artifact

    cache = {}
    root = tmp_path_factory.mktemp("artifacts")

    def get(model: str, **options):
        key = (model, tuple(sorted(options.items())))
        if key not in cache:
            path, _ = build(GRAPHS / f"{model}.onnx", root / f"{model}-{len(cache)}.ncx", BuildOptions(**options))
            cache[key] = load_artifact(path)
        return cache[key]

    return get


@pytest.fixture(scope="module")
def attention_model(tmp_path_factory):
    """A small attention layer (onnx_builders.attention_onnx): products Q K^T and A V, softmax and
    layer norm."""
    from onnx_builders import attention_onnx

    return attention_onnx(tmp_path_factory.mktemp("attention") / "attention.onnx")
