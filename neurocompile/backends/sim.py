"""The bit-accurate simulator: torch tensors on the CPU or a CUDA GPU, batched over inputs.

It executes the integer semantics of docs/semantics.md ("Exactness on every device" says why no
operation can round). Synaptic currents are matrix products of integer mantissas and integer
payloads, computed in float32 while the quantize pass's bound on the block's sums (`acc_bound`)
stays below 2^24, else in float64 (below 2^53): every partial sum is then an integer the float
format holds, so any summation order gives the exact integer. Convolutions are dot products of
their windows (no Winograd or FFT transform), and TF32 is switched off. What no backend owns
(random numbers, host ops, products, failures) comes from neurocompile.semantics, as in the Lava
process models. On a CPU the step-by-step parts run as compiled loops (cpu_kernels).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import NeurocompileError
from ..ir.connectivity import block_matrix, source_fanout
from ..ir.graph import Network
from ..ir.kernels import Conv2d, Dense, Elementwise, Sparse
from ..ir.nodes import Coincidence, HostOp, IFPopulation, InputPopulation, Product, Readout, Relay, SynapseBlock
from ..ir.result import RunResult
from ..numerics import Numerics
from ..semantics.encoding import encode_input
from ..semantics.failures import block_failure, kept_events, kept_synapses, operand_failure, shift, surviving_spikes, synapse_ids
from ..semantics.hostops import EXP2_LUT, K_FRAC, Q, host_op_fixed
from ..semantics.products import coincidence as coincidence_payload, product_events, telescoping as telescoping_payload
from ..semantics.rng import rate_spikes, stream_id
from . import DEVICES, cpu_kernels

EXACT_FLOAT32 = 2**24
EXACT_FLOAT64 = 2**53
MEMORY_SHARE = 0.5  # of the device's free memory that an automatic batch may take
TILE_BYTES = 8 << 20  # a CPU's sweet spot for one population's rows of a window (see Simulator.plan)


COMPILED_LOOPS = True  # tests switch it off to run, on a CPU, the tensor operations a GPU runs


def compiled_loops(device: torch.device) -> bool:
    """Whether the step-by-step and bookkeeping parts run as cpu_kernels' compiled loops (on a
    CPU) or as tensor operations (on a GPU)."""
    return device.type == "cpu" and COMPILED_LOOPS


def device_of(name: str) -> torch.device:
    """The torch device for `--device`; refused with one line where it is not there."""
    if name not in DEVICES:
        raise NeurocompileError(f"device '{name}' is not one of {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise NeurocompileError(f"--device cuda: torch {torch.__version__} sees no CUDA GPU on this machine; use --device cpu")
    return torch.device(name)


@functools.cache
def _keep_freed_memory() -> None:
    """Asks the C library's allocator (glibc) to keep freed blocks of up to 32 MiB in the heap
    instead of mapping them afresh from the system each time: every window allocates tensors
    of that size, and each fresh mapping is zeroed page by page by the kernel (on the CIFAR-sized
    MST, resource.getrusage around one run of 16 samples: 160,000 minor page faults and 0.4 s of
    system time without this; 18,000 and 0.05 s with it). Elsewhere, or where it is refused, nothing changes. Like the MALLOC_MMAP_THRESHOLD_ and
    MALLOC_TRIM_THRESHOLD_ variables, it holds for the whole process."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 512 << 20)


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
            flat = np.where(index.ravel() >= 0, index.ravel(), n) if self.pad else index.ravel()  # n: the zero column padded on
            if flat.size and not 0 <= int(flat.min()) <= int(flat.max()) <= n:
                raise NeurocompileError(f"an index map reads outside its population of {n} neurons")
            # Shares the network's array where it can: a Swin-T's index maps are gigabytes.
            self.index = torch.as_tensor(np.ascontiguousarray(flat, dtype=np.int64), device=device)
        self.runs = _runs(index.ravel()) if compiled_loops(device) and index is not None and index.size else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_padded(F.pad(x, (0, 1)) if self.reads_padding else x)

    def from_padded(self, x: torch.Tensor) -> torch.Tensor:
        """The gather from x [B, n], or [B, n + 1] whose last column is zero (-1 reads it) where
        it reads_padding."""
        b = x.shape[0]
        if self.index is None:
            return x.reshape((b,) + self.shape)
        if not compiled_loops(x.device):
            return x.index_select(1, self.index).reshape((b,) + self.shape)
        out = torch.empty((b, self.index.shape[0]), dtype=x.dtype)
        if self.runs is not None:
            cpu_kernels.gather_runs(x.contiguous().numpy(), *self.runs, out.numpy())
        else:
            cpu_kernels.gather_columns(x.contiguous().numpy(), self.index.numpy(), out.numpy())
        return out.reshape((b,) + self.shape)

    @property
    def reads_padding(self) -> bool:
        """Whether it reads x with a zero column appended (its padding reads that column)."""
        return self.pad and self.runs is None


_UNSCALED = np.ones(1, dtype=np.int32)  # cpu_kernels.deliver_runs' weight for sums delivered as they are
RUN_LENGTH = 4  # on average, at least: below it a gather by single indices is as fast


