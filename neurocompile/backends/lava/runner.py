"""Emit a compiled network as Lava processes and run it, one sample after another.

Populations become the processes of processes.py; every synapse block becomes one of Lava's own
Dense or Sparse connection processes holding the block's integer matrix, so Lava's arithmetic,
not ours, computes the synaptic currents. Lava's fixed-point connections keep 8 weight bits in
the sign-magnitude form of Loihi (the lowest bit of a mixed-sign weight is dropped), so a
mantissa m is sent as 2m with the block's shift lowered by one: (sum 2m*s) >> 1 = sum m*s.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Callable

import numpy as np
import scipy.sparse as sp

from ...errors import NeurocompileError
from ...ir.connectivity import block_matrix, source_fanout
from ...ir.graph import Network
from ...ir.nodes import HostOp, IFPopulation, InputPopulation, Product, Readout as ReadoutNode, Relay, SynapseBlock
from ...rng import failure_threshold, stream_id
from ..result import RunResult
from ..sim import encode_input

DENSE_MAX_ENTRIES = 1 << 20  # larger (or sparser) blocks go to Lava's Sparse process
DENSE_MIN_DENSITY = 0.25
LAVA_WEIGHT_MAX = 255  # Lava clips 8-bit sign-magnitude weights to [-256, 255]


def hardware_available() -> bool:
    """True when Lava's Loihi extension (lava-loihi, Intel's proprietary package) is present."""
    try:
        from lava.utils.loihi import is_installed
    except ImportError:
        return False
    return bool(is_installed())


def _failing_connection(net: Network, block: SynapseBlock, precision: str, seed: int):
    from .processes import FailingSynapses

    src, dst = net.source_of(block), net.target_of(block)
    if precision == "float":
        matrix, shift = block_matrix(block, src.size) * (src.value_per_unit() * dst.scale), 0
    else:
        matrix, shift = block_matrix(block, src.size, block.w_mant.astype(np.float64)), block.w_shift
    return FailingSynapses(matrix=sp.csr_matrix(matrix), shift=shift, threshold=failure_threshold(block.failure), seed=seed,
                           stream=stream_id(block.name), name=block.name)


def _connections(net: Network, block: SynapseBlock, precision: str, pieces: list[tuple[int, int]] | None = None) -> list:
    """Lava's Dense or Sparse process for a block, or one per target slice (`pieces`), each
    holding the rows of its slice."""
    from lava.proc.dense.process import Dense
    from lava.proc.sparse.process import Sparse

    src, dst = net.source_of(block), net.target_of(block)
    graded = 24 if src.graded else 0
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


def core_slices(placement: dict) -> dict[str, list[tuple[int, int]]]:
    """Per population placed on cores, its slices (start, stop) in neuron order."""
    out: dict[str, list[tuple[int, int]]] = {}
    for core in placement["cores"]:
        for piece in core["slices"]:
            out.setdefault(piece["population"], []).append((piece["start"], piece["stop"]))
    return {name: sorted(pieces) for name, pieces in out.items()}


def _node_slice(pop, start: int, stop: int):
    """The population's neurons start..stop as a population of their own: per-neuron arrays
    cut, everything else shared."""
    cut = {f.name: getattr(pop, f.name)[start:stop] for f in dataclasses.fields(pop)
           if isinstance(getattr(pop, f.name), np.ndarray) and getattr(pop, f.name).shape == (pop.size,)}
    return dataclasses.replace(pop, name=f"{pop.name}[{start}:{stop}]", shape=(stop - start,), **cut)


# State variables that hold one value per neuron (on their last axis); the others (step counters)
# are the same in every slice.
PER_NEURON_VARS = {"v", "count", "raster", "bias", "acc", "active"}


class _SlicedVar:
    """One variable of a population's slice processes, read and written as the population's."""

    def __init__(self, parts: list, per_neuron: bool):
        self.parts, self.per_neuron = parts, per_neuron

    @property
    def shape(self) -> tuple[int, ...]:
        first = self.parts[0].shape
        return first[:-1] + (sum(v.shape[-1] for v in self.parts),) if self.per_neuron else first

    def get(self) -> np.ndarray:
        if self.per_neuron:
            return np.concatenate([np.asarray(v.get()) for v in self.parts], axis=-1)
        return self.parts[0].get()

    def set(self, value: np.ndarray) -> None:
        if not self.per_neuron:
            for v in self.parts:
                v.set(value)
            return
        edges = np.cumsum([v.shape[-1] for v in self.parts])[:-1]
        for v, piece in zip(self.parts, np.split(np.asarray(value), edges, axis=-1)):
            v.set(piece)


class _FanOut:
    """The output ports of a population's slices, connected together wherever it goes."""

    def __init__(self, ports: list):
        self.ports = ports

    def connect(self, destination) -> None:
        for port in self.ports:
            port.connect(destination)


