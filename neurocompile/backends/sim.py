"""The bit-accurate simulator: torch tensors on the CPU or a CUDA GPU, batched over inputs.

It executes the integer semantics of docs/semantics.md ("Exactness on every device" says why no
operation can round). Synaptic currents are matrix products of integer mantissas and integer
payloads, computed in float32 while the quantize pass's bound on the block's sums (`acc_bound`)
stays below 2^24, else in float64 (below 2^53): every partial sum is then an integer the float
format holds, so any summation order gives the exact integer. Convolutions are unfolded into
matrix products (no Winograd or FFT transforms), and TF32 is switched off. What no backend owns
(random numbers, host ops, products, failures) comes from neurocompile.semantics, as in the Lava
process models.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import NeurocompileError
from ..ir.connectivity import block_matrix, source_fanout
from ..ir.graph import Network
from ..ir.kernels import Conv2d, Dense, Elementwise, Sparse
from ..ir.nodes import HostOp, IFPopulation, InputPopulation, Product, Readout, Relay, SynapseBlock
from ..ir.result import RunResult
from ..numerics import Numerics
from ..semantics.encoding import encode_input
from ..semantics.failures import block_failure, kept_events, kept_synapses, operand_failure, shift, surviving_spikes, synapse_ids
from ..semantics.hostops import host_op_fixed
from ..semantics.products import coincidence as coincidence_payload, product_events, telescoping as telescoping_payload
from ..semantics.rng import rate_spikes, stream_id

EXACT_FLOAT32 = 2**24
EXACT_FLOAT64 = 2**53
DEVICES = ("cpu", "cuda")
MEMORY_SHARE = 0.5  # of the device's free memory that an automatic batch may take


def device_of(name: str) -> torch.device:
    """The torch device for `--device`; refused with one line where it is not there."""
    if name not in DEVICES:
        raise NeurocompileError(f"device '{name}' is not one of {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise NeurocompileError(f"--device cuda: torch {torch.__version__} sees no CUDA GPU on this machine; use --device cpu")
    return torch.device(name)


def _exact_arithmetic() -> None:
    """Float32 products must not be rounded to TF32 (10-bit mantissas) on GPUs that could."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    # torch 2.3 calls its CSR tensors beta; the products used here are documented and tested.
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)