def _runs(index: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """An index map [n] as runs of consecutive neurons (or of padding, -1), for
    cpu_kernels.gather_runs: (first neuron of each run or -1, where each run starts in the
    output, with the end appended); None where the runs are too short to pay."""
    source, start = cpu_kernels.index_runs(np.ascontiguousarray(index))
    return None if source.size * RUN_LENGTH > index.size else (source, start)


def _whole_row(n: int) -> tuple[np.ndarray, np.ndarray]:
    """One run over a whole row of n: the identity map in _runs' form."""
    return np.zeros(1, np.int64), np.array([0, n], np.int64)


class _Gathers:
    """One _Gather per distinct index map of a source: blocks that read their source through
    the same map (a window's q, k and v) share its index tensor and, within a window, its result."""

    def __init__(self, device: torch.device):
        self.device = device
        self.known: dict[tuple, list[tuple[np.ndarray | None, _Gather]]] = defaultdict(list)

    def __call__(self, source: str, index: np.ndarray | None, shape: tuple[int, ...], n: int) -> _Gather:
        candidates = self.known[source, tuple(shape), n, None if index is None else index.size]
        for known, gather in candidates:
            if known is index or (index is not None and np.array_equal(known, index)):
                return gather
        gather = _Gather(index, shape, n, self.device)
        candidates.append((index, gather))
        return gather


def _compact(kernel, view: tuple[int, ...], in_index: np.ndarray | None, w_mant: np.ndarray, out_index: np.ndarray | None):
    """The block without the padding of its view: a view position that reads no neuron (-1)
    contributes nothing to any sum, so a dense kernel's rows and columns made only of padding,
    and an elementwise kernel's padded positions, are dropped with their weights, and the out
    map is composed with where the remaining outputs now lie. The same integer sums, fewer
    terms. (A shifted window's regions and a patch merge's quarters are mostly padding.)
    Returns (view, in_index, w_mant, out_index); out positions that no longer exist read -1."""
    if in_index is None or in_index.size == 0 or int(in_index.min()) >= 0 or not isinstance(kernel, (Dense, Elementwise)):
        return view, in_index, w_mant, out_index
    if isinstance(kernel, Dense):
        index = in_index.reshape(-1, view[-1])
        valid = index >= 0
        rows, cols = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
        m = w_mant.shape[0]
        where = np.full((index.shape[0], m), -1, np.int64)
        where[rows] = np.arange(rows.size * m).reshape(-1, m)
        view, in_index, w_mant = (rows.size, cols.size), index[np.ix_(rows, cols)], w_mant[:, cols]
    else:
        flat = in_index.ravel()
        keep = np.flatnonzero(flat >= 0)
        if 2 * keep.size > flat.size:  # the out map would cost more than the padding
            return view, in_index, w_mant, out_index
        where = np.full(flat.size, -1, np.int64)
        where[keep] = np.arange(keep.size)
        view, in_index, w_mant = (keep.size,), flat[keep], np.broadcast_to(w_mant, view).ravel()[keep]
    where = where.ravel()
    out_index = where if out_index is None else np.where(out_index >= 0, where[np.maximum(out_index, 0)], -1)
    return view, in_index, w_mant, out_index


def _per_target(view: tuple[int, ...], in_index: np.ndarray | None, weight: np.ndarray, out_index: np.ndarray | None,
                n_target: int) -> tuple[np.ndarray, np.ndarray]:
    """An elementwise block as (source neuron, integer weight) per target neuron: the in map,
    the weights broadcast over the view and the out map composed. Source -1 (weight 0): the
    target gets nothing from this block (padding on either side)."""
    none = np.empty(0, np.int64)  # the identity, to compose_per_target
    if weight.ndim <= 1 and (weight.size == view[-1] or weight.size == 1):
        weights = np.ascontiguousarray(weight, dtype=np.int64).ravel()  # repeats along the view's positions
    else:
        weights = np.ascontiguousarray(np.broadcast_to(weight, view), dtype=np.int64).ravel()
    return cpu_kernels.compose_per_target(none if out_index is None else np.ascontiguousarray(out_index).ravel(),
                                          none if in_index is None else np.ascontiguousarray(in_index).ravel(), weights, n_target)


# How each kernel kind maps a view [B, *view] of integer payloads (as floats) to its output
# [B, n_out]: made once per block with the block's mantissas on the device.
def _elementwise(kernel: Elementwise, view: tuple[int, ...], w: torch.Tensor) -> Callable:
    return lambda x: (x * w).reshape(x.shape[0], -1)  # w broadcasts over the view


def _dense(kernel: Dense, view: tuple[int, ...], w: torch.Tensor) -> Callable:
    wt = w.T.contiguous()
    return lambda x: (x.reshape(-1, x.shape[-1]) @ wt).reshape(x.shape[0], -1)


def _conv2d(kernel: Conv2d, view: tuple[int, ...], w: torch.Tensor, unfold: bool | None = None) -> Callable:
    """On the CPU, torch's convolution (oneDNN's direct algorithm: dot products of the window,
    no Winograd or FFT transform); on a GPU, whose libraries may pick such transforms, the
    window unfolded into a matrix product (`unfold` forces one or the other)."""
    n, c, h, width = view
    o, cg, kh, kw = kernel.weight.shape
    g = kernel.group
    t, left, bottom, right = kernel.pads
    _, _, ho, wo = kernel.out_shape(view)
    wg = w.reshape(g, o // g, cg * kh * kw)

    # The padding both sides share is the convolution's own (oneDNN reads zeros there without a
    # padded copy: F.pad took 3 times the convolution's time on the digits CNN); the rest, F.pad.
    both = (min(t, bottom), min(left, right))
    extra = (left - both[1], right - both[1], t - both[0], bottom - both[0])

    def direct(x: torch.Tensor) -> torch.Tensor:
        xb = x.reshape(-1, c, h, width)
        xb = F.pad(xb, extra) if any(extra) else xb
        return F.conv2d(xb, w, stride=kernel.strides, padding=both, dilation=kernel.dilations, groups=g).reshape(x.shape[0], -1)

    def unfolded(x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        xb = F.pad(x.reshape(b * n, c, h, width), (left, right, t, bottom))
        cols = F.unfold(xb, (kh, kw), dilation=kernel.dilations, stride=kernel.strides)  # [BN, C*kh*kw, L], channel-major
        y = torch.matmul(wg, cols.reshape(b * n, g, cg * kh * kw, ho * wo))  # [BN, g, O/g, L]
        return y.reshape(b, -1)

    return unfolded if (w.device.type != "cpu" if unfold is None else unfold) else direct


def _sparse(kernel: Sparse, view: tuple[int, ...], w: torch.Tensor) -> Callable:
    m = torch.sparse_csr_tensor(torch.as_tensor(kernel.indptr, dtype=torch.int64), torch.as_tensor(kernel.indices, dtype=torch.int64),
                                w.cpu(), size=kernel.shape).to(w.device)
    return lambda x: (m @ x.reshape(x.shape[0], -1).T).T


KERNELS = {Elementwise: _elementwise, Dense: _dense, Conv2d: _conv2d, Sparse: _sparse}


class _Synapses:
    """A synapse block on the device: what its source emitted over a window of steps -> the
    integer currents it delivers, one step later, with its synaptic events and spike messages."""

    def __init__(self, net: Network, block: SynapseBlock, device: torch.device, gathers: _Gathers):
        src, dst = net.source_of(block), net.target_of(block)
        if block.w_mant is None:
            raise NeurocompileError(f"synapse block '{block.name}' is not quantized; build the artifact first")
        if block.acc_bound >= EXACT_FLOAT64:
            raise NeurocompileError(f"synapse block '{block.name}': accumulator bound {block.acc_bound} exceeds exact float64 range")
        self.name, self.source, self.target, self.shift = block.name, src.name, dst.name, block.w_shift
        self.n_source, self.n_target = src.size, dst.size
        self.dtype = torch.float32 if block.acc_bound < EXACT_FLOAT32 else torch.float64
        self.fanout = torch.as_tensor(source_fanout(block, src.size).astype(np.int32), device=device)  # synapses per source neuron
        # Currents fit int32 (the quantize pass bounds every neuron's input by current_bits <= 32);
        # a sum before a right shift may not.
        self.wide = block.acc_bound >= 2**31 and block.w_shift < 0
        self.failure = block_failure(block)
        self.fused = self.out_runs = None
        if self.failure is not None and self.failure.per_synapse:
            # One draw per synapse: the explicit matrix, its synapses' counters and sources.
            m = block_matrix(block, src.size, block.w_mant.astype(np.float64))
            self.ids = torch.as_tensor(synapse_ids(m), device=device)
            self.sources = torch.as_tensor(m.indices.astype(np.int64), device=device)
            self.crow = torch.as_tensor(m.indptr.astype(np.int64), device=device)
            self.values = torch.as_tensor(m.data, dtype=torch.float64, device=device)
            return
        view, in_index, w_mant, out_index = _compact(block.kernel, tuple(block.view_shape), block.in_index, block.w_mant, block.out_index)
        self.view = gathers(src.name, in_index, view, src.size)
        # A left shift is folded into the float weights: every partial sum is then 2^shift times
        # an integer below the same bound, which the float format holds as exactly as before.
        w = torch.as_tensor(w_mant * 2.0 ** max(self.shift, 0), dtype=self.dtype, device=device)
        self.shift = min(self.shift, 0)
        self.kernel = KERNELS[type(block.kernel)](block.kernel, view, w)
        n_out = int(np.prod(view[:-1]) * w_mant.shape[0]) if isinstance(block.kernel, Dense) else int(np.prod(block.kernel.out_shape(view)))
        self.out = None if out_index is None else _Gather(out_index, out_index.shape, n_out, device)
        if compiled_loops(device) and isinstance(block.kernel, Elementwise):
            # On a CPU an elementwise block reads its source in target order and scales, shifts
            # and delivers in one compiled pass, through the runs of consecutive neurons of
            # that order where it has them: no view, product or float sums are written between.
            # Where the order's runs are too short, it is gathered first and read as one run.
            source, weight = _per_target(view, in_index, w_mant.astype(np.int64) << max(block.w_shift, 0), out_index, self.n_target)
            runs = _runs(source)
            self.fused = (runs or _whole_row(source.size), None if runs is not None else _Gather(source, source.shape, src.size, device),
                          weight.astype(np.int32) if np.abs(weight).max(initial=0) < 2**31 else weight)
        elif compiled_loops(device) and out_index is not None:
            self.out_runs = _runs(out_index.ravel())  # the sums delivered through them, not gathered first

    @property
    def per_synapse(self) -> bool:
        return self.failure is not None and self.failure.per_synapse

    @property
    def sent_key(self) -> tuple:
        """Blocks with one key read one _Sent: the same source under the same mask."""
        return (self.source, None if self.per_synapse else self.failure)

    def sent(self, run: "_Run", out: torch.Tensor, t0: int) -> "_Sent":
        """What the source's outputs [w, B, n] of steps t0.. put on this block (per spike, its
        mask's survivors), shared with the source's other blocks under the same mask. What it
        sends per neuron is added up once per source and mask (`run.sent_counts`): the blocks'
        events and messages follow from those sums at the end of the run."""
        key = self.sent_key
        if key not in run.sent:
            unmasked = self.per_synapse or self.failure is None
            sent = run.sent[key] = _Sent(out if unmasked else _masked(self.failure, run.seed, t0, out), self.view_readers,
                                         run.fired.get(self.source) if unmasked else None)
            if key in run.sent_counts:  # (an IF population's unmasked spikes are its counts already)
                run.sent_counts[key] += sent.count()
        return run.sent[key]

    def totals(self, run: "_Run") -> tuple[torch.Tensor, torch.Tensor]:
        """This block's (synaptic events, messages) per sample over the run; a block whose
        synapses fail one by one has counted its events as it went."""
        sent = run.sent_counts.get(self.sent_key, run.counts.get(self.source))
        events = run.events[self.name] if self.per_synapse else (sent * self.fanout).sum(dim=1)
        return events, sent.sum(dim=1)

    def deliver(self, run: "_Run", sent: "_Sent", t0: int, current: torch.Tensor) -> None:
        """Adds to current [w, B, n_target] (int32, steps t0..) what the block delivers: at each
        step the integer current of what was sent the step before. The current of the window's
        last step waits in `run.pending` for the next window's first (zero before step 0)."""
        w, b = sent.out.shape[0], sent.out.shape[1]
        if self.per_synapse:
            y = torch.stack([self._failing(run, sent.out[i], t0 + i) for i in range(w)])
        elif self.fused is not None:
            runs, in_order, weight = self.fused
            x = sent.out.reshape(w * b, -1).contiguous()
            x = x if in_order is None else in_order(x)
            cpu_kernels.deliver_runs(current.numpy(), x.numpy(), *runs, weight, run.pending[self.name].numpy(), -self.shift)
            return
        else:
            # The float sums are exact integers (module docstring): converting them truncates nothing.
            y = self.kernel(sent.gathered(self.view, self.dtype))
            if self.out_runs is not None:
                cpu_kernels.deliver_runs(current.numpy(), y.reshape(w * b, -1).contiguous().numpy(), *self.out_runs, _UNSCALED,
                                         run.pending[self.name].numpy(), -self.shift)
                return
            if self.out is not None:
                y = self.out(y).reshape(w * b, -1)
            if compiled_loops(current.device):
                cpu_kernels.deliver(current.numpy(), y.reshape(w * b, -1).contiguous().numpy(), run.pending[self.name].numpy(), -self.shift)
                return
            y = (y.to(torch.int32) if self.shift == 0 else shift(y.to(torch.int64 if self.wide else torch.int32), self.shift).to(torch.int32)).reshape(w, b, -1)
        current[0] += run.pending[self.name]
        current[1:] += y[:-1]
        run.pending[self.name] = y[-1]

    def _failing(self, run: "_Run", x: torch.Tensor, t: int) -> torch.Tensor:
        """The current of per-synapse failing synapses from what the source emitted at step t."""
        keep = kept_synapses(self.ids, self.failure, run.seed, t)
        run.events[self.name] += kept_events(x, self.sources, keep)
        m = torch.sparse_csr_tensor(self.crow, self.sources, self.values * keep, size=(self.n_target, self.n_source))
        return shift((m @ x.T.to(torch.float64)).T.to(torch.int64), self.shift).to(torch.int32)


class _Sent:
    """A population's outputs over a window as its blocks read them (after one mask, or none):
    the float form the kernels multiply (with a zero column for padded gathers), its gathers
    that several blocks read, and the nonzero count per neuron, each made once."""

    def __init__(self, out: torch.Tensor, readers: dict[int, int] | None = None, count: torch.Tensor | None = None):
        self.out = out
        self.readers = dict(readers or {})  # gather id -> blocks yet to read it this window
        self._float: dict[object, torch.Tensor] = {}
        self._gathered: dict[tuple[int, torch.dtype], torch.Tensor] = {}
        self._count = count  # an IF population's spikes per neuron this window, known already

    def as_float(self, dtype: torch.dtype) -> torch.Tensor:
        """The outputs as [w * B, n] floats."""
        if dtype not in self._float:
            w, b, n = self.out.shape
            self._float[dtype] = self.out.reshape(w * b, n).to(dtype)
        return self._float[dtype]

    def padded(self, dtype: torch.dtype) -> torch.Tensor:
        """The outputs as [w * B, n + 1] floats, the last column zero (what -1 reads)."""
        if ("padded", dtype) not in self._float:
            w, b, n = self.out.shape
            x = torch.zeros((w * b, n + 1), dtype=dtype, device=self.out.device)
            x[:, :n] = self.out.reshape(w * b, n)
            self._float["padded", dtype] = x
        return self._float["padded", dtype]

    def gathered(self, gather: _Gather, dtype: torch.dtype) -> torch.Tensor:
        """gather's view [w * B, *view] of the outputs; kept while other blocks will read it."""
        key = (id(gather), dtype)
        if key in self._gathered:
            x = self._gathered[key]
        else:
            x = gather.from_padded(self.padded(dtype) if gather.reads_padding else self.as_float(dtype))
        left = self.readers.get(id(gather), 1) - 1
        self.readers[id(gather)] = left
        if left > 0:
            self._gathered[key] = x
        else:
            self._gathered.pop(key, None)
        return x

    def count(self) -> torch.Tensor:
        """Per sample and neuron, the steps with a nonzero output [B, n] (int64)."""
        if self._count is None:
            self._count = _nonzero_steps(self.out)
        return self._count


def _nonzero_steps(out: torch.Tensor) -> torch.Tensor:
    """Per sample and neuron, the steps of out [w, B, n] with a nonzero value [B, n] (int64)."""
    if not compiled_loops(out.device):
        return (out != 0).sum(dim=0)
    counts = torch.zeros(out.shape[1:], dtype=torch.int64)
    cpu_kernels.count_nonzero(out.contiguous().numpy(), counts.numpy())
    return counts


def _masked(failure, seed: int, t0: int, out: torch.Tensor) -> torch.Tensor:
    """Outputs [w, B, n] of steps t0.. with the spikes a mask drops set to zero."""
    if failure is None:
        return out
    return torch.stack([surviving_spikes(failure, seed, t0 + i, out[i]) for i in range(out.shape[0])])


def integrate_and_fire(v: torch.Tensor, current: torch.Tensor, spikes: torch.Tensor, threshold: int, vmax: int) -> torch.Tensor:
    """The IF neurons over a window on a GPU: v [B, n] from before it, current [w, B, n]; fills
    spikes [w, B, n] and returns the membrane after the window. Each step
    v = clip(v + I, -vmax, vmax); a spike where v >= threshold, which subtracts it. The CPU
    runs the same recurrence compiled (cpu_kernels.integrate_and_fire)."""
    for i in range(current.shape[0]):
        v = (v + current[i]).clip(-vmax, vmax)
        fired = v >= threshold
        v = v - fired * threshold
        spikes[i] = fired
    return v


@dataclass
class _Run:
    """The state of one batch, carried from window to window."""

    batch: int
    steps: int
    seed: int
    record: bool
    device: torch.device
    readout_start: int = 0
    state: dict[str, object] = field(default_factory=dict)  # membranes, accumulators, running products
    pending: dict[str, torch.Tensor] = field(default_factory=dict)  # per block: what it delivers at the next window's first step
    sent: dict[tuple, "_Sent"] = field(default_factory=dict)  # this window: (source, mask) -> what its blocks read
    fired: dict[str, torch.Tensor] = field(default_factory=dict)  # this window: per IF population, spikes per neuron [B, n]
    counts: dict[str, torch.Tensor] = field(default_factory=dict)
    rasters: dict[str, torch.Tensor] = field(default_factory=dict)
    sent_counts: dict[tuple, torch.Tensor] = field(default_factory=dict)  # (source, mask) -> nonzero outputs per neuron [B, n]
    messages: dict[str, torch.Tensor] = field(default_factory=dict)  # per edge, [B]
    events: dict[str, torch.Tensor] = field(default_factory=dict)  # per block and product, [B]
    encoded: torch.Tensor | None = None
    inputs: torch.Tensor | None = None  # the buffer in which each population's input over a window is summed
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


def _start_nothing(sim, pop, run: _Run, x):
    pass


# Each kind of population over a window of w steps from t0: its summed input currents
# [w, B, n] (int32) -> what it emits [w, B, n] (IF spikes as float32, graded payloads of up to
# 24 bits as int32).
def _step_input(sim, pop: InputPopulation, run: _Run, t0: int, w: int, current):
    if pop.graded:
        return run.encoded.to(torch.int32).expand(w, -1, -1)
    stream = stream_id(pop.name)
    return torch.stack([rate_spikes(run.seed, stream, t0 + i, run.encoded) for i in range(w)]).to(torch.int32)


def _step_if(sim, pop: IFPopulation, run: _Run, t0: int, w: int, current):
    vmax = sim.numerics.membrane_max
    # Spikes as float32 0s and 1s: the form the synapse blocks multiply, made once.
    v, spikes = run.state[pop.name], torch.empty(current.shape, dtype=torch.float32, device=run.device)
    if compiled_loops(run.device):  # numpy views share the tensors' memory: all in place
        fired = run.zeros(run.batch, pop.size)
        cpu_kernels.integrate_and_fire(v.numpy(), current.numpy(), spikes.numpy(), fired.numpy(), pop.threshold_int, vmax)
    else:
        run.state[pop.name] = integrate_and_fire(v, current, spikes, pop.threshold_int, vmax)
        fired = spikes.sum(dim=0, dtype=torch.int64)
    run.counts[pop.name] += fired
    run.fired[pop.name] = fired  # what its unmasked blocks count as messages and events
    if run.record:
        run.rasters[pop.name][t0:t0 + w] = spikes
    return spikes


def _step_readout(sim, pop: Readout, run: _Run, t0: int, w: int, current):
    first = max(0, run.readout_start - t0)
    if first < w:
        run.state[pop.name] += current[first:].sum(dim=0)
    return None


def _step_host(sim, pop: HostOp, run: _Run, t0: int, w: int, current):
    if compiled_loops(run.device) and pop.op == "softmax":  # compiled: one pass per row (tests hold it to host_op_fixed)
        rows = current.reshape(-1, pop.shape[-1])
        out = torch.empty_like(rows)
        cpu_kernels.softmax(rows.numpy(), EXP2_LUT, pop.exp_k, K_FRAC - Q, pop.out_frac, out.numpy())
        return out.reshape(w, run.batch, -1)
    return host_op_fixed(pop, current.reshape(w * run.batch, -1)).reshape(w, run.batch, -1).to(torch.int32)


def _step_relay(sim, pop: Relay, run: _Run, t0: int, w: int, current):
    return shift(current, -pop.out_shift).to(torch.int32)


def _start_product(sim, pop: Product, run: _Run, x):
    if pop.form == "telescoping":
        a, b = sim.net.operands(pop.name)
        f64 = torch.float64
        run.state[pop.name] = _RunningProduct(run.zeros(run.batch, a.size, dtype=f64), run.zeros(run.batch, b.size, dtype=f64),
                                              run.zeros(run.batch, pop.size))


def _from_start(pop: Product, t0: int, out: torch.Tensor) -> torch.Tensor:
    """An operand's outputs of the window from t0, zero before the product's start (a copy
    then: the operand's other consumers read the same tensor)."""
    if pop.start <= t0:
        return out
    out = out.clone()
    out[:pop.start - t0] = 0
    return out


def _step_product(sim, pop: Product, run: _Run, t0: int, w: int, current, outs):
    a, b = sim.net.operands(pop.name)
    view_a, view_b = sim.operand_views[pop.name]
    wb = w * run.batch
    # Each operand's outputs this window, its spikes masked when the operand is: all of them
    # sent (messages), read from the product's start on.
    out_a = _masked(operand_failure(pop, "a"), run.seed, t0, outs[a.name])
    out_b = _masked(operand_failure(pop, "b"), run.seed, t0, outs[b.name])
    for side, out in (("a", out_a), ("b", out_b)):
        run.messages[f"{pop.name}:{side}"] += _nonzero_steps(out).sum(dim=1)
    out_a, out_b = _from_start(pop, t0, out_a), _from_start(pop, t0, out_b)
    va, vb = view_a(out_a.reshape(wb, -1)), view_b(out_b.reshape(wb, -1))
    if pop.name in sim.coincidence_dtype:  # compiled counting and shifting around one matrix product
        dtype = sim.coincidence_dtype[pop.name]
        events = torch.empty(wb, dtype=torch.int64)
        cpu_kernels.product_events(va.reshape((wb, -1) + va.shape[-2:]).numpy(), vb.reshape((wb, -1) + vb.shape[-2:]).numpy(), events.numpy())
        run.events[pop.name] += events.reshape(w, run.batch).sum(dim=0)
        y = torch.matmul(va.to(dtype), vb.to(dtype)).reshape(wb, -1)
        out = torch.empty(y.shape, dtype=torch.int32)
        cpu_kernels.floor_shift(y.numpy(), pop.out_shift, out.numpy())
        return out.reshape(w, run.batch, -1)
    run.events[pop.name] += product_events(va, vb).reshape(w, run.batch).sum(dim=0)
    if pop.form == "coincidence":
        y = torch.matmul(va.to(torch.float64), vb.to(torch.float64))
        return coincidence_payload(y, pop.out_shift).reshape(w, run.batch, -1).to(torch.int32)
    state = run.state[pop.name]
    sums_a = state.sum_a + torch.cumsum(out_a, dim=0)
    sums_b = state.sum_b + torch.cumsum(out_b, dim=0)
    state.sum_a, state.sum_b = sums_a[-1], sums_b[-1]
    y = torch.matmul(view_a(sums_a.reshape(wb, -1)), view_b(sums_b.reshape(wb, -1))).reshape(w, run.batch, -1)
    out = []
    for i in range(w):
        if t0 + i < pop.start:  # its running sums count from its start
            out.append(torch.zeros_like(state.emitted))
            continue
        step = telescoping_payload(y[i], state.emitted, t0 + i - pop.start, pop.out_shift, pop.payload_bound)
        state.emitted += step
        out.append(step)
    return torch.stack(out).to(torch.int32)


# How each kind of population starts and steps (phase 2 of docs/semantics.md).
KINDS = {
    InputPopulation: (_start_input, _step_input),
    IFPopulation: (_start_if, _step_if),
    Readout: (_start_zero, _step_readout),
    HostOp: (_start_nothing, _step_host),
    Product: (_start_product, _step_product),
    Relay: (_start_nothing, _step_relay),
    Coincidence: (_start_nothing, _step_relay),  # a relay whose shift of 1 keeps only a + b = 2
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
    """Runs a quantized network. Populations are stepped a window of steps at a time, in
    topological order: a population's currents over the window depend only on what its sources
    emitted one step earlier, so each block computes a whole window in one matrix product, and
    only the neurons' own recurrence goes step by step."""

    def __init__(self, net: Network, numerics: Numerics, device: str = "cpu"):
        _exact_arithmetic()
        if device == "cpu":
            _keep_freed_memory()
        self.net = net
        self.numerics = numerics
        self.device = device_of(device)
        self.pops = net.populations()
        gathers = _Gathers(self.device)
        self.blocks = [_Synapses(net, block, self.device, gathers) for block in net.synapses()]
        readers: dict[tuple, Counter] = defaultdict(Counter)  # how many blocks read each gather of what a source sends
        for blk in self.blocks:
            if not blk.per_synapse and blk.fused is None:
                readers[blk.sent_key][id(blk.view)] += 1
        for blk in self.blocks:
            blk.view_readers = readers[blk.sent_key]
        self.incoming = {p.name: [blk for blk in self.blocks if blk.target == p.name] for p in self.pops}
        self.outgoing = {p.name: [blk for blk in self.blocks if blk.source == p.name] for p in self.pops}
        self.bias = {p.name: torch.as_tensor((p.bias_mant.astype(np.int64) << p.bias_exp).astype(np.int32), device=self.device)
                     for p in self.pops if getattr(p, "bias_mant", None) is not None}
        self.operand_views, self.coincidence_dtype = {}, {}
        for prod in (p for p in self.pops if isinstance(p, Product)):
            a, b = net.operands(prod.name)
            self.operand_views[prod.name] = (_Gather(prod.a_index, prod.a_shape, a.size, self.device),
                                             _Gather(prod.b_index, prod.b_shape, b.size, self.device))
            if compiled_loops(self.device) and prod.form == "coincidence" and tuple(prod.a_shape[:-2]) == tuple(prod.b_shape[:-2]):
                # Exact in float32 while k * max|A| * max|B| < 2^24, as a synapse block's sums.
                bound = prod.a_shape[-1] * a.max_payload() * b.max_payload()
                self.coincidence_dtype[prod.name] = torch.float32 if bound < EXACT_FLOAT32 else torch.float64
        # The last population (in stepping order) that reads each one: its outputs are dropped after.
        order = {p.name: k for k, p in enumerate(self.pops)}
        self.last_reader = {p.name: max((order[q] for q in net.graph.successors(p.name) if q in order), default=-1) for p in self.pops}
        for blk in self.blocks:
            self.last_reader[blk.source] = max(self.last_reader[blk.source], order[blk.target])
        self.done_after: list[list[str]] = [[] for _ in self.pops]  # per stepping position, the outputs no one reads after it
        for k, p in enumerate(self.pops):
            self.done_after[max(k, self.last_reader[p.name])].append(p.name)
        # Sizes the plan reads on every run (a graph walk and a product per population otherwise).
        self.neurons = sum(p.size for p in self.pops)
        self.largest_population = max((p.size for p in self.pops), default=0)
        self.largest_block = max((int(np.prod(b.view_shape)) + net.target_of(b).size for b in net.synapses()), default=0)
        self.pending_neurons = sum(blk.n_target for blk in self.blocks)

    def bytes_per_sample_step(self) -> int:
        """The memory one sample takes per step of a window, at the most: every population's
        output (int32) alive at once, plus the largest block's float view, float output and
        integer current, plus the largest population's summed input and its IF temporaries."""
        return 4 * self.neurons + 12 * self.largest_block + 24 * self.largest_population

    def bytes_per_sample(self, steps: int, record: bool) -> int:
        """What one sample keeps for the whole run: membranes and counts (int64), the currents
        each block carries into the next window (int32), rasters when recorded."""
        return 16 * self.neurons + 4 * self.pending_neurons + (steps * self.neurons if record else 0)

    def plan(self, samples: int, steps: int, record: bool, batch_size: int | None = None) -> tuple[int, int]:
        """(batch size, window steps). Each operation works on batch x window rows of a
        population; on a CPU the step's integer bookkeeping runs fastest when the largest
        population's rows take about TILE_BYTES (measured on the CIFAR-sized MST, 64 samples x 16
        steps: 6.3 to 8.1 s in batches of 4 x 16 steps, 11.4 s for 1 x 16, 15.3 s for 64 x 16),
        so the plan aims there, longest window first, within MEMORY_SHARE of the device's free
        memory."""
        budget = int(available_memory(self.device) * MEMORY_SHARE)
        state, per_step = self.bytes_per_sample(steps, record), self.bytes_per_sample_step()
        rows = max(1, TILE_BYTES // (4 * max(1, self.largest_population))) if self.device.type == "cpu" else samples * steps
        window = max(1, min(steps, rows))
        batch = batch_size or max(1, min(samples, rows // window, budget // max(1, state + window * per_step)))
        window = max(1, min(window, (budget - batch * state) // max(1, batch * per_step)))
        return batch, window

    def run(self, x: np.ndarray, steps: int, seed: int = 0, record: bool = False, progress: Callable[[float], None] | None = None,
            readout_start: int = 0, batch_size: int | None = None, window: int | None = None) -> RunResult:
        """Runs the samples x [N, ...] in batches (`batch_size`, else as many as fit the device)
        and windows of steps (`window`, else as many as fit); the result depends on neither.
        `progress` gets the number of samples done (fractions while a batch runs)."""
        n = x.shape[0]
        if batch_size is not None and batch_size < 1:
            raise NeurocompileError(f"--batch-size must be at least 1, got {batch_size}")
        size, planned = self.plan(n, steps, record, batch_size)
        window = window or planned
        parts = []
        with torch.inference_mode():
            for first in range(0, n, size):
                chunk = x[first:first + size]

                def steps_done(t: int, first=first, b=chunk.shape[0]) -> None:
                    if progress is not None:
                        progress(first + b * t / steps)

                parts.append(self._run_batch(chunk, steps, seed, record, readout_start, window, steps_done))
        return parts[0] if len(parts) == 1 else RunResult.concatenate(parts)

    def _run_batch(self, x: np.ndarray, steps: int, seed: int, record: bool, readout_start: int, window: int,
                   progress: Callable[[int], None]) -> RunResult:
        b = x.shape[0]
        run = _Run(b, steps, seed, record, self.device, readout_start)
        for pop in self.pops:
            KINDS[type(pop)][0](self, pop, run, x)
        for blk in self.blocks:
            run.pending[blk.name] = run.zeros(b, blk.n_target, dtype=torch.int32)
            if blk.per_synapse:
                run.events[blk.name] = run.zeros(b)
            if blk.sent_key not in run.sent_counts and not (blk.sent_key[1] is None and blk.source in run.counts):
                run.sent_counts[blk.sent_key] = run.zeros(b, blk.n_source)
        for prod in (p for p in self.pops if isinstance(p, Product)):
            run.events[prod.name] = run.zeros(b)
            run.messages[f"{prod.name}:a"], run.messages[f"{prod.name}:b"] = run.zeros(b), run.zeros(b)
        for t0 in range(0, steps, window):
            w = min(window, steps - t0)
            outs: dict[str, torch.Tensor] = {}
            for k, pop in enumerate(self.pops):
                current = self._currents(run, pop, outs, t0, w)
                step = KINDS[type(pop)][1]
                outs[pop.name] = step(self, pop, run, t0, w, current, outs) if isinstance(pop, Product) else step(self, pop, run, t0, w, current)
                if isinstance(pop, (HostOp, Relay)) and pop.start > t0:  # emits nothing before its start
                    outs[pop.name][:pop.start - t0] = 0
                for blk in self.outgoing[pop.name]:  # what this window puts on each of its blocks
                    outs[blk.name] = blk.sent(run, outs[pop.name], t0)
                for name in self.done_after[k]:
                    del outs[name]
                    run.fired.pop(name, None)
                    for key in [key for key in run.sent if key[0] == name]:
                        del run.sent[key]
            progress(t0 + w)
        return self._result(run)

    def _currents(self, run: _Run, pop, outs: dict[str, torch.Tensor], t0: int, w: int) -> torch.Tensor:
        """The population's input over the window [w, B, n]: bias plus every block's currents.
        Every population's steps read their input before the next population's are summed
        (none keeps it), so one buffer of the batch serves them all."""
        size = w * run.batch * pop.size
        if run.inputs is None or run.inputs.numel() < size:
            run.inputs = torch.empty(max(size, w * run.batch * self.largest_population), dtype=torch.int32, device=run.device)
        current = run.inputs[:size].view(w, run.batch, pop.size)
        if pop.name in self.bias:
            current.copy_(self.bias[pop.name].expand(current.shape))
        else:
            current.zero_()
        for blk in self.incoming[pop.name]:
            blk.deliver(run, outs.pop(blk.name), t0, current)
        if getattr(pop, "start", 0) > t0:  # no input before its start: an IF membrane stays at v_init (< threshold)
            current[:pop.start - t0] = 0
        return current

    def _result(self, run: _Run) -> RunResult:
        def host(v) -> np.ndarray:
            return v.cpu().numpy()

        readout = self.net.readout
        acc = host(run.state[readout.name])
        output = (acc / readout.scale).reshape((run.batch,) + tuple(self.net.meta["output_shape"]))
        counts = {name: host(c) for name, c in run.counts.items()}
        membranes = {name: host(run.state[name]) for name in run.counts}
        for blk in self.blocks:
            run.events[blk.name], run.messages[blk.name] = blk.totals(run)
        events = {name: host(e) for name, e in run.events.items()}
        messages = {name: host(m) for name, m in run.messages.items()}
        synops = sum(events.values(), np.zeros(run.batch, np.int64))
        rasters = {name: host(r) for name, r in run.rasters.items()} if run.record else None
        return RunResult("sim", run.steps, output, acc, counts, synops, run.saturated, membranes, rasters, events, messages)
