"""The float reference: the converted network evaluated per time step as the MST paper's own
evaluation does it: every step the whole network is evaluated once, in topological order, with no
delay between layers and float arithmetic everywhere (unquantized weights, float IF membranes,
float host ops). Comparing it with the simulator separates the loss of conversion (reference vs
ANN) from the loss of quantization and pipelining (simulator vs reference).
"""

from __future__ import annotations

import numpy as np

from ..ir.connectivity import block_matrix, source_fanout
from ..ir.graph import Network
from ..ir.indexing import operand_views
from ..ir.interpret import activation, apply_block, block_weight, coincidences, product
from ..ir.nodes import Coincidence, HostOp, IFPopulation, InputPopulation, Product, Readout, Relay
from ..ir.result import RunResult
from ..semantics.failures import block_failure, failing_synapses, operand_failure, surviving_spikes, synapse_ids
from ..semantics.products import product_events
from ..semantics.rng import rate_probability, rate_spikes, stream_id


def _block_input(net: Network, blk, x: np.ndarray, seed: int, t: int, events: dict, fanout: np.ndarray) -> np.ndarray:
    """A block's input to its target, and (into `events`) its synaptic events this step."""
    failure = block_failure(blk)
    if failure is None or not failure.per_synapse:
        sent = surviving_spikes(failure, seed, t, x)
        events[blk.name] = events.get(blk.name, 0) + (sent != 0).astype(np.int64) @ fanout
        return apply_block(net, blk, sent)
    m = block_matrix(blk, x.shape[1], block_weight(net, blk, False))
    y, n_events = failing_synapses(m, synapse_ids(m), failure, seed, t, x)
    events[blk.name] = events.get(blk.name, 0) + n_events
    return y


def run_reference(net: Network, x: np.ndarray, steps: int, seed: int = 0, progress=None, readout_start: int = 0) -> RunResult:
    b = x.shape[0]
    pops = net.populations()
    flat = x.reshape(b, -1).astype(np.float64)
    v = {p.name: np.full((b, p.size), p.v_init_frac * p.threshold) for p in pops if isinstance(p, IFPopulation)}
    counts = {name: np.zeros(state.shape, np.int64) for name, state in v.items()}
    readout = net.readout
    acc = np.zeros((b, readout.size))
    events: dict[str, np.ndarray] = {}
    fanout = {blk.name: source_fanout(blk, net.source_of(blk).size) for blk in net.synapses()}
    sums: dict[str, np.ndarray] = {}  # running sums of telescoping products' operands
    emitted: dict[str, np.ndarray] = {}
    for t in range(steps):
        values: dict[str, np.ndarray] = {}
        for pop in pops:
            if isinstance(pop, InputPopulation):
                values[pop.name] = flat if pop.graded else rate_spikes(seed, stream_id(pop.name), t, rate_probability(flat)).astype(np.float64)
                continue
            if isinstance(pop, Product):
                a, b_ = net.operands(pop.name)
                ops = {a.name: surviving_spikes(operand_failure(pop, "a"), seed, t, values[a.name]),
                       b_.name: surviving_spikes(operand_failure(pop, "b"), seed, t, values[b_.name])}
                events[pop.name] = events.get(pop.name, 0) + product_events(*operand_views(pop, ops[a.name], ops[b_.name]))
                if pop.form == "telescoping":
                    for name in ops:
                        key = f"{pop.name}/{name}"
                        ops[name] = sums[key] = sums.get(key, 0) + ops[name]
                    total = product(net, pop, ops).reshape(b, -1) / (t + 1)
                    values[pop.name] = total - emitted.get(pop.name, 0)
                    emitted[pop.name] = total
                else:
                    values[pop.name] = product(net, pop, ops).reshape(b, -1)
                continue
            inputs = [_block_input(net, blk, values[net.source_of(blk).name], seed, t, events, fanout[blk.name]) for blk in net.incoming(pop.name)]
            if isinstance(pop, Coincidence):
                values[pop.name] = coincidences(inputs)
                continue
            total = pop.bias[None] + sum(inputs, np.zeros((b, pop.size)))
            if isinstance(pop, IFPopulation):
                v[pop.name] += total
                spikes = v[pop.name] >= pop.threshold
                v[pop.name] -= spikes * pop.threshold
                counts[pop.name] += spikes
                values[pop.name] = spikes * pop.threshold
            elif isinstance(pop, (HostOp, Relay)):
                values[pop.name] = activation(pop, total)
            elif isinstance(pop, Readout) and t >= readout_start:
                acc += total
        if progress is not None:
            progress(t + 1)
    output = acc.reshape((b,) + tuple(net.meta["output_shape"]))
    synops = sum(events.values(), np.zeros(b, np.int64))
    return RunResult("reference", steps, output, acc, counts, synops, 0, v, None, events)
