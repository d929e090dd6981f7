"""Lava processes for the populations of a compiled network, with fixed_pt and floating_pt
models. Synapse blocks use Lava's own Dense and Sparse processes (see runner.py).

The fixed_pt models implement docs/semantics.md independently of the simulator: per step each
process receives what its synapses sent (the previous step's spikes, weighted), updates, sends.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from ...hostops import layernorm_fixed, softmax_fixed
from ...ir.indexing import gather
from ...rng import rate_spikes


class IFNeurons(AbstractProcess):
    """Integrate-and-fire neurons, reset by subtraction: v += a_in + bias (saturating to
    +-vmax); spike when v >= threshold; v -= threshold on a spike."""

    def __init__(self, *, n: int, threshold, v_init, bias, vmax, record_steps: int = 0, name: str | None = None):
        super().__init__(name=name)
        self.a_in = InPort(shape=(n,))
        self.s_out = OutPort(shape=(n,))
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
        v = self.integrate(self.v + a + self.bias)
        spikes = v >= self.threshold[0]
        self.v[:] = v - spikes * self.threshold[0]
        self.count[:] += spikes
        t = int(self.t[0])
        if t < self.record_steps[0]:
            self.raster[t] = spikes
        self.t[0] = t + 1
        self.s_out.send(spikes.astype(self.s_out_dtype))


@implements(proc=IFNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyIFNeuronsFixed(_IFModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=1)
    v: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    threshold: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    vmax: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
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
    """Accumulates its input plus bias every step; never spikes."""

    def __init__(self, *, n: int, bias, name: str | None = None):
        super().__init__(name=name)
        self.a_in = InPort(shape=(n,))
        self.bias = Var(shape=(n,), init=bias)
        self.acc = Var(shape=(n,), init=0)


@implements(proc=Readout, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyReadoutFixed(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=32)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    acc: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)

    def run_spk(self):
        self.acc[:] += self.a_in.recv().astype(np.int64) + self.bias


@implements(proc=Readout, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyReadoutFloat(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    bias: np.ndarray = LavaPyType(np.ndarray, float)
    acc: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        self.acc[:] += self.a_in.recv() + self.bias


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
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    payload: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

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
    through neurocompile.hostops, the implementation the simulator calls too."""

    def __init__(self, *, node, bias, name: str | None = None):
        super().__init__(name=name)
        n = node.size
        self.a_in = InPort(shape=(n,))
        self.s_out = OutPort(shape=(n,))
        self.bias = Var(shape=(n,), init=bias)
        self.active = Var(shape=(n,), init=0)  # steps with a nonzero output: synaptic events downstream
        self.proc_params["node"] = node  # the IR node: op, width and integer parameters


@implements(proc=HostFunction, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyHostFunctionFixed(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    active: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)

    def run_spk(self):
        node = self.proc_params["node"]
        x = (self.a_in.recv().astype(np.int64) + self.bias).reshape(-1, node.shape[-1])
        if node.op == "softmax":
            y = softmax_fixed(x, node.exp_k, node.out_frac)
        else:
            y = layernorm_fixed(x, node.eps_int, node.gamma_q, node.beta_q, node.gb_frac, node.out_frac)
        self.active[:] += y.ravel() != 0
        self.s_out.send(y.ravel().astype(np.int32))


@implements(proc=HostFunction, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyHostFunctionFloat(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    bias: np.ndarray = LavaPyType(np.ndarray, float)
    active: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def run_spk(self):
        node = self.proc_params["node"]
        x = ((self.a_in.recv() + self.bias) / node.scale).reshape(-1, node.shape[-1])
        y = node.ann(x[None]).reshape(-1)
        self.active[:] += y != 0
        self.s_out.send(y * 2.0**node.out_frac)  # payload units, unrounded


class SpikeProduct(AbstractProcess):
    """A @ B of two operands' outputs, one step late (it sends first, then receives, as Lava's
    Dense does), through the operands' index maps."""

    def __init__(self, *, node, n_a: int, n_b: int, name: str | None = None):
        super().__init__(name=name)
        self.a_in = InPort(shape=(n_a,))
        self.b_in = InPort(shape=(n_b,))
        self.s_out = OutPort(shape=(node.size,))
        self.buf_a = Var(shape=(n_a,), init=0)
        self.buf_b = Var(shape=(n_b,), init=0)
        self.active = Var(shape=(node.size,), init=0)
        self.proc_params["node"] = node


class _ProductModel(PyLoihiProcessModel):
    def run_spk(self):
        node = self.proc_params["node"]
        a = gather(self.buf_a[None], node.a_index, node.a_shape).astype(np.float64)
        b = gather(self.buf_b[None], node.b_index, node.b_shape).astype(np.float64)
        y = self.finish(np.matmul(a, b).ravel())
        self.active[:] += y != 0
        self.s_out.send(y)
        self.buf_a[:] = self.a_in.recv()
        self.buf_b[:] = self.b_in.recv()


@implements(proc=SpikeProduct, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeProductFixed(_ProductModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    b_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    buf_a: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    buf_b: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    active: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)

    def finish(self, y):
        # Products of payloads below 2^23 are exact in float64; then the host's output shift.
        return (np.rint(y).astype(np.int64) >> self.proc_params["node"].out_shift).astype(np.int32)


@implements(proc=SpikeProduct, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySpikeProductFloat(_ProductModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    b_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    buf_a: np.ndarray = LavaPyType(np.ndarray, float)
    buf_b: np.ndarray = LavaPyType(np.ndarray, float)
    active: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def finish(self, y):
        return y / 2.0 ** self.proc_params["node"].out_shift
