"""Emit a compiled network as Lava processes, reusable across samples.

Populations become the processes of processes.py; every synapse block becomes one of Lava's own
Dense or Sparse connection processes holding the block's integer matrix, so Lava's arithmetic,
not ours, computes the synaptic currents. Lava's fixed-point connections keep 8 weight bits in
the sign-magnitude form of Loihi (the lowest bit of a mixed-sign weight is dropped), so a
mantissa m is sent as 2m with the block's shift lowered by one: (sum 2m*s) >> 1 = sum m*s.
Every width comes from the target's numerics, checked against what the process models declare.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...errors import NeurocompileError
from ...ir.connectivity import block_matrix, source_fanout
from ...ir.graph import Network
from ...ir.nodes import Coincidence, HostOp, IFPopulation, InputPopulation, Product, Readout as ReadoutNode, Relay, SynapseBlock
from ...numerics import Numerics
from ...semantics.failures import Failure, block_failure, operand_failure
from ...semantics.rng import stream_id
from .lifetime import run_steps
from .sliced import SlicedProcess, node_slice

DENSE_MAX_ENTRIES = 1 << 20  # larger (or sparser) blocks go to Lava's Sparse process
DENSE_MIN_DENSITY = 0.25
LAVA_WEIGHT_MAX = 255  # Lava clips 8-bit sign-magnitude weights to [-256, 255]


def check_widths(numerics: Numerics) -> None:
    """The process models declare Loihi 2's widths; a target that needs more cannot run on them."""
    from .processes import DECLARED_WIDTHS

    for name, declared in DECLARED_WIDTHS.items():
        if getattr(numerics, name) > declared:
            raise NeurocompileError(f"the target's numerics.{name} = {getattr(numerics, name)} exceeds the {declared} bits the Lava process models declare")


def _failing_connection(net: Network, block: SynapseBlock, failure: Failure, precision: str, seed: int):
    from .processes import FailingSynapses

    src, dst = net.source_of(block), net.target_of(block)
    if precision == "float":
        matrix, shift = block_matrix(block, src.size) * (src.value_per_unit() * dst.scale), 0
    else:
        matrix, shift = block_matrix(block, src.size, block.w_mant.astype(np.float64)), block.w_shift
    return FailingSynapses(matrix=sp.csr_matrix(matrix), shift=shift, threshold=failure.threshold, seed=seed, stream=failure.stream, name=block.name)


def _connections(net: Network, block: SynapseBlock, precision: str, graded_bits: int, pieces: list[tuple[int, int]] | None = None) -> list:
    """Lava's Dense or Sparse process for a block, or one per target slice (`pieces`), each
    holding the rows of its slice."""
    from lava.proc.dense.process import Dense
    from lava.proc.sparse.process import Sparse

    src, dst = net.source_of(block), net.target_of(block)
    graded = graded_bits if src.graded else 0
    if precision == "float":
        weights, exp = sp.csr_matrix(block_matrix(block, src.size) * (src.value_per_unit() * dst.scale)), 0
    else:
        if 2 * block.acc_bound >= 2**31:
            raise NeurocompileError(f"synapse block '{block.name}': accumulator bound {block.acc_bound} overflows Lava's 32-bit connection arithmetic")
        weights = block_matrix(block, src.size, block.w_mant.astype(np.float64)) * 2
        if weights.nnz and np.abs(weights.data).max() > LAVA_WEIGHT_MAX:
            raise NeurocompileError(f"synapse block '{block.name}': summed weights exceed Lava's 8-bit range")
        weights.data = np.rint(weights.data)
        weights = sp.csr_matrix(weights.astype(np.int32))
        exp = block.w_shift - 1
    conns = []
    for first, stop in pieces or [(0, dst.size)]:
        rows = weights[first:stop]
        name = block.name if pieces is None else f"{block.name}[{first}:{stop}]"
        entries = rows.shape[0] * rows.shape[1]
        if entries <= DENSE_MAX_ENTRIES and rows.nnz >= DENSE_MIN_DENSITY * entries:
            conns.append(Dense(weights=rows.toarray(), weight_exp=exp, num_message_bits=graded, name=name))
        else:
            conns.append(Sparse(weights=rows, weight_exp=exp, num_message_bits=graded, name=name))
    return conns


def _assign(var, value: np.ndarray, running: bool) -> None:
    """Lava accepts Var.set only once a runtime exists; before that the value is the init."""
    if running:
        var.set(value)
    else:
        var.init = value


def _zero(*vars_) -> None:
    for var in vars_:
        var.set(np.zeros(var.shape))


