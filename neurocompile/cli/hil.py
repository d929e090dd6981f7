"""Hardware in the loop: run an artifact on Loihi 2 (Lava's Loihi2HwCfg) when a board and Lava's
Loihi extension are present, otherwise on a named stand-in, and check it against the bit-accurate
simulator per population and per step. The report says where the first disagreement starts and
records what produced it (versions, target, seed, hashes), so that a run can be reproduced.
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from typing import Any, Callable

import numpy as np

from .. import __version__
from ..compiler.artifact import Artifact, sha256_bytes
from ..errors import NeurocompileError
from ..ir.graph import Network
from ..ir.result import RunResult
from .runs import check_recording, check_steps, compare_results

Progress = Callable[[int], None]


def _lava(net: Network, art: Artifact, x: np.ndarray, steps: int, seed: int, hardware: bool, progress: Progress | None) -> RunResult:
    from ..backends.lava.run import run_lava

    return run_lava(net, x, steps, art.target.numerics, seed=seed, record=True, hardware=hardware, progress=progress)


# Where the device side runs when no Loihi 2 is attached: name -> runner.
STANDINS: dict[str, Callable[..., RunResult]] = {
    "loihi2-sim": lambda net, art, x, steps, seed, progress: _lava(net, art, x, steps, seed, False, progress),
}


def hardware_status() -> tuple[bool, str]:
    """Whether a Loihi 2 can be used, and if not, what is missing."""
    from ..backends.lava.lifetime import hardware_available

    if hardware_available():
        return True, "Loihi 2 through Lava's Loihi2HwCfg"
    return False, "no Loihi 2: Lava's Loihi extension (lava-loihi, Intel's package for INRC members) is not installed or finds no board"


def _versions() -> dict[str, str]:
    out = {"neurocompile": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("lava-nc", "numpy", "onnx"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def hil_check(art: Artifact, x: np.ndarray, steps: int, seed: int, standin: str = "loihi2-sim", device_net: Network | None = None,
              progress: Progress | None = None, sim_device: str = "cpu", batch_size: int | None = None) -> dict[str, Any]:
    """Runs the device side (Loihi 2, or the stand-in) and the simulator (on `sim_device`) on x;
    returns the report. `device_net` replaces the network on the device side only (a test uses
    it to plant a fault)."""
    from ..backends.sim import Simulator

    if standin not in STANDINS:
        raise NeurocompileError(f"unknown stand-in '{standin}'; choose one of {', '.join(STANDINS)}")
    check_steps(art, steps)
    check_recording(art, x.shape[0], steps)
    on_hardware, device_note = hardware_status()
    device_net = device_net or art.net
    if on_hardware:
        device = _lava(device_net, art, x, steps, seed, True, progress)
        device_name = "loihi2"
    else:
        device = STANDINS[standin](device_net, art, x, steps, seed, progress)
        device_name = f"{standin} (stand-in: {device_note})"
    reference = Simulator(art.net, art.target.numerics, sim_device).run(x, steps, seed=seed, record=True, batch_size=batch_size)
    cmp = compare_results(reference, device)
    return {
        "identical": cmp["identical"],
        "first_divergence": cmp["first_divergence"],
        "divergence": cmp["divergence_text"],
        "device": device_name,
        "on_hardware": on_hardware,
        "populations": cmp["populations"],
        "readout_identical": cmp["readout_identical"],
        "traffic_identical": cmp["traffic_identical"],
        "provenance": {
            "versions": _versions(),
            "target": art.target.name,
            "seed": seed,
            "steps": steps,
            "samples": int(x.shape[0]),
            "input_sha256": sha256_bytes(np.ascontiguousarray(x).tobytes()),
            "artifact": str(art.path),
            "artifact_files_sha256": art.manifest["files"],
        },
    }