class _SlicedProcess:
    """A population emitted as one process per core slice, seen as one process: each slice
    sends its output placed in a population-sized vector (processes.placed), so whatever the
    population's output fed, every slice feeds; its variables concatenate theirs; running or
    stopping any slice runs or stops the whole network."""

    def __init__(self, parts: list):
        self.parts = parts
        self.s_out = _FanOut([p.s_out for p in parts]) if hasattr(parts[0], "s_out") else None

    def run(self, **kwargs):
        return self.parts[0].run(**kwargs)

    def stop(self):
        return self.parts[0].stop()

    @property
    def runtime(self):
        return self.parts[0].runtime

    def __getattr__(self, name: str):
        if name.startswith("_") or name == "parts":
            raise AttributeError(name)
        return _SlicedVar([getattr(p, name) for p in self.parts], name in PER_NEURON_VARS)


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

    def __init__(self, net: Network, steps: int, seed: int, precision: str, record: bool, payload_bits: int, membrane_bits: int, readout_start: int = 0,
                 slices: dict[str, list[tuple[int, int]]] | None = None):
        """`slices` (from `core_slices`): emit each of those populations as one process per
        core slice, and each block into it as one connection per slice, holding that slice's
        synapses, as the cores would."""
        if precision not in ("fixed", "float"):
            raise NeurocompileError(f"precision '{precision}' is not 'fixed' or 'float'")
        self.net, self.steps, self.seed, self.precision, self.record = net, steps, seed, precision, record
        self.readout_start = readout_start
        self.payload_bits = payload_bits
        self.vmax = 2 ** (membrane_bits - 1) - 1
        self.slices = {name: pieces for name, pieces in (slices or {}).items() if len(pieces) > 1}
        self.procs: dict[str, object] = {}
        for pop in net.populations():
            make = PROCESSES[type(pop)][0]
            pieces = self.slices.get(pop.name)
            self.procs[pop.name] = make(self, pop) if pieces is None else _SlicedProcess([make(self, _node_slice(pop, a, b), (a, pop.size)) for a, b in pieces])
        self.conns: dict[str, list] = {}
        self.failures: dict[tuple[str, str], object] = {}  # (source, mask) -> its SpikeFailure process
        for prod in (p for p in net.populations() if isinstance(p, Product)):
            a, b = net.operands(prod.name)
            self._spikes(a, prod.failure_a, prod.failure_group_a).connect(self.procs[prod.name].a_in)
            self._spikes(b, prod.failure_b, prod.failure_group_b).connect(self.procs[prod.name].b_in)
        for block in net.synapses():
            src, dst = net.source_of(block), net.target_of(block)
            if block.failure > 0 and block.failure_mode == "synapse":
                if dst.name in self.slices:
                    raise NeurocompileError(f"synapse block '{block.name}': per-synapse failure is emitted whole; '{dst.name}' cannot be emitted per core slice")
                conn = _failing_connection(net, block, precision, seed)
                self.procs[src.name].s_out.connect(conn.s_in)
                conns = [(conn, self.procs[dst.name])]
            else:
                spikes = self._spikes(src, block.failure, block.failure_group)
                pieces = self.slices.get(dst.name)
                targets = [self.procs[dst.name]] if pieces is None else self.procs[dst.name].parts
                conns = list(zip(_connections(net, block, precision, pieces), targets))
                for conn, _ in conns:
                    spikes.connect(conn.s_in)
            for conn, target in conns:
                conn.a_out.connect(target.a_in)
            self.conns[block.name] = [conn for conn, _ in conns]
        self.fanout = {b.name: source_fanout(b, net.source_of(b).size) for b in net.synapses()}
        self.started = False

    def _spikes(self, src, p: float, group: str):
        """The port that carries a source's spikes, through its mask's failure process if any."""
        if p <= 0:
            return self.procs[src.name].s_out
        from .processes import SpikeFailure

        key = (src.name, group)
        if key not in self.failures:
            self.failures[key] = SpikeFailure(n=src.size, threshold=failure_threshold(p), seed=self.seed, stream=stream_id(group), name=f"{src.name}|{group}")
            self.procs[src.name].s_out.connect(self.failures[key].s_in)
        return self.failures[key].s_out

    def sent(self, src, p: float, group: str, active: dict[str, np.ndarray]) -> np.ndarray:
        """Per neuron of a source: the nonzero outputs that went out on an edge in the last run
        (through the edge's mask, if any)."""
        if p > 0:
            return np.rint(self.failures[(src.name, group)].active.get()).astype(np.int64)
        return active[src.name]

    def traffic(self, active: dict[str, np.ndarray]) -> tuple[dict[str, int], dict[str, int]]:
        """Synaptic events per block and spike messages per edge in the last run."""
        events, messages = {}, {}
        for block in self.net.synapses():
            src = self.net.source_of(block)
            if block.failure > 0 and block.failure_mode == "synapse":
                events[block.name] = int(self.conns[block.name][0].events.get()[0])
                messages[block.name] = int(active[src.name].sum())
            else:
                sent = self.sent(src, block.failure, block.failure_group, active)
                events[block.name] = int(sent @ self.fanout[block.name])
                messages[block.name] = int(sent.sum())
        for prod in (p for p in self.net.populations() if isinstance(p, Product)):
            events[prod.name] = int(self.procs[prod.name].events.get()[0])
            for side, src in zip("ab", self.net.operands(prod.name)):
                messages[f"{prod.name}:{side}"] = int(self.sent(src, getattr(prod, f"failure_{side}"), getattr(prod, f"failure_group_{side}"), active).sum())
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
                _zero(conn.a_buff, *((conn.t, conn.events) if block.failure > 0 and block.failure_mode == "synapse" else ()))
        for proc in self.failures.values():
            _zero(proc.t, proc.active)

    def run(self, run_cfg) -> None:
        from lava.magma.core.run_conditions import RunSteps

        anchor = self.procs[self.net.readout.name]
        with warnings.catch_warnings():
            # Lava's model discovery tries to import every sibling module as a top-level name
            # and warns when that fails; the models it needs are found regardless.
            warnings.filterwarnings("ignore", message="Cannot import module", category=UserWarning)
            anchor.run(condition=RunSteps(num_steps=self.steps), run_cfg=run_cfg)
        self.started = True

    def stop(self) -> None:
        """Ends Lava's OS processes; also after a failed or interrupted first run, when a
        runtime exists although no step completed."""
        anchor = self.procs[self.net.readout.name]
        if anchor.runtime is not None:
            anchor.stop()

    def process_errors(self) -> list[str]:
        """Tracebacks of the exceptions raised inside Lava's OS processes (process models),
        which lava-nc 0.10.0 logs at INFO level only."""
        runtime = self.procs[self.net.readout.name].runtime
        actors = getattr(getattr(runtime, "_messaging_infrastructure", None), "_actors", [])
        return [actor.exception[1] for actor in actors if getattr(actor, "exception", None)]

    def abort(self, grace_s: float = 5.0) -> None:
        """Ends Lava's OS processes after an error or an interrupt, without Lava's stop: the
        interrupt may have cut a message between the runtime and a process in half, and then
        that stop raises or waits forever. The shared memory of the channels is released
        (lava-nc 0.10.0's messaging infrastructure), then every process still running,
        including one started before the runtime registered it, is terminated and reaped."""
        import multiprocessing

        runtime = self.procs[self.net.readout.name].runtime
        infrastructure = getattr(runtime, "_messaging_infrastructure", None)
        _end(list(getattr(infrastructure, "_actors", [])), grace_s)
        manager = getattr(infrastructure, "_smm", None)
        if manager is not None:
            manager.shutdown()
        _end(multiprocessing.active_children(), grace_s)


