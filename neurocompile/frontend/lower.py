"""Lower each synapse block's linear chain to `in_index -> kernel -> out_index`.

Rules, tried in order for each chain (normal form: [Gather][Scale](Kernel[Gather][Scale])*):
- no kernel: an elementwise kernel (the scale, or ones) behind the gather;
- one kernel: scales before and after it fold into its weights (BatchNorm, constant factors)
  when they are per input or output channel; gathers stay as index maps; output channels that no
  target reads are pruned;
- anything else (two kernels in a row, a scale that varies along positions): the whole chain is
  composed into one explicit sparse matrix.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import NeurocompileError
from ..ir.graph import Network
from ..ir.kernels import Conv2d, Dense, Elementwise, Kernel, Sparse
from ..ir.nodes import size
from .values import Apply, Gather, Scale, Term

MAX_SPARSE_NNZ = 50_000_000


def lower_linear_chains(net: Network, chains: dict[str, Term]) -> None:
    """Gives every synapse block of `net` the lowered form of its chain (block name -> chain)."""
    for block in net.synapses():
        view_shape, in_index, kernel, out_index = lower_chain(chains[block.name], block.name)
        block.view_shape, block.in_index, block.kernel, block.out_index = view_shape, in_index, kernel, out_index


def _split(ops):
    """(pre_gather, pre_scale, kernels) where kernels = [(Apply, post_gather, post_scale)]."""
    pre_g = pre_s = None
    kernels = []
    for op in ops:
        if isinstance(op, Apply):
            kernels.append([op, None, None])
        elif isinstance(op, Gather):
            if kernels:
                kernels[-1][1] = op.index
            else:
                pre_g = op.index
        else:
            if kernels:
                kernels[-1][2] = op.w
            else:
                pre_s = op.w
    return pre_g, pre_s, kernels


def _identity(index: np.ndarray | None, n_in: int) -> bool:
    """True when the gather reads all n_in elements in order (a pure reshape)."""
    return index is None or (index.size == n_in and np.array_equal(index.ravel(), np.arange(n_in)))


def lower_chain(term: Term, where: str = "") -> tuple[tuple[int, ...], np.ndarray | None, Kernel, np.ndarray | None]:
    pre_g, pre_s, kernels = _split(term.ops)
    if not kernels:
        view = term.shape
        weight = np.ones(view) if pre_s is None else np.asarray(pre_s, np.float64)
        return view, None if _identity(pre_g, size(term.source_shape)) else pre_g, Elementwise(weight=weight.copy()), None
    if len(kernels) == 2:
        merged = _compose_depthwise_conv(kernels[0], kernels[1])
        if merged is not None:
            kernels = [merged]
    if len(kernels) > 1:
        absorbed = _dense_absorbs_prefix(term, kernels[-1], where)
        if absorbed is not None:
            return absorbed
    if len(kernels) == 1:
        (apply, post_g, post_s), = kernels
        folded = _fold_single(apply.kernel, apply.in_shape, pre_s, post_g, post_s)
        if folded is not None:
            kernel, post_g = folded
            n_out = size(kernel.out_shape(apply.in_shape))
            return apply.in_shape, None if _identity(pre_g, size(term.source_shape)) else pre_g, kernel, None if _identity(post_g, n_out) else post_g
    return tuple(term.source_shape), None, Sparse.from_matrix(chain_matrix(term, where)), None


DENSE_ABSORB_MAX = 1 << 22  # entries of a dense matrix that absorbs the ops before it


def _dense_absorbs_prefix(term: Term, last, where: str = ""):
    """A dense kernel that sees the whole tensor at once (no shared leading positions) is any
    linear map of its input: it absorbs everything before it (e.g. GlobalAveragePool -> Flatten
    -> Gemm becomes one dense matrix on the source)."""
    apply, post_g, post_s = last
    if not isinstance(apply.kernel, Dense) or size(apply.in_shape[:-1]) != 1:
        return None
    n_src = size(term.source_shape)
    if apply.kernel.weight.shape[0] * n_src > DENSE_ABSORB_MAX:
        return None
    position = next(i for i, op in enumerate(term.ops) if op is apply)
    prefix = chain_matrix(Term(term.source, term.source_shape, term.ops[:position]), where)  # [K, n_src]
    weight = np.ascontiguousarray((prefix.T @ apply.kernel.weight.T).T)
    view = (1, n_src)
    folded = _fold_single(Dense(weight=weight), view, None, post_g, post_s)
    if folded is None:
        return None
    kernel, post_g = folded
    return view, None, kernel, None if _identity(post_g, size(kernel.out_shape(view))) else post_g


def _compose_depthwise_conv(first, second):
    """A depthwise convolution (pooling) followed by a convolution is one strided convolution,
    when the pooling windows do not overlap: zero padding of the pooled tensor then lies over
    zero padding of the input. Returns the merged [Apply, post_gather, post_scale] or None."""
    (a1, g1, s1), (a2, g2, s2) = first, second
    k1, k2 = a1.kernel, a2.kernel
    if g1 is not None or not isinstance(k1, Conv2d) or not isinstance(k2, Conv2d):
        return None
    n, c, h, w = a1.in_shape
    if k1.group != c or k1.weight.shape[0] != c or k1.dilations != (1, 1) or k2.dilations != (1, 1):
        return None
    kh1, kw1 = k1.weight.shape[2:]
    (sh1, sw1), (t1, l1, _, _) = k1.strides, k1.pads
    h1, w1 = a1.kernel.out_shape(a1.in_shape)[2:]
    if kh1 > sh1 or kw1 > sw1 or sh1 * h1 - t1 < h or sw1 * w1 - l1 < w:
        return None
    gain = np.ones(c)
    if s1 is not None:
        per_c = np.asarray(s1).reshape(n, c, -1).transpose(1, 0, 2).reshape(c, -1)
        if not np.all(per_c == per_c[:, :1]):
            return None
        gain = per_c[:, 0]
    w2 = k2.weight
    o, cg, kh2, kw2 = w2.shape
    og = o // k2.group
    merged = np.zeros((o, cg, sh1 * (kh2 - 1) + kh1, sw1 * (kw2 - 1) + kw1))
    channel = (np.arange(o)[:, None] // og) * cg + np.arange(cg)[None, :]  # input channel of each (o, c_local)
    pool = k1.weight[:, 0] * gain[:, None, None]  # [C, kh1, kw1]
    for a in range(kh2):
        for b in range(kw2):
            merged[:, :, sh1 * a: sh1 * a + kh1, sw1 * b: sw1 * b + kw1] += w2[:, :, a, b][:, :, None, None] * pool[channel]
    (sh2, sw2), (t2, l2, _, _) = k2.strides, k2.pads
    out_h, out_w = a2.kernel.out_shape(a2.in_shape)[2:]
    stride = (sh1 * sh2, sw1 * sw2)
    top, left = t1 + sh1 * t2, l1 + sw1 * l2
    bottom = (out_h - 1) * stride[0] + merged.shape[2] - h - top
    right = (out_w - 1) * stride[1] + merged.shape[3] - w - left
    if bottom < 0 or right < 0:
        return None
    conv = Conv2d(weight=merged, strides=stride, pads=(top, left, bottom, right), group=k2.group)
    if conv.out_shape(a1.in_shape) != a2.kernel.out_shape(a2.in_shape):
        return None
    return [Apply(conv, a1.in_shape), g2, s2]


def product_entries(a: sp.csr_matrix, b: sp.csr_matrix) -> int:
    """At most how many entries a @ b stores, found in O(nnz(a)) without forming it: row i of
    the product has at most the summed lengths of the rows of b that row i of a combines, and at
    most b's column count."""
    pattern = sp.csr_matrix((np.ones(a.nnz), a.indices, a.indptr), shape=a.shape)
    per_row = pattern @ np.diff(b.indptr).astype(np.float64)
    return int(np.minimum(per_row, b.shape[1]).sum())