class LavaNetwork:
    """The processes of one network, reusable across samples (state is reset between them)."""

    def __init__(self, net: Network, steps: int, seed: int, precision: str, record: bool, numerics: Numerics, readout_start: int = 0,
                 slices: dict[str, list[tuple[int, int]]] | None = None):
        """`slices` (from `core_slices`): emit each of those populations as one process per
        core slice, and each block into it as one connection per slice, holding that slice's
        synapses, as the cores would."""
        if precision not in ("fixed", "float"):
            raise NeurocompileError(f"precision '{precision}' is not 'fixed' or 'float'")
        self.net, self.steps, self.seed, self.precision, self.record = net, steps, seed, precision, record
        check_widths(numerics)
        self.readout_start = readout_start
        self.numerics = numerics
        self.slices = {name: pieces for name, pieces in (slices or {}).items() if len(pieces) > 1}
        self.procs: dict[str, object] = {}
        for pop in net.populations():
            make = PROCESSES[type(pop)][0]
            pieces = self.slices.get(pop.name)
            self.procs[pop.name] = make(self, pop) if pieces is None else SlicedProcess([make(self, node_slice(pop, a, b), (a, pop.size)) for a, b in pieces])
        self.conns: dict[str, list] = {}
        self.failures: dict[tuple[str, Failure], object] = {}  # (source, its mask's failure) -> its SpikeFailure process
        for prod in (p for p in net.populations() if isinstance(p, Product)):
            a, b = net.operands(prod.name)
            self._spikes(a, operand_failure(prod, "a")).connect(self.procs[prod.name].a_in)
            self._spikes(b, operand_failure(prod, "b")).connect(self.procs[prod.name].b_in)
        for block in net.synapses():
            src, dst = net.source_of(block), net.target_of(block)
            failure = block_failure(block)
            if failure is not None and failure.per_synapse:
                if dst.name in self.slices:
                    raise NeurocompileError(f"synapse block '{block.name}': per-synapse failure is emitted whole; '{dst.name}' cannot be emitted per core slice")
                conn = _failing_connection(net, block, failure, precision, seed)
                self.procs[src.name].s_out.connect(conn.s_in)
                conns = [(conn, self.procs[dst.name])]
            else:
                spikes = self._spikes(src, failure)
                pieces = self.slices.get(dst.name)
                targets = [self.procs[dst.name]] if pieces is None else self.procs[dst.name].parts
                conns = list(zip(_connections(net, block, precision, numerics.graded_payload_bits, pieces), targets))
                for conn, _ in conns:
                    spikes.connect(conn.s_in)
            for conn, target in conns:
                conn.a_out.connect(target.a_in)
            self.conns[block.name] = [conn for conn, _ in conns]
        self.fanout = {b.name: source_fanout(b, net.source_of(b).size) for b in net.synapses()}
        self.started = False

    @property
    def anchor(self):
        """The process that runs and stops the whole network."""
        return self.procs[self.net.readout.name]

    def run(self, run_cfg) -> None:
        run_steps(self.anchor, self.steps, run_cfg)
        self.started = True

    def _spikes(self, src, failure: Failure | None):
        """The port that carries a source's spikes, through its mask's failure process if any."""
        if failure is None:
            return self.procs[src.name].s_out
        from .processes import SpikeFailure

        key = (src.name, failure)
        if key not in self.failures:
            self.failures[key] = SpikeFailure(n=src.size, threshold=failure.threshold, seed=self.seed, stream=failure.stream, name=f"{src.name}|{failure.stream}")
            self.procs[src.name].s_out.connect(self.failures[key].s_in)
        return self.failures[key].s_out

    def sent(self, src, failure: Failure | None, active: dict[str, np.ndarray]) -> np.ndarray:
        """Per neuron of a source: the nonzero outputs that went out on an edge in the last run
        (through the edge's mask, if any)."""
        if failure is not None:
            return np.rint(self.failures[(src.name, failure)].active.get()).astype(np.int64)
        return active[src.name]

    def traffic(self, active: dict[str, np.ndarray]) -> tuple[dict[str, int], dict[str, int]]:
        """Synaptic events per block and spike messages per edge in the last run."""
        events, messages = {}, {}
        for block in self.net.synapses():
            src, failure = self.net.source_of(block), block_failure(block)
            if failure is not None and failure.per_synapse:
                events[block.name] = int(self.conns[block.name][0].events.get()[0])
                messages[block.name] = int(active[src.name].sum())
            else:
                sent = self.sent(src, failure, active)
                events[block.name] = int(sent @ self.fanout[block.name])
                messages[block.name] = int(sent.sum())
        for prod in (p for p in self.net.populations() if isinstance(p, Product)):
            events[prod.name] = int(self.procs[prod.name].events.get()[0])
            for side, src in zip("ab", self.net.operands(prod.name)):
                messages[f"{prod.name}:{side}"] = int(self.sent(src, operand_failure(prod, side), active).sum())
        return events, messages

    def membrane(self, value_int: int):
        # The float models run in the same membrane units, unrounded.
        return float(value_int) if self.precision == "float" else int(value_int)

    def bias(self, pop) -> np.ndarray:
        if self.precision == "float":
            return pop.bias * pop.scale
        return pop.bias_mant.astype(np.int64) << pop.bias_exp

    def load(self, encoded: np.ndarray, x: np.ndarray) -> None:
        """Puts one sample in and every state variable back to its initial value. The float
        models take the input unrounded (x in payload units), the fixed ones its payload."""
        inp = self.net.input
        proc = self.procs[inp.name]
        if inp.graded:
            payload = x.ravel() * 2.0**inp.payload_frac_bits if self.precision == "float" else encoded
            _assign(proc.payload, np.asarray(payload, np.float64), self.started)
        else:
            _assign(proc.prob, encoded.astype(np.float64), self.started)
        if not self.started:
            return
        for pop in self.net.populations():
            PROCESSES[type(pop)][1](self, pop, self.procs[pop.name])
        for block in self.net.synapses():
            for conn in self.conns[block.name]:
                failure = block_failure(block)
                _zero(conn.a_buff, *((conn.t, conn.events) if failure is not None and failure.per_synapse else ()))
        for proc in self.failures.values():
            _zero(proc.t, proc.active)


