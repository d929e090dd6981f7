"""Lava processes for the populations of a compiled network, with fixed_pt and floating_pt
models. Synapse blocks use Lava's own Dense and Sparse processes (see emit.py).

The fixed_pt models implement docs/semantics.md independently of the simulator: per step each
process receives what its synapses sent (the previous step's spikes, weighted), updates, sends.
What no backend owns (random numbers, host ops, products, failing synapses) they call from
neurocompile.semantics, as the simulator does.

Every fixed_pt state variable declares its bit width. Lava reads the declarations from the class,
so they are the widths of Loihi 2 (`DECLARED_WIDTHS`); emit.py refuses a target whose numerics
need more.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from . import let_lava_choose_fork

let_lava_choose_fork()  # before Lava is first imported, below

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from ...ir.indexing import operand_views
from ...ir.interpret import host_function
from ...semantics.failures import Failure, failing_synapses, shift, surviving_spikes, synapse_ids
from ...semantics.hostops import host_op_fixed
from ...semantics.products import coincidence, product_events, telescoping
from ...semantics.rng import rate_spikes

MEMBRANE_BITS = 24  # the IF membrane, its bias, threshold and saturation limit
GRADED_BITS = 24  # payloads of graded spikes
CURRENT_BITS = 32  # synaptic input per step
DECLARED_WIDTHS = {"membrane_bits": MEMBRANE_BITS, "graded_payload_bits": GRADED_BITS, "current_bits": CURRENT_BITS}


def placed(values: np.ndarray, out: tuple[int, int] | None) -> np.ndarray:
    """A core slice's output placed at its offset in a vector as long as its population:
    Lava sums what the slices send into one port, which then receives the whole population's
    output (Lava 0.10 cannot concatenate ports into a process)."""
    if out is None:
        return values
    offset, total = out
    full = np.zeros(total, values.dtype)
    full[offset : offset + values.size] = values
    return full


class IFNeurons(AbstractProcess):
    """Integrate-and-fire neurons, reset by subtraction: v += a_in + bias (saturating to
    +-vmax); spike when v >= threshold; v -= threshold on a spike. Before step `start` they
    take no input: v stays at v_init, below the threshold."""

    def __init__(self, *, n: int, threshold, v_init, bias, vmax, record_steps: int = 0, start: int = 0, name: str | None = None,
                 out: tuple[int, int] | None = None):
        super().__init__(name=name)
        self.proc_params["start"] = start
        self.a_in = InPort(shape=(n,))
        self.s_out = OutPort(shape=(out[1] if out else n,))
        self.proc_params["out"] = out
        self.v = Var(shape=(n,), init=v_init)
        self.bias = Var(shape=(n,), init=bias)  # bias_mant << bias_exp, precomputed
        self.threshold = Var(shape=(1,), init=threshold)
        self.vmax = Var(shape=(1,), init=vmax)
        self.count = Var(shape=(n,), init=0)
        # One row per recorded step: the per-step spike raster used to locate divergences.
        self.raster = Var(shape=(max(record_steps, 1), n), init=0)
        self.record_steps = Var(shape=(1,), init=record_steps)
        self.t = Var(shape=(1,), init=0)


class _IFModel(PyLoihiProcessModel):
    def run_spk(self):
        a = self.a_in.recv()
        t = int(self.t[0])
        v = self.integrate(self.v + (a + self.bias) * (t >= self.proc_params["start"]))
        spikes = v >= self.threshold[0]
        self.v[:] = v - spikes * self.threshold[0]
        self.count[:] += spikes
        if t < self.record_steps[0]:
            self.raster[t] = spikes
        self.t[0] = t + 1
        self.s_out.send(placed(spikes.astype(self.s_out_dtype), self.proc_params["out"]))


@implements(proc=IFNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyIFNeuronsFixed(_IFModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=CURRENT_BITS)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=1)
    v: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=MEMBRANE_BITS)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=MEMBRANE_BITS)
    threshold: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=MEMBRANE_BITS)
    vmax: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=MEMBRANE_BITS)
    count: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    raster: np.ndarray = LavaPyType(np.ndarray, np.int8, precision=1)
    record_steps: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    t: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    s_out_dtype = np.int32

    def integrate(self, v):
        # The membrane is 24-bit signed and saturates instead of wrapping.
        return np.clip(v.astype(np.int64), -self.vmax[0], self.vmax[0])


@implements(proc=IFNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyIFNeuronsFloat(_IFModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    bias: np.ndarray = LavaPyType(np.ndarray, float)
    threshold: np.ndarray = LavaPyType(np.ndarray, float)
    vmax: np.ndarray = LavaPyType(np.ndarray, float)
    count: np.ndarray = LavaPyType(np.ndarray, np.int64)
    raster: np.ndarray = LavaPyType(np.ndarray, np.int8)
    record_steps: np.ndarray = LavaPyType(np.ndarray, np.int64)
    t: np.ndarray = LavaPyType(np.ndarray, np.int64)
    s_out_dtype = float

    def integrate(self, v):
        return v


class Readout(AbstractProcess):
    """Accumulates its input plus bias every step from step `start` on; never spikes."""

    def __init__(self, *, n: int, bias, start: int = 0, name: str | None = None):
        super().__init__(name=name)
        self.a_in = InPort(shape=(n,))
        self.bias = Var(shape=(n,), init=bias)
        self.acc = Var(shape=(n,), init=0)
        self.t = Var(shape=(1,), init=0)
        self.proc_params["start"] = start


@implements(proc=Readout, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyReadoutFixed(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=CURRENT_BITS)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=MEMBRANE_BITS)
    acc: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)
    t: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)

    def run_spk(self):
        a = self.a_in.recv()
        if self.t[0] >= self.proc_params["start"]:
            self.acc[:] += a.astype(np.int64) + self.bias
        self.t[:] += 1


@implements(proc=Readout, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyReadoutFloat(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    bias: np.ndarray = LavaPyType(np.ndarray, float)
    acc: np.ndarray = LavaPyType(np.ndarray, float)
    t: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def run_spk(self):
        a = self.a_in.recv()
        if self.t[0] >= self.proc_params["start"]:
            self.acc[:] += a + self.bias
        self.t[:] += 1


def _started(model) -> int:
    """1 from the process's start step on, 0 before it (what it emits is multiplied by it);
    counts the step."""
    t = int(model.t[0])
    model.t[0] = t + 1
    return int(t >= model.proc_params["start"])


class GradedRelay(AbstractProcess):
    """Relay neurons: each step sends their input plus bias, shifted right by `shift` (floor),
    as a graded payload; no state but the count of steps each one sent something."""

    def __init__(self, *, n: int, bias, shift: int, start: int = 0, name: str | None = None, out: tuple[int, int] | None = None):
        super().__init__(name=name)
        self.a_in = InPort(shape=(n,))
        self.s_out = OutPort(shape=(out[1] if out else n,))
        self.proc_params["out"] = out
        self.bias = Var(shape=(n,), init=bias)
        self.active = Var(shape=(n,), init=0)  # steps with a nonzero output: synaptic events downstream
        self.t = Var(shape=(1,), init=0)
        self.proc_params["shift"] = shift
        self.proc_params["start"] = start


@implements(proc=GradedRelay, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyGradedRelayFixed(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=CURRENT_BITS)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=GRADED_BITS)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    active: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    t: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)

    def run_spk(self):
        y = (self.a_in.recv().astype(np.int64) + self.bias) >> self.proc_params["shift"]
        y *= _started(self)
        self.active[:] += y != 0
        self.s_out.send(placed(y.astype(np.int32), self.proc_params["out"]))


@implements(proc=GradedRelay, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyGradedRelayFloat(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    bias: np.ndarray = LavaPyType(np.ndarray, float)
    active: np.ndarray = LavaPyType(np.ndarray, np.int64)
    t: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def run_spk(self):
        y = (self.a_in.recv() + self.bias) / 2.0 ** self.proc_params["shift"] * _started(self)  # payload units, unrounded
        self.active[:] += y != 0
        self.s_out.send(placed(y, self.proc_params["out"]))

class GradedInput(AbstractProcess):
    """Sends the same graded payload every step (direct current encoding)."""

    def __init__(self, *, n: int, payload, name: str | None = None):
        super().__init__(name=name)
        self.s_out = OutPort(shape=(n,))
        self.payload = Var(shape=(n,), init=payload)


@implements(proc=GradedInput, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyGradedInputFixed(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=GRADED_BITS)
    payload: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=GRADED_BITS)

    def run_spk(self):
        self.s_out.send(self.payload)


@implements(proc=GradedInput, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyGradedInputFloat(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    payload: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        self.s_out.send(self.payload)


class RateInput(AbstractProcess):
    """Bernoulli spikes with a per-element probability (out of 2^16), drawn from the
    counter-based hash of (seed, stream, step, element)."""

    def __init__(self, *, n: int, prob, seed: int, stream: int, name: str | None = None):
        super().__init__(name=name)
        self.s_out = OutPort(shape=(n,))
        self.prob = Var(shape=(n,), init=prob)
        self.seed = Var(shape=(1,), init=seed)
        self.stream = Var(shape=(1,), init=stream)
        self.count = Var(shape=(n,), init=0)
        self.t = Var(shape=(1,), init=0)


class _RateModel(PyLoihiProcessModel):
    def run_spk(self):
        t = int(self.t[0])
        spikes = rate_spikes(int(self.seed[0]), int(self.stream[0]), t, self.prob.astype(np.int64))
        self.count[:] += spikes
        self.t[0] = t + 1
        self.s_out.send(spikes.astype(self.s_out_dtype))


@implements(proc=RateInput, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyRateInputFixed(_RateModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=1)
    prob: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=17)
    seed: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    stream: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    count: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    t: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    s_out_dtype = np.int32


@implements(proc=RateInput, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyRateInputFloat(_RateModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    prob: np.ndarray = LavaPyType(np.ndarray, np.int64)
    seed: np.ndarray = LavaPyType(np.ndarray, np.int64)
    stream: np.ndarray = LavaPyType(np.ndarray, np.int64)
    count: np.ndarray = LavaPyType(np.ndarray, np.int64)
    t: np.ndarray = LavaPyType(np.ndarray, np.int64)
    s_out_dtype = float


class HostFunction(AbstractProcess):
    """A host op (softmax or layer norm over the last axis): its input currents plus bias
    through neurocompile.semantics.hostops, the implementation the simulator calls too."""

    def __init__(self, *, node, bias, name: str | None = None):
        super().__init__(name=name)
        n = node.size
        self.a_in = InPort(shape=(n,))
        self.s_out = OutPort(shape=(n,))
        self.bias = Var(shape=(n,), init=bias)
        self.active = Var(shape=(n,), init=0)  # steps with a nonzero output: synaptic events downstream
        self.t = Var(shape=(1,), init=0)
        self.proc_params["start"] = node.start
        self.proc_params["node"] = node  # the IR node: op, width and integer parameters


@implements(proc=HostFunction, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyHostFunctionFixed(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=CURRENT_BITS)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=GRADED_BITS)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    active: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    t: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)

    def run_spk(self):
        x = self.a_in.recv().astype(np.int64) + self.bias
        y = host_op_fixed(self.proc_params["node"], x[None])[0] * _started(self)
        self.active[:] += y != 0
        self.s_out.send(y.astype(np.int32))


@implements(proc=HostFunction, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyHostFunctionFloat(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    bias: np.ndarray = LavaPyType(np.ndarray, float)
    active: np.ndarray = LavaPyType(np.ndarray, np.int64)
    t: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def run_spk(self):
        node = self.proc_params["node"]
        y = host_function(node, ((self.a_in.recv() + self.bias) / node.scale)[None])[0] * _started(self)
        self.active[:] += y != 0
        self.s_out.send(y * 2.0**node.out_frac)  # payload units, unrounded


class SpikeProduct(AbstractProcess):
    """A @ B of two operands' outputs of the same step, through the operands' index maps, in
    the node's form (coincidence or telescoping: neurocompile/semantics/products.py). It receives, then
    sends: a product adds no step of latency."""

    def __init__(self, *, node, n_a: int, n_b: int, name: str | None = None):
        super().__init__(name=name)
        self.a_in = InPort(shape=(n_a,))
        self.b_in = InPort(shape=(n_b,))
        self.s_out = OutPort(shape=(node.size,))
        self.sum_a = Var(shape=(n_a,), init=0)  # running sums (telescoping form)
        self.sum_b = Var(shape=(n_b,), init=0)
        self.emitted = Var(shape=(node.size,), init=0)
        self.t = Var(shape=(1,), init=0)
        self.active = Var(shape=(node.size,), init=0)
        self.events = Var(shape=(1,), init=0)  # synaptic events on coincidence neurons (products.product_events)
        self.proc_params["node"] = node


class _ProductModel(PyLoihiProcessModel):
    def run_spk(self):
        node = self.proc_params["node"]
        a, b = self.a_in.recv(), self.b_in.recv()
        t = int(self.t[0])
        self.t[:] += 1
        if t < node.start:  # reads its operands from its start on
            self.s_out.send(np.zeros(node.size, self.s_out_dtype))
            return
        self.events[:] += int(product_events(*operand_views(node, a[None], b[None]))[0])
        if node.form == "telescoping":
            self.sum_a[:] += a
            self.sum_b[:] += b
            a, b = self.sum_a, self.sum_b
        va, vb = operand_views(node, a[None], b[None])
        ab = np.matmul(va.astype(np.float64), vb.astype(np.float64)).ravel()
        y = self.telescoping(ab, t - node.start) if node.form == "telescoping" else self.coincidence(ab)
        self.active[:] += y != 0
        self.s_out.send(y)


@implements(proc=SpikeProduct, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeProductFixed(_ProductModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=GRADED_BITS)
    b_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=GRADED_BITS)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=GRADED_BITS)
    sum_a: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)
    sum_b: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)
    emitted: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)
    t: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    active: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    events: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)
    s_out_dtype = np.int32

    def coincidence(self, ab):
        return coincidence(ab, self.proc_params["node"].out_shift).astype(np.int32)

    def telescoping(self, sums, t):
        node = self.proc_params["node"]
        y = telescoping(sums, self.emitted, t, node.out_shift, node.payload_bound)
        self.emitted[:] += y
        return y.astype(np.int32)


@implements(proc=SpikeProduct, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySpikeProductFloat(_ProductModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    b_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    sum_a: np.ndarray = LavaPyType(np.ndarray, float)
    sum_b: np.ndarray = LavaPyType(np.ndarray, float)
    emitted: np.ndarray = LavaPyType(np.ndarray, float)
    t: np.ndarray = LavaPyType(np.ndarray, np.int64)
    active: np.ndarray = LavaPyType(np.ndarray, np.int64)
    events: np.ndarray = LavaPyType(np.ndarray, np.int64)
    s_out_dtype = float

    def coincidence(self, ab):
        return ab / 2.0 ** self.proc_params["node"].out_shift

    def telescoping(self, sums, t):
        y = sums / ((t + 1) * 2.0 ** self.proc_params["node"].out_shift) - self.emitted
        self.emitted[:] += y
        return y


class SpikeFailure(AbstractProcess):
    """Random spike masking on the way from a population to the blocks (and product operands)
    that carry its masked spikes: each spike fails with the mask's probability, one draw per
    spike from the mask's stream. It receives, then sends: no latency."""

    def __init__(self, *, n: int, threshold: int, seed: int, stream: int, name: str | None = None):
        super().__init__(name=name)
        self.s_in = InPort(shape=(n,))
        self.s_out = OutPort(shape=(n,))
        self.t = Var(shape=(1,), init=0)
        self.active = Var(shape=(n,), init=0)  # surviving spikes per neuron
        self.proc_params["failure"] = (Failure(threshold, stream, per_synapse=False), seed)