def chain_matrix(term: Term, where: str = "") -> sp.csr_matrix:
    """The chain as one matrix [n_out, n_source]. Each step's size is bounded before it is
    built: a chain whose composition exceeds MAX_SPARSE_NNZ is refused, not allocated."""
    def checked(entries: int) -> None:
        if entries > MAX_SPARSE_NNZ:
            raise NeurocompileError(
                f"synapse block '{where}': its linear chain ({' -> '.join(type(o).__name__ for o in term.ops)}) composes into up to "
                f"{entries} explicit synapses, above the limit of {MAX_SPARSE_NNZ}; put an activation between the two linear layers")

    m = sp.identity(size(term.source_shape), format="csr")
    for op in term.ops:
        if isinstance(op, Gather):
            rows = np.flatnonzero(op.index.ravel() >= 0)
            left = sp.csr_matrix((np.ones(rows.size), (rows, op.index.ravel()[rows])), shape=(op.index.size, m.shape[0]))
        elif isinstance(op, Scale):
            left = sp.diags(op.w.ravel(), format="csr")
        else:
            checked(op.kernel.entries(op.in_shape))
            left = op.kernel.to_sparse(op.in_shape)
        checked(product_entries(left, m))
        m = left @ m
    m = sp.csr_matrix(m)
    m.eliminate_zeros()
    checked(m.nnz)
    return m