class _Gather:
    """An index map of the IR ([*shape] flat indices into [B, n], -1 reads zero) on the device."""

    def __init__(self, index: np.ndarray | None, shape: tuple[int, ...], n: int, device: torch.device):
        self.shape = tuple(shape)
        self.pad = index is not None and index.size > 0 and int(index.min()) < 0
        if index is None:
            self.index = None
        else:
            flat = np.where(index.ravel() >= 0, index.ravel(), n)  # n: the zero column padded on
            self.index = torch.as_tensor(flat, dtype=torch.int64, device=device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        if self.index is None:
            return x.reshape((b,) + self.shape)
        if self.pad:
            x = F.pad(x, (0, 1))
        return x.index_select(1, self.index).reshape((b,) + self.shape)


# How each kernel kind maps a view [B, *view] of integer payloads (as floats) to its output
# [B, n_out]: made once per block with the block's mantissas on the device.
def _elementwise(kernel: Elementwise, view: tuple[int, ...], w: torch.Tensor) -> Callable:
    return lambda x: (x * w).reshape(x.shape[0], -1)  # w broadcasts over the view


def _dense(kernel: Dense, view: tuple[int, ...], w: torch.Tensor) -> Callable:
    wt = w.T.contiguous()
    return lambda x: (x.reshape(-1, x.shape[-1]) @ wt).reshape(x.shape[0], -1)


def _conv2d(kernel: Conv2d, view: tuple[int, ...], w: torch.Tensor) -> Callable:
    n, c, h, width = view
    o, cg, kh, kw = kernel.weight.shape
    g = kernel.group
    t, left, bottom, right = kernel.pads
    _, _, ho, wo = kernel.out_shape(view)
    wg = w.reshape(g, o // g, cg * kh * kw)

    def apply(x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        xb = F.pad(x.reshape(b * n, c, h, width), (left, right, t, bottom))
        cols = F.unfold(xb, (kh, kw), dilation=kernel.dilations, stride=kernel.strides)  # [BN, C*kh*kw, L], channel-major
        y = torch.matmul(wg, cols.reshape(b * n, g, cg * kh * kw, ho * wo))  # [BN, g, O/g, L]
        return y.reshape(b, -1)

    return apply


def _sparse(kernel: Sparse, view: tuple[int, ...], w: torch.Tensor) -> Callable:
    m = torch.sparse_csr_tensor(torch.as_tensor(kernel.indptr, dtype=torch.int64), torch.as_tensor(kernel.indices, dtype=torch.int64),
                                w.cpu(), size=kernel.shape).to(w.device)
    return lambda x: (m @ x.reshape(x.shape[0], -1).T).T


KERNELS = {Elementwise: _elementwise, Dense: _dense, Conv2d: _conv2d, Sparse: _sparse}


class _Synapses:
    """A synapse block on the device: what its source emitted -> the integer current it delivers
    next step, with its synaptic events and spike messages [B]."""

    def __init__(self, net: Network, block: SynapseBlock, device: torch.device):
        src, dst = net.source_of(block), net.target_of(block)
        if block.w_mant is None:
            raise NeurocompileError(f"synapse block '{block.name}' is not quantized; build the artifact first")
        if block.acc_bound >= EXACT_FLOAT64:
            raise NeurocompileError(f"synapse block '{block.name}': accumulator bound {block.acc_bound} exceeds exact float64 range")
        self.name, self.source, self.target, self.shift = block.name, src.name, dst.name, block.w_shift
        self.dtype = torch.float32 if block.acc_bound < EXACT_FLOAT32 else torch.float64
        self.fanout = torch.as_tensor(source_fanout(block, src.size), dtype=torch.float64, device=device)
        self.failure = block_failure(block)
        if self.failure is not None and self.failure.per_synapse:
            # One draw per synapse: the explicit matrix, its synapses' counters and sources.
            m = block_matrix(block, src.size, block.w_mant.astype(np.float64))
            self.ids = torch.as_tensor(synapse_ids(m), device=device)
            self.sources = torch.as_tensor(m.indices.astype(np.int64), device=device)
            self.crow = torch.as_tensor(m.indptr.astype(np.int64), device=device)
            self.values = torch.as_tensor(m.data, dtype=torch.float64, device=device)
            self.size = m.shape
            return
        self.view = _Gather(block.in_index, block.view_shape, src.size, device)
        w = torch.as_tensor(block.w_mant, dtype=self.dtype, device=device)
        self.kernel = KERNELS[type(block.kernel)](block.kernel, tuple(block.view_shape), w)
        n_out = int(np.prod(block.kernel.out_shape(tuple(block.view_shape))))
        self.out = None if block.out_index is None else _Gather(block.out_index, block.out_index.shape, n_out, device)

    def current(self, out: torch.Tensor, seed: int, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.failure is not None and self.failure.per_synapse:
            return self._failing_synapses(out, seed, t)
        out = surviving_spikes(self.failure, seed, t, out)
        sent = out != 0
        events = (sent.to(torch.float64) @ self.fanout).to(torch.int64)
        y = self.kernel(self.view(out.to(self.dtype)))
        if self.out is not None:
            y = self.out(y).reshape(out.shape[0], -1)
        return shift(torch.round(y).to(torch.int64), self.shift), events, sent.sum(dim=1)

    def _failing_synapses(self, out: torch.Tensor, seed: int, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        keep = kept_synapses(self.ids, self.failure, seed, t)
        m = torch.sparse_csr_tensor(self.crow, self.sources, self.values * keep, size=self.size)
        y = (m @ out.T.to(torch.float64)).T
        return shift(torch.round(y).to(torch.int64), self.shift), kept_events(out, self.sources, keep), (out != 0).sum(dim=1)


@dataclass
class _Run:
    """The mutable state of one batch: what each population holds and emits."""

    batch: int
    steps: int
    seed: int
    record: bool
    device: torch.device
    state: dict[str, object] = field(default_factory=dict)
    out: dict[str, torch.Tensor] = field(default_factory=dict)  # what each population emits this step
    counts: dict[str, torch.Tensor] = field(default_factory=dict)
    rasters: dict[str, torch.Tensor] = field(default_factory=dict)
    readout_start: int = 0
    messages: dict[str, torch.Tensor] = field(default_factory=dict)  # per edge, [B]
    events: dict[str, torch.Tensor] = field(default_factory=dict)  # per block and product, [B]
    encoded: torch.Tensor | None = None
    saturated: int = 0

    def zeros(self, *shape, dtype=torch.int64) -> torch.Tensor:
        return torch.zeros(shape, dtype=dtype, device=self.device)


@dataclass
class _RunningProduct:
    """A telescoping product's state: its operands' running sums and what it has emitted."""

    sum_a: torch.Tensor
    sum_b: torch.Tensor
    emitted: torch.Tensor


def _start_input(sim, pop: InputPopulation, run: _Run, x: np.ndarray):
    encoded, run.saturated = encode_input(pop, x, sim.numerics)
    run.encoded = torch.as_tensor(encoded, device=run.device)


def _start_if(sim, pop: IFPopulation, run: _Run, x):
    run.state[pop.name] = torch.full((run.batch, pop.size), pop.v_init_int, dtype=torch.int64, device=run.device)
    run.counts[pop.name] = run.zeros(run.batch, pop.size)
    if run.record:
        run.rasters[pop.name] = run.zeros(run.steps, run.batch, pop.size, dtype=torch.uint8)


def _start_zero(sim, pop, run: _Run, x):
    run.state[pop.name] = run.zeros(run.batch, pop.size)


def _step_input(sim, pop: InputPopulation, run: _Run, t: int, current):
    if pop.graded:
        run.out[pop.name] = run.encoded
    else:
        run.out[pop.name] = rate_spikes(run.seed, stream_id(pop.name), t, run.encoded).to(torch.int64)


def _step_if(sim, pop: IFPopulation, run: _Run, t: int, current):
    vmax = sim.numerics.membrane_max
    v = torch.clamp(run.state[pop.name] + current, -vmax, vmax)
    spikes = v >= pop.threshold_int
    run.state[pop.name] = v - spikes * pop.threshold_int
    run.counts[pop.name] += spikes
    run.out[pop.name] = spikes.to(torch.int64)
    if run.record:
        run.rasters[pop.name][t] = spikes


def _step_readout(sim, pop: Readout, run: _Run, t: int, current):
    if t >= run.readout_start:
        run.state[pop.name] += current


def _step_host(sim, pop: HostOp, run: _Run, t: int, current):
    run.out[pop.name] = host_op_fixed(pop, run.zeros(run.batch, pop.size) + current)


def _step_relay(sim, pop: Relay, run: _Run, t: int, current):
    run.out[pop.name] = shift(run.zeros(run.batch, pop.size) + current, -pop.out_shift)


def _start_product(sim, pop: Product, run: _Run, x):
    if pop.form == "telescoping":
        a, b = sim.net.operands(pop.name)
        f64 = torch.float64
        run.state[pop.name] = _RunningProduct(run.zeros(run.batch, a.size, dtype=f64), run.zeros(run.batch, b.size, dtype=f64),
                                              run.zeros(run.batch, pop.size))


def _step_product(sim, pop: Product, run: _Run, t: int, current):
    a, b = sim.net.operands(pop.name)
    view_a, view_b = sim.operand_views[pop.name]
    # Each operand's output this step, its spikes masked when the operand is.
    out_a = surviving_spikes(operand_failure(pop, "a"), run.seed, t, run.out[a.name])
    out_b = surviving_spikes(operand_failure(pop, "b"), run.seed, t, run.out[b.name])
    run.messages[f"{pop.name}:a"] = run.messages.get(f"{pop.name}:a", 0) + (out_a != 0).sum(dim=1)
    run.messages[f"{pop.name}:b"] = run.messages.get(f"{pop.name}:b", 0) + (out_b != 0).sum(dim=1)
    run.events[pop.name] = run.events.get(pop.name, 0) + product_events(view_a(out_a), view_b(out_b))
    if pop.form == "coincidence":
        y = torch.matmul(view_a(out_a).to(torch.float64), view_b(out_b).to(torch.float64))
        run.out[pop.name] = coincidence_payload(y, pop.out_shift).reshape(run.batch, -1)
        return
    state = run.state[pop.name]
    state.sum_a += out_a
    state.sum_b += out_b
    y = torch.matmul(view_a(state.sum_a), view_b(state.sum_b))
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


def available_memory(device: torch.device) -> int:
    """Bytes free on the device: the GPU's free memory, or the machine's available memory."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError):
        return 2**30


class Simulator:
    def __init__(self, net: Network, numerics: Numerics, device: str = "cpu"):
        _exact_arithmetic()
        self.net = net
        self.numerics = numerics
        self.device = device_of(device)
        self.pops = net.populations()
        self.blocks = [_Synapses(net, block, self.device) for block in net.synapses()]
        self.bias = {p.name: torch.as_tensor(p.bias_mant.astype(np.int64) << p.bias_exp, device=self.device)
                     for p in self.pops if getattr(p, "bias_mant", None) is not None}
        self.operand_views = {}
        for prod in (p for p in self.pops if isinstance(p, Product)):
            a, b = net.operands(prod.name)
            self.operand_views[prod.name] = (_Gather(prod.a_index, prod.a_shape, a.size, self.device),
                                             _Gather(prod.b_index, prod.b_shape, b.size, self.device))

    def bytes_per_sample(self, steps: int, record: bool) -> int:
        """A generous estimate of the memory one sample of a batch takes: each population's
        state, output, count and incoming currents (int64), each block's float view and output,
        and the rasters when recorded."""
        neurons = sum(p.size for p in self.pops)
        views = sum(int(np.prod(b.view_shape)) + b_out for b, b_out in
                    ((blk, self.net.target_of(blk).size) for blk in self.net.synapses()))
        return 8 * (6 * neurons + 2 * views) + (steps * neurons if record else 0)

    def batch_size(self, samples: int, steps: int, record: bool) -> int:
        """The largest batch that fits MEMORY_SHARE of the device's free memory."""
        fits = int(available_memory(self.device) * MEMORY_SHARE) // max(1, self.bytes_per_sample(steps, record))
        return max(1, min(samples, fits))

    def run(self, x: np.ndarray, steps: int, seed: int = 0, record: bool = False, progress: Callable[[float], None] | None = None,
            readout_start: int = 0, batch_size: int | None = None) -> RunResult:
        """Runs the samples x [N, ...] in batches (`batch_size`, else as many as fit the device);
        the result does not depend on how they are batched. `progress` gets the number of
        samples done (fractions while a batch runs)."""
        n = x.shape[0]
        if batch_size is not None and batch_size < 1:
            raise NeurocompileError(f"--batch-size must be at least 1, got {batch_size}")
        size = batch_size or self.batch_size(n, steps, record)
        parts = []
        with torch.inference_mode():
            for first in range(0, n, size):
                chunk = x[first:first + size]

                def step_done(t: int, first=first, b=chunk.shape[0]) -> None:
                    if progress is not None:
                        progress(first + b * t / steps)

                parts.append(self._run_batch(chunk, steps, seed, record, readout_start, step_done))
        return parts[0] if len(parts) == 1 else RunResult.concatenate(parts)

    def _run_batch(self, x: np.ndarray, steps: int, seed: int, record: bool, readout_start: int, progress: Callable[[int], None]) -> RunResult:
        b = x.shape[0]
        run = _Run(b, steps, seed, record, self.device, readout_start=readout_start)
        for pop in self.pops:
            KINDS[type(pop)][0](self, pop, run, x)
            run.out[pop.name] = run.zeros(b, pop.size)
        buffers: dict[str, torch.Tensor] = {}
        events = run.events
        events.update({blk.name: run.zeros(b) for blk in self.blocks})
        for t in range(steps):
            # 1. Every block delivers what it computed last step.
            current: dict[str, torch.Tensor] = {name: bias.expand(b, -1) for name, bias in self.bias.items()}
            for blk in self.blocks:
                if blk.name in buffers:
                    current[blk.target] = current[blk.target] + buffers[blk.name] if blk.target in current else buffers[blk.name]
            # 2. Every population updates and emits.
            for pop in self.pops:
                KINDS[type(pop)][1](self, pop, run, t, current.get(pop.name, 0))
            # 3. Every block integrates this step's output, to deliver it next step.
            for blk in self.blocks:
                buffers[blk.name], n_events, n_sent = blk.current(run.out[blk.source], seed, t)
                events[blk.name] += n_events
                run.messages[blk.name] = run.messages.get(blk.name, 0) + n_sent
            progress(t + 1)
        return self._result(run)

    def _result(self, run: _Run) -> RunResult:
        def host(v) -> np.ndarray:
            return v.cpu().numpy() if isinstance(v, torch.Tensor) else np.full(run.batch, v, np.int64)

        readout = self.net.readout
        acc = host(run.state[readout.name])
        output = (acc / readout.scale).reshape((run.batch,) + tuple(self.net.meta["output_shape"]))
        counts = {name: host(c) for name, c in run.counts.items()}
        membranes = {name: host(run.state[name]) for name in run.counts}
        events = {name: host(e) for name, e in run.events.items()}
        messages = {name: host(m) for name, m in run.messages.items()}
        synops = sum(events.values(), np.zeros(run.batch, np.int64))
        rasters = {name: host(r) for name, r in run.rasters.items()} if run.record else None
        return RunResult("sim", run.steps, output, acc, counts, synops, run.saturated, membranes, rasters, events, messages)
