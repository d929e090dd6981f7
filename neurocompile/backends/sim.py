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
from ..hostops import layernorm_fixed, softmax_fixed
from ..ir.connectivity import block_matrix, source_fanout, synapse_ids
from ..ir.graph import Network
from ..ir.indexing import gather
from ..ir.nodes import HostOp, IFPopulation, InputPopulation, Product, Readout, Relay, SynapseBlock
from ..products import coincidence as coincidence_payload, product_events, telescoping as telescoping_payload
from ..rng import failure_threshold, rate_probability, rate_spikes, stream_id, survivors
from .ann import product
from .result import RunResult

EXACT_FLOAT32 = 2**24
EXACT_FLOAT64 = 2**53


def shift(acc: np.ndarray, s: int) -> np.ndarray:
    """acc * 2^s for integer acc; a negative s is an arithmetic right shift (floor)."""
    return acc << s if s >= 0 else acc >> -s


def encode_input(pop: InputPopulation, x: np.ndarray, payload_bits: int) -> tuple[np.ndarray, int]:
    """Per-sample input [B, n] -> (graded payload or spike probability, #saturated elements)."""
    x = np.asarray(x, np.float64).reshape(x.shape[0], -1)
    if pop.graded:
        pmax = 2 ** (payload_bits - 1) - 1
        raw = np.rint(x * 2.0**pop.payload_frac_bits)
        return np.clip(raw, -pmax, pmax).astype(np.int64), int(np.count_nonzero(np.abs(raw) > pmax))
    return rate_probability(x), 0


@dataclass
class _Block:
    block: SynapseBlock
    source: str
    target: str
    dtype: type
    weight: np.ndarray
    fanout: np.ndarray
    fail_threshold: int = 0  # out of 2^16; 0: no failure
    fail_stream: int = 0
    matrix: sp.csr_matrix | None = None  # per-synapse failure: the explicit integer matrix
    ids: np.ndarray | None = None  # ... and its synapses' counters

    def current(self, out: np.ndarray, seed: int, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Integer current [B, n_target] from the source's integer output [B, n_source], and the
        synaptic events and spike messages per sample."""
        b = self.block
        if self.matrix is not None:
            return self._current_failing_synapses(out, seed, t)
        if self.fail_threshold:
            out = out * survivors(seed, self.fail_stream, t, np.arange(out.shape[1]), self.fail_threshold)
        sent = (out != 0).astype(np.int64)
        events = sent @ self.fanout
        view = gather(out, b.in_index, b.view_shape).astype(self.dtype)
        y = b.kernel.apply(view, self.weight).reshape(out.shape[0], -1)
        if b.out_index is not None:
            y = gather(y, b.out_index, b.out_index.shape).reshape(out.shape[0], -1)
        return shift(np.rint(y).astype(np.int64), b.w_shift), events, sent.sum(axis=1)

    def _current_failing_synapses(self, out: np.ndarray, seed: int, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = self.matrix
        keep = survivors(seed, self.fail_stream, t, self.ids, self.fail_threshold)
        kept = sp.csr_matrix((m.data * keep, m.indices, m.indptr), shape=m.shape)
        y = np.asarray(kept @ out.T.astype(np.float64)).T
        sent = (out != 0).astype(np.int64)
        events = sent @ np.bincount(m.indices[keep], minlength=m.shape[1])
        return shift(np.rint(y).astype(np.int64), self.block.w_shift), events, sent.sum(axis=1)


def _failing_block(blk: _Block, n_source: int) -> _Block:
    """Sets up the failure of a block: per spike, draws from its mask's stream; per synapse,
    from its own stream, over its explicit matrix."""
    b = blk.block
    blk.fail_threshold = failure_threshold(b.failure)
    if b.failure_mode == "synapse":
        blk.fail_stream = stream_id(b.name)
        blk.matrix = block_matrix(b, n_source, b.w_mant.astype(np.float64))
        blk.ids = synapse_ids(blk.matrix)
    else:
        blk.fail_stream = stream_id(b.failure_group)
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
    run.encoded, run.saturated = encode_input(pop, x, sim.payload_bits)
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
    v = np.clip(run.state[pop.name] + current, -sim.vmax, sim.vmax)
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
    rows = current.reshape(run.batch, -1, pop.shape[-1])
    if pop.op == "softmax":
        y = softmax_fixed(rows, pop.exp_k, pop.out_frac)
    else:
        y = layernorm_fixed(rows, pop.eps_int, pop.gamma_q, pop.beta_q, pop.gb_frac, pop.out_frac)
    run.out[pop.name] = y.reshape(run.batch, -1)


def _step_relay(sim, pop: Relay, run: _Run, t: int, current):
    run.out[pop.name] = shift(np.zeros((run.batch, pop.size), np.int64) + current, -pop.out_shift)


def _start_product(sim, pop: Product, run: _Run, x):
    if pop.form == "telescoping":
        a, b = sim.net.operands(pop.name)
        run.state[pop.name] = _RunningProduct(np.zeros((run.batch, a.size)), np.zeros((run.batch, b.size)), np.zeros((run.batch, pop.size), np.int64))


def _operand(run: _Run, source: str, p: float, group: str, t: int) -> np.ndarray:
    """An operand's output this step, its spikes masked when the operand is."""
    out = run.out[source]
    if p > 0:
        out = out * survivors(run.seed, stream_id(group), t, np.arange(out.shape[1]), failure_threshold(p))
    return out


def _step_product(sim, pop: Product, run: _Run, t: int, current):
    a, b = sim.net.operands(pop.name)
    outs = {a.name: _operand(run, a.name, pop.failure_a, pop.failure_group_a, t), b.name: _operand(run, b.name, pop.failure_b, pop.failure_group_b, t)}
    for side, src in (("a", a.name), ("b", b.name)):
        run.messages[f"{pop.name}:{side}"] = run.messages.get(f"{pop.name}:{side}", 0) + (outs[src] != 0).sum(axis=1)
    av = gather(outs[a.name], pop.a_index, pop.a_shape)
    bv = gather(outs[b.name], pop.b_index, pop.b_shape)
    run.events[pop.name] = run.events.get(pop.name, 0) + product_events(av, bv)
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
    def __init__(self, net: Network, payload_bits: int, membrane_bits: int):
        self.net = net
        self.payload_bits = payload_bits
        self.vmax = 2 ** (membrane_bits - 1) - 1
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