def _channel_of(kernel: Kernel, in_shape) -> tuple[np.ndarray, int]:
    """For each flat output element, its output channel; and the channel count."""
    out = kernel.out_shape(in_shape)
    if isinstance(kernel, Dense):
        n_ch = out[-1]
        return np.arange(size(out)) % n_ch, n_ch
    n, o, h, w = out
    return (np.arange(size(out)) // (h * w)) % o, o


def _per_channel(values: np.ndarray, channel: np.ndarray, n_ch: int) -> np.ndarray | None:
    """The one value each channel has, or None when a channel has several. Channels absent
    from `channel` get NaN (nothing reads them)."""
    out = np.full(n_ch, np.nan)
    out[channel] = values
    return out if np.array_equal(out[channel], values) else None


def _fold_single(kernel: Kernel, in_shape, pre_s, post_g, post_s):
    """Folds pre/post scales into the kernel's weights. Returns (kernel, post_gather) or None."""
    if not isinstance(kernel, (Dense, Conv2d)):
        return None
    w = np.array(kernel.weight, np.float64)
    if pre_s is not None:
        pre = np.broadcast_to(pre_s, in_shape)
        if isinstance(kernel, Dense):
            rows = pre.reshape(-1, in_shape[-1])
            if not np.all(rows == rows[:1]):
                return None
            w = w * rows[0][None, :]
        else:
            per_c = pre.transpose(1, 0, 2, 3).reshape(in_shape[1], -1)
            if not np.all(per_c == per_c[:, :1]):
                return None
            cg, og = w.shape[1], w.shape[0] // kernel.group
            in_ch = (np.arange(w.shape[0])[:, None] // og) * cg + np.arange(cg)[None, :]
            w = w * per_c[in_ch, 0][:, :, None, None]
    channel, n_ch = _channel_of(kernel, in_shape)
    n_y = channel.size
    gather = np.arange(n_y) if post_g is None else post_g.ravel()
    read = gather >= 0
    if post_s is not None:
        gains = _per_channel(np.asarray(post_s, np.float64).ravel()[read], channel[gather[read]], n_ch)
        if gains is None:
            return None
        w = w * np.nan_to_num(gains, nan=0.0).reshape((-1,) + (1,) * (w.ndim - 1))
    if isinstance(kernel, Dense):
        used = np.zeros(n_ch, bool)
        used[channel[gather[read]]] = True
        if not used.all():  # prune outputs no target reads (e.g. the q/k/v split of one Linear)
            remap = np.cumsum(used) - 1
            w = w[used]
            positions = gather // n_ch
            new_gather = np.where(read, positions * used.sum() + remap[channel[np.maximum(gather, 0)]], -1)
            return Dense(weight=w), new_gather.reshape(post_g.shape if post_g is not None else (-1,))
        return Dense(weight=w), post_g
    return Conv2d(weight=w, strides=kernel.strides, pads=kernel.pads, dilations=kernel.dilations, group=kernel.group), post_g

