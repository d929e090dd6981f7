"""Run a compiled network under Lava, one sample after another, and collect what the simulator
reports: spike counts, membranes, readout, rasters, synaptic events and spike messages."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ...errors import NeurocompileError
from ...ir.graph import Network
from ...ir.nodes import HostOp, IFPopulation, Product, Relay
from ...ir.result import RunResult
from ...numerics import Numerics
from ...semantics.encoding import encode_input
from .emit import LavaNetwork
from .lifetime import abort, hardware_available, process_errors, stop
from .sliced import core_slices

__all__ = ["core_slices", "hardware_available", "run_lava"]


def run_lava(net: Network, x: np.ndarray, steps: int, numerics: Numerics, seed: int = 0, precision: str = "fixed",
             record: bool = False, hardware: bool = False, progress: Callable[[int], None] | None = None, readout_start: int = 0,
             slices: dict[str, list[tuple[int, int]]] | None = None) -> RunResult:
    """Runs the samples one after another. With `slices` (`core_slices` of a placement), every
    population placed on cores is emitted as one process per core slice."""
    from lava.magma.core.run_configs import Loihi2HwCfg, Loihi2SimCfg

    if hardware and not hardware_available():
        raise NeurocompileError("running on Loihi 2 needs Lava's Loihi extension (lava-loihi) and an attached Loihi 2 system; neither was found. Use --target loihi2-sim")
    tag = "fixed_pt" if precision == "fixed" else "floating_pt"
    run_cfg = Loihi2HwCfg(select_tag=tag) if hardware else Loihi2SimCfg(select_tag=tag)
    encoded, saturated = encode_input(net.input, x, numerics)
    b = x.shape[0]
    spiking = [p for p in net.populations() if isinstance(p, IFPopulation)]
    counts = {p.name: np.zeros((b, p.size), np.int64) for p in spiking}
    membranes = {p.name: np.zeros((b, p.size), np.float64 if precision == "float" else np.int64) for p in spiking}
    rasters = {p.name: np.zeros((steps, b, p.size), np.uint8) for p in spiking} if record else None
    readout = net.readout
    acc = np.zeros((b, readout.size), np.float64 if precision == "float" else np.int64)
    events: dict[str, np.ndarray] = {}
    messages: dict[str, np.ndarray] = {}
    lava_net = LavaNetwork(net, steps, seed, precision, record, numerics, readout_start, slices)
    try:
        for k in range(b):
            lava_net.load(encoded[k], x[k])
            lava_net.run(run_cfg)
            active = {}
            for p in spiking:
                proc = lava_net.procs[p.name]
                counts[p.name][k] = np.rint(proc.count.get()).astype(np.int64)
                active[p.name] = counts[p.name][k]
                v = proc.v.get()
                membranes[p.name][k] = v if precision == "float" else np.rint(v).astype(np.int64)
                if record:
                    rasters[p.name][:, k] = np.rint(proc.raster.get()).astype(np.uint8)
            for p in net.populations():
                if isinstance(p, (HostOp, Product, Relay)):
                    active[p.name] = np.rint(lava_net.procs[p.name].active.get()).astype(np.int64)
            inp = net.input
            active[inp.name] = steps * (encoded[k] != 0) if inp.graded else np.rint(lava_net.procs[inp.name].count.get()).astype(np.int64)
            raw = lava_net.procs[readout.name].acc.get()
            acc[k] = raw if precision == "float" else np.rint(raw).astype(np.int64)
            for store, counted in zip((events, messages), lava_net.traffic(active)):
                for name, n in counted.items():
                    store.setdefault(name, np.zeros(b, np.int64))[k] = n
            if progress is not None:
                progress(k + 1)
    except BaseException as err:
        failed = process_errors(lava_net.anchor)
        abort(lava_net.anchor)
        if failed:
            raise RuntimeError("a Lava process failed:\n" + "\n".join(failed)) from err
        raise
    stop(lava_net.anchor)
    output = (acc / readout.scale).reshape((b,) + tuple(net.meta["output_shape"]))
    synops = sum(events.values(), np.zeros(b, np.int64))
    return RunResult("lava" if precision == "fixed" else "lava-float", steps, output, acc, counts, synops, saturated, membranes, rasters,
                     events, messages)