def _input(lnet: LavaNetwork, pop: InputPopulation):
    from .processes import GradedInput, RateInput

    if pop.graded:
        return GradedInput(n=pop.size, payload=np.zeros(pop.size), name=pop.name)
    return RateInput(n=pop.size, prob=np.zeros(pop.size), seed=lnet.seed, stream=stream_id(pop.name), name=pop.name)


def _if(lnet: LavaNetwork, pop: IFPopulation, out: tuple[int, int] | None = None):
    from .processes import IFNeurons

    return IFNeurons(n=pop.size, threshold=lnet.membrane(pop.threshold_int), v_init=np.full(pop.size, lnet.membrane(pop.v_init_int)),
                     bias=lnet.bias(pop), vmax=lnet.numerics.membrane_max, record_steps=lnet.steps if lnet.record else 0, start=pop.start,
                     name=pop.name, out=out)


def _host(lnet: LavaNetwork, pop: HostOp):
    from .processes import HostFunction

    return HostFunction(node=pop, bias=lnet.bias(pop), name=pop.name)


def _product(lnet: LavaNetwork, pop: Product):
    from .processes import SpikeProduct

    a, b = lnet.net.operands(pop.name)
    return SpikeProduct(node=pop, n_a=a.size, n_b=b.size, name=pop.name)


def _relay(lnet: LavaNetwork, pop: Relay, out: tuple[int, int] | None = None):
    from .processes import GradedRelay

    return GradedRelay(n=pop.size, bias=lnet.bias(pop), shift=pop.out_shift, start=pop.start, name=pop.name, out=out)


def _readout(lnet: LavaNetwork, pop: ReadoutNode, out: None = None):
    from .processes import Readout

    return Readout(n=pop.size, bias=lnet.bias(pop), start=lnet.readout_start, name=pop.name)


def _reset_input(lnet, pop, proc):
    if not pop.graded:
        _zero(proc.count, proc.t)


def _reset_if(lnet, pop, proc):
    proc.v.set(np.full(pop.size, float(pop.v_init_int)))
    _zero(proc.count, proc.t, proc.raster)


# Per population type: how to create its process, and how to reset it between samples.
PROCESSES = {
    InputPopulation: (_input, _reset_input),
    IFPopulation: (_if, _reset_if),
    HostOp: (_host, lambda lnet, pop, proc: _zero(proc.active, proc.t)),
    Product: (_product, lambda lnet, pop, proc: _zero(proc.sum_a, proc.sum_b, proc.emitted, proc.t, proc.active, proc.events)),
    ReadoutNode: (_readout, lambda lnet, pop, proc: _zero(proc.acc, proc.t)),
    Relay: (_relay, lambda lnet, pop, proc: _zero(proc.active, proc.t)),
    Coincidence: (_relay, lambda lnet, pop, proc: _zero(proc.active, proc.t)),  # graded relay neurons with shift 1
}