def _end(processes: list, grace_s: float) -> None:
    """Terminate, then kill what is left after `grace_s`. Polls is_alive (which reaps) rather
    than join: Lava's processes override join with one that blocks."""
    import time

    alive = [p for p in processes if _running(p)]
    for p in alive:
        p.terminate()
    deadline = time.monotonic() + grace_s
    while any(_running(p) for p in alive) and time.monotonic() < deadline:
        time.sleep(0.05)
    for p in alive:
        if _running(p):
            p.kill()


def _running(process) -> bool:
    try:
        return process.is_alive()
    except ValueError:  # closed: Lava closes the processes it joined after an error
        return False


def _input(lnet: LavaNetwork, pop: InputPopulation):
    from .processes import GradedInput, RateInput

    if pop.graded:
        return GradedInput(n=pop.size, payload=np.zeros(pop.size), name=pop.name)
    return RateInput(n=pop.size, prob=np.zeros(pop.size), seed=lnet.seed, stream=stream_id(pop.name), name=pop.name)


def _if(lnet: LavaNetwork, pop: IFPopulation, out: tuple[int, int] | None = None):
    from .processes import IFNeurons

    return IFNeurons(n=pop.size, threshold=lnet.membrane(pop.threshold_int), v_init=np.full(pop.size, lnet.membrane(pop.v_init_int)),
                     bias=lnet.bias(pop), vmax=lnet.vmax, record_steps=lnet.steps if lnet.record else 0, name=pop.name, out=out)


