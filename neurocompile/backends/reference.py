"""The float reference: the converted network evaluated per time step as the MST paper's own
evaluation does it: every step the whole network is evaluated once, in topological order, with no
delay between layers and float arithmetic everywhere (unquantized weights, float IF membranes,
float host ops). Comparing it with the simulator separates the loss of conversion (reference vs
ANN) from the loss of quantization and pipelining (simulator vs reference).
"""

from __future__ import annotations

import numpy as np

from ..ir.connectivity import source_fanout
from ..ir.graph import Network
from ..ir.nodes import HostOp, IFPopulation, InputPopulation, Product, Readout
from ..rng import rate_probability, rate_spikes, stream_id
from .ann import apply_block, product
from .result import RunResult


def run_reference(net: Network, x: np.ndarray, steps: int, seed: int = 0, progress=None) -> RunResult:
    b = x.shape[0]
    pops = net.populations()
    flat = x.reshape(b, -1).astype(np.float64)
    v = {p.name: np.full((b, p.size), p.v_init_frac * p.threshold) for p in pops if isinstance(p, IFPopulation)}
    counts = {name: np.zeros(state.shape, np.int64) for name, state in v.items()}
    readout = net.readout
    acc = np.zeros((b, readout.size))
    fanout = {blk.name: source_fanout(blk, net.source_of(blk).size) for blk in net.synapses()}
    synops = np.zeros(b, np.int64)
    for t in range(steps):
        values: dict[str, np.ndarray] = {}
        for pop in pops:
            if isinstance(pop, InputPopulation):
                values[pop.name] = flat if pop.graded else rate_spikes(seed, stream_id(pop.name), t, rate_probability(flat)).astype(np.float64)
                continue
            if isinstance(pop, Product):
                values[pop.name] = product(net, pop, values, lambda a: a).reshape(b, -1)
                continue
            total = pop.bias[None] + sum((apply_block(net, blk, values[net.source_of(blk).name]) for blk in net.incoming(pop.name)), np.zeros((b, pop.size)))
            if isinstance(pop, IFPopulation):
                v[pop.name] += total
                spikes = v[pop.name] >= pop.threshold
                v[pop.name] -= spikes * pop.threshold
                counts[pop.name] += spikes
                values[pop.name] = spikes * pop.threshold
            elif isinstance(pop, HostOp):
                values[pop.name] = pop.ann(total)
            elif isinstance(pop, Readout):
                acc += total
        for blk in net.synapses():
            synops += (values[net.source_of(blk).name] != 0).astype(np.int64) @ fanout[blk.name]
        if progress is not None:
            progress(t + 1)
    output = acc.reshape((b,) + tuple(net.meta["output_shape"]))
    return RunResult("reference", steps, output, acc, counts, synops, 0, v, None)
