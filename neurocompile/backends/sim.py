"""The bit-accurate simulator: numpy, batched over inputs.

It executes the integer semantics of docs/semantics.md. Kernels run in floating point on integer
values; the quantize pass bounded every accumulator (`acc_bound`), and a sum of integers whose
partial sums stay below 2^24 (float32) or 2^53 (float64) is exact in any order, so the result is
the exact integer. Lava executes the same semantics with its own fixed-point processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..errors import NeurocompileError
from ..ir.connectivity import block_matrix, source_fanout
from ..ir.graph import Network
from ..ir.indexing import gather, operand_views
from ..ir.interpret import product
from ..ir.nodes import HostOp, IFPopulation, InputPopulation, Product, Readout, Relay, SynapseBlock
from ..ir.result import RunResult
from ..numerics import Numerics
from ..semantics.encoding import encode_input
from ..semantics.failures import Failure, block_failure, failing_synapses, operand_failure, shift, surviving_spikes, synapse_ids
from ..semantics.hostops import host_op_fixed
from ..semantics.products import coincidence as coincidence_payload, product_events, telescoping as telescoping_payload
from ..semantics.rng import rate_spikes, stream_id

EXACT_FLOAT32 = 2**24
EXACT_FLOAT64 = 2**53


@dataclass
class _Block:
    block: SynapseBlock
    source: str
    target: str
    dtype: type
    weight: np.ndarray
    fanout: np.ndarray
    failure: Failure | None = None
    matrix: sp.csr_matrix | None = None  # per-synapse failure: the explicit integer matrix
    ids: np.ndarray | None = None  # ... and its synapses' counters

    def current(self, out: np.ndarray, seed: int, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Integer current [B, n_target] from the source's integer output [B, n_source], and the
        synaptic events and spike messages per sample."""
        b = self.block
        if self.matrix is not None:
            return self._current_failing_synapses(out, seed, t)
        out = surviving_spikes(self.failure, seed, t, out)
        sent = (out != 0).astype(np.int64)
        events = sent @ self.fanout
        view = gather(out, b.in_index, b.view_shape).astype(self.dtype)
        y = b.kernel.apply(view, self.weight).reshape(out.shape[0], -1)
        if b.out_index is not None:
            y = gather(y, b.out_index, b.out_index.shape).reshape(out.shape[0], -1)
        return shift(np.rint(y).astype(np.int64), b.w_shift), events, sent.sum(axis=1)

    def _current_failing_synapses(self, out: np.ndarray, seed: int, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y, events = failing_synapses(self.matrix, self.ids, self.failure, seed, t, out)
        return shift(np.rint(y).astype(np.int64), self.block.w_shift), events, (out != 0).sum(axis=1)


def _failing_block(blk: _Block, n_source: int) -> _Block:
    """Sets up the failure of a block; per synapse, over its explicit matrix."""
    blk.failure = block_failure(blk.block)
    if blk.failure is not None and blk.failure.per_synapse:
        blk.matrix = block_matrix(blk.block, n_source, blk.block.w_mant.astype(np.float64))
        blk.ids = synapse_ids(blk.matrix)
    return blk


@dataclass
class _Run:
    """The mutable state of one run: what each population holds and emits."""

    batch: int
    steps: int
    seed: int
    record: bool
    state: dict[str, np.ndarray]
    out: dict[str, np.ndarray]  # what each population emits this step
    counts: dict[str, np.ndarray]
    rasters: dict[str, np.ndarray] | None
    readout_start: int = 0
    messages: dict[str, np.ndarray] = field(default_factory=dict)  # per edge, [B]
    events: dict[str, np.ndarray] = field(default_factory=dict)  # per block and product, [B]
    encoded: np.ndarray | None = None
    saturated: int = 0


@dataclass
class _RunningProduct:
    """A telescoping product's state: its operands' running sums and what it has emitted."""

    sum_a: np.ndarray
    sum_b: np.ndarray
    emitted: np.ndarray


def _start_input(sim, pop: InputPopulation, run: _Run, x):
    run.encoded, run.saturated = encode_input(pop, x, sim.numerics)
    run.state[pop.name] = np.array([stream_id(pop.name)])


def _start_if(sim, pop: IFPopulation, run: _Run, x):
    run.state[pop.name] = np.full((run.batch, pop.size), pop.v_init_int, np.int64)
    run.counts[pop.name] = np.zeros((run.batch, pop.size), np.int64)
    if run.record:
        run.rasters[pop.name] = np.zeros((run.steps, run.batch, pop.size), np.uint8)


def _start_zero(sim, pop, run: _Run, x):
    run.state[pop.name] = np.zeros((run.batch, pop.size), np.int64)


def _step_input(sim, pop: InputPopulation, run: _Run, t: int, current):
    if pop.graded:
        run.out[pop.name] = run.encoded
    else:
        run.out[pop.name] = rate_spikes(run.seed, int(run.state[pop.name][0]), t, run.encoded).astype(np.int64)


def _step_if(sim, pop: IFPopulation, run: _Run, t: int, current):
    vmax = sim.numerics.membrane_max
    v = np.clip(run.state[pop.name] + current, -vmax, vmax)
    spikes = v >= pop.threshold_int
    run.state[pop.name] = v - spikes * pop.threshold_int
    run.counts[pop.name] += spikes
    run.out[pop.name] = spikes.astype(np.int64)
    if run.record:
        run.rasters[pop.name][t] = spikes


def _step_readout(sim, pop: Readout, run: _Run, t: int, current):
    if t >= run.readout_start:
        run.state[pop.name] += current


def _step_host(sim, pop: HostOp, run: _Run, t: int, current):
    run.out[pop.name] = host_op_fixed(pop, np.zeros((run.batch, pop.size), np.int64) + current)


def _step_relay(sim, pop: Relay, run: _Run, t: int, current):
    run.out[pop.name] = shift(np.zeros((run.batch, pop.size), np.int64) + current, -pop.out_shift)


def _start_product(sim, pop: Product, run: _Run, x):
    if pop.form == "telescoping":
        a, b = sim.net.operands(pop.name)
        run.state[pop.name] = _RunningProduct(np.zeros((run.batch, a.size)), np.zeros((run.batch, b.size)), np.zeros((run.batch, pop.size), np.int64))


def _step_product(sim, pop: Product, run: _Run, t: int, current):
    a, b = sim.net.operands(pop.name)
    # Each operand's output this step, its spikes masked when the operand is.
    outs = {a.name: surviving_spikes(operand_failure(pop, "a"), run.seed, t, run.out[a.name]),
            b.name: surviving_spikes(operand_failure(pop, "b"), run.seed, t, run.out[b.name])}
    for side, src in (("a", a.name), ("b", b.name)):
        run.messages[f"{pop.name}:{side}"] = run.messages.get(f"{pop.name}:{side}", 0) + (outs[src] != 0).sum(axis=1)
    run.events[pop.name] = run.events.get(pop.name, 0) + product_events(*operand_views(pop, outs[a.name], outs[b.name]))
    if pop.form == "coincidence":
        y = product(sim.net, pop, outs, lambda v: v.astype(np.float64))
        run.out[pop.name] = coincidence_payload(y, pop.out_shift).reshape(run.batch, -1)
        return
    state = run.state[pop.name]
    state.sum_a += outs[a.name]
    state.sum_b += outs[b.name]
    y = product(sim.net, pop, {a.name: state.sum_a, b.name: state.sum_b}, lambda v: v)
    out = telescoping_payload(y.reshape(run.batch, -1), state.emitted, t, pop.out_shift, pop.payload_bound)
    state.emitted += out
    run.out[pop.name] = out


# How each kind of population starts and steps (phase 2 of docs/semantics.md).
KINDS = {
    InputPopulation: (_start_input, _step_input),
    IFPopulation: (_start_if, _step_if),
    Readout: (_start_zero, _step_readout),
    HostOp: (_start_zero, _step_host),
    Product: (_start_product, _step_product),
    Relay: (_start_zero, _step_relay),
}


class Simulator:
    def __init__(self, net: Network, numerics: Numerics):
        self.net = net
        self.numerics = numerics
        self.pops = net.populations()
        self.blocks = []
        for block in net.synapses():
            if block.w_mant is None:
                raise NeurocompileError(f"synapse block '{block.name}' is not quantized; build the artifact first")
            dtype = np.float32 if block.acc_bound < EXACT_FLOAT32 else np.float64
            if block.acc_bound >= EXACT_FLOAT64:
                raise NeurocompileError(f"synapse block '{block.name}': accumulator bound {block.acc_bound} exceeds exact float64 range")
            src = net.source_of(block)
            blk = _Block(block, src.name, net.target_of(block).name, dtype, block.w_mant.astype(dtype), source_fanout(block, src.size))
            self.blocks.append(_failing_block(blk, src.size) if block.failure > 0 else blk)
        self.bias = {p.name: p.bias_mant.astype(np.int64) << p.bias_exp for p in self.pops if getattr(p, "bias_mant", None) is not None}

    def run(self, x: np.ndarray, steps: int, seed: int = 0, record: bool = False, progress=None, readout_start: int = 0) -> RunResult:
        b = x.shape[0]
        run = _Run(b, steps, seed, record, {}, {}, {}, {} if record else None, readout_start)
        for pop in self.pops:
            KINDS[type(pop)][0](self, pop, run, x)
            run.out[pop.name] = np.zeros((b, pop.size), np.int64)
        buffers: dict[str, np.ndarray] = {}
        events = run.events
        events.update({blk.block.name: np.zeros(b, np.int64) for blk in self.blocks})
        for t in range(steps):
            # 1. Every block delivers what it computed last step.
            current = {name: bias + np.zeros((b, 1), np.int64) for name, bias in self.bias.items()}
            for blk in self.blocks:
                if blk.block.name in buffers:
                    current[blk.target] = current.get(blk.target, 0) + buffers[blk.block.name]
            # 2. Every population updates and emits.
            for pop in self.pops:
                KINDS[type(pop)][1](self, pop, run, t, current.get(pop.name, 0))
            # 3. Every block integrates this step's output, to deliver it next step.
            for blk in self.blocks:
                buffers[blk.block.name], n_events, n_sent = blk.current(run.out[blk.source], seed, t)
                events[blk.block.name] += n_events
                run.messages[blk.block.name] = run.messages.get(blk.block.name, 0) + n_sent
            if progress is not None:
                progress(t + 1)

        readout = self.net.readout
        acc = run.state[readout.name]
        output = (acc / readout.scale).reshape((b,) + tuple(self.net.meta["output_shape"]))
        membranes = {name: run.state[name] for name in run.counts}
        synops = sum(events.values(), np.zeros(b, np.int64))
        return RunResult("sim", steps, output, acc, run.counts, synops, run.saturated, membranes, run.rasters, events, run.messages)