def _host(lnet: LavaNetwork, pop: HostOp):
    from .processes import HostFunction

    return HostFunction(node=pop, bias=lnet.bias(pop), name=pop.name)


def _product(lnet: LavaNetwork, pop: Product):
    from .processes import SpikeProduct

    a, b = lnet.net.operands(pop.name)
    return SpikeProduct(node=pop, n_a=a.size, n_b=b.size, name=pop.name)


def _relay(lnet: LavaNetwork, pop: Relay, out: tuple[int, int] | None = None):
    from .processes import GradedRelay

    return GradedRelay(n=pop.size, bias=lnet.bias(pop), shift=pop.out_shift, name=pop.name, out=out)


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
    HostOp: (_host, lambda lnet, pop, proc: _zero(proc.active)),
    Product: (_product, lambda lnet, pop, proc: _zero(proc.sum_a, proc.sum_b, proc.emitted, proc.t, proc.active, proc.events)),
    ReadoutNode: (_readout, lambda lnet, pop, proc: _zero(proc.acc, proc.t)),
    Relay: (_relay, lambda lnet, pop, proc: _zero(proc.active)),
}


def run_lava(net: Network, x: np.ndarray, steps: int, payload_bits: int, membrane_bits: int, seed: int = 0, precision: str = "fixed",
             record: bool = False, hardware: bool = False, progress: Callable[[int], None] | None = None, readout_start: int = 0,
             slices: dict[str, list[tuple[int, int]]] | None = None) -> RunResult:
    """Runs the samples one after another. With `slices` (`core_slices` of a placement), every
    population placed on cores is emitted as one process per core slice."""
    from lava.magma.core.run_configs import Loihi2HwCfg, Loihi2SimCfg

    if hardware and not hardware_available():
        raise NeurocompileError("running on Loihi 2 needs Lava's Loihi extension (lava-loihi) and an attached Loihi 2 system; neither was found. Use --target loihi2-sim")
    tag = "fixed_pt" if precision == "fixed" else "floating_pt"
    run_cfg = Loihi2HwCfg(select_tag=tag) if hardware else Loihi2SimCfg(select_tag=tag)
    encoded, saturated = encode_input(net.input, x, payload_bits)
    b = x.shape[0]
    spiking = [p for p in net.populations() if isinstance(p, IFPopulation)]
    counts = {p.name: np.zeros((b, p.size), np.int64) for p in spiking}
    membranes = {p.name: np.zeros((b, p.size), np.float64 if precision == "float" else np.int64) for p in spiking}
    rasters = {p.name: np.zeros((steps, b, p.size), np.uint8) for p in spiking} if record else None
    readout = net.readout
    acc = np.zeros((b, readout.size), np.float64 if precision == "float" else np.int64)
    events: dict[str, np.ndarray] = {}
    messages: dict[str, np.ndarray] = {}
    lava_net = LavaNetwork(net, steps, seed, precision, record, payload_bits, membrane_bits, readout_start, slices)
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
        failed = lava_net.process_errors()
        lava_net.abort()
        if failed:
            raise RuntimeError("a Lava process failed:\n" + "\n".join(failed)) from err
        raise
    lava_net.stop()
    output = (acc / readout.scale).reshape((b,) + tuple(net.meta["output_shape"]))
    synops = sum(events.values(), np.zeros(b, np.int64))
    return RunResult("lava" if precision == "fixed" else "lava-float", steps, output, acc, counts, synops, saturated, membranes, rasters,
                     events, messages)