class _SpikeFailureModel(PyLoihiProcessModel):
    def run_spk(self):
        failure, seed = self.proc_params["failure"]
        y = surviving_spikes(failure, seed, int(self.t[0]), self.s_in.recv())
        self.active[:] += y != 0
        self.t[:] += 1
        self.s_out.send(y)


@implements(proc=SpikeFailure, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeFailureFixed(_SpikeFailureModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=GRADED_BITS)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=GRADED_BITS)
    t: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    active: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)


@implements(proc=SpikeFailure, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySpikeFailureFloat(_SpikeFailureModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    t: np.ndarray = LavaPyType(np.ndarray, np.int64)
    active: np.ndarray = LavaPyType(np.ndarray, np.int64)


class FailingSynapses(AbstractProcess):
    """A connection whose every synapse fails on its own with probability p (quantal synaptic
    failure), one draw per synaptic event from the block's stream. Lava's Dense and Sparse have
    no failures, so this process computes the block's integer current itself: one step late, as
    they do, with the block's mantissas and shift."""

    def __init__(self, *, matrix, shift: int, threshold: int, seed: int, stream: int, name: str | None = None):
        super().__init__(name=name)
        n_target, n_source = matrix.shape
        self.s_in = InPort(shape=(n_source,))
        self.a_out = OutPort(shape=(n_target,))
        self.a_buff = Var(shape=(n_target,), init=0)
        self.t = Var(shape=(1,), init=0)
        self.events = Var(shape=(1,), init=0)
        self.proc_params["matrix"] = (matrix.data, matrix.indices, matrix.indptr, matrix.shape)
        self.proc_params["failure"] = (shift, Failure(threshold, stream, per_synapse=True), seed)


class _FailingSynapsesModel(PyLoihiProcessModel):
    def run_spk(self):
        self.a_out.send(self.a_buff)
        shift, failure, seed = self.proc_params["failure"]
        if not hasattr(self, "matrix"):
            data, indices, indptr, shape = self.proc_params["matrix"]
            self.matrix = sp.csr_matrix((data, indices, indptr), shape=shape)
            self.ids = synapse_ids(self.matrix)
        y, events = failing_synapses(self.matrix, self.ids, failure, seed, int(self.t[0]), self.s_in.recv()[None])
        self.a_buff[:] = self.finish(y[0], shift)
        self.events[:] += int(events[0])
        self.t[:] += 1


@implements(proc=FailingSynapses, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyFailingSynapsesFixed(_FailingSynapsesModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=GRADED_BITS)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=CURRENT_BITS)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=CURRENT_BITS)
    t: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    events: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)

    def finish(self, y, s):
        # Exact: the build bounds every sum of mantissa x payload below 2^31.
        return shift(np.rint(y).astype(np.int64), s)


@implements(proc=FailingSynapses, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyFailingSynapsesFloat(_FailingSynapsesModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    a_buff: np.ndarray = LavaPyType(np.ndarray, float)
    t: np.ndarray = LavaPyType(np.ndarray, np.int64)
    events: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def finish(self, y, s):
        return y  # real weights in membrane units
