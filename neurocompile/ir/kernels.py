"""Linear synapse kernels: the weighted part of a synapse block.

A kernel maps a "view" tensor (the source population's neurons, gathered into some shape) to an
output tensor. Each kernel has one weight array; `apply` takes that array as an argument so the
same structure serves float weights (ANN mode), integer mantissas (the simulator's exact path:
integers carried in floating point, exact while every partial sum stays below 2^24 or 2^53), and
0/1 masks (connectivity counts).

Shapes: `apply(x, w)` takes x as [B, *view_shape] and returns [B, *out_shape(view_shape)].
`to_sparse(view_shape, w)` returns the [n_out, n_view] matrix the kernel applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import NeurocompileError

KERNELS: dict[str, type["Kernel"]] = {}


def register(cls):
    KERNELS[cls.kind] = cls
    return cls


@dataclass(eq=False)
class Kernel:
    kind: ClassVar[str] = ""
    weight: np.ndarray

    def out_shape(self, view_shape: tuple[int, ...]) -> tuple[int, ...]:
        raise NotImplementedError

    def apply(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def to_sparse(self, view_shape: tuple[int, ...], w: np.ndarray | None = None) -> sp.csr_matrix:
        raise NotImplementedError

    def entries(self, view_shape: tuple[int, ...]) -> int:
        """How many entries `to_sparse` stores, at most: known before building it."""
        raise NotImplementedError

    def rows(self, view_shape: tuple[int, ...], positions: np.ndarray, w: np.ndarray | None = None) -> sp.csr_matrix:
        """Rows `positions` (flat output positions) of `to_sparse`: [len(positions), n_view].
        Kernels whose matrix is too large to build override it to build only those rows."""
        return sp.csr_matrix(self.to_sparse(view_shape, w)[positions])

    def max_abs_row_sum(self, view_shape: tuple[int, ...], w: np.ndarray) -> float:
        """Largest sum of |weights| reaching one output: bounds the accumulator."""
        m = self.to_sparse(view_shape, np.abs(w))
        return float(m.sum(axis=1).max()) if m.shape[0] else 0.0

    def connectivity(self, view_shape: tuple[int, ...]) -> sp.csr_matrix:
        """The 0/1 pattern of nonzero synapses, [n_out, n_view]."""
        m = self.to_sparse(view_shape, (self.weight != 0).astype(np.float64))
        m.eliminate_zeros()
        return m

    def fanout(self, view_shape: tuple[int, ...], uses: np.ndarray | None = None) -> np.ndarray:
        """Number of nonzero synapses leaving each view element (flat, length n_view); with
        `uses` (per flat output, how many targets take it), each synapse counts that often."""
        m = self.connectivity(view_shape)
        if uses is None:
            return np.bincount(m.indices, minlength=int(np.prod(view_shape))).astype(np.int64)
        return np.rint(m.T @ uses.astype(np.float64)).astype(np.int64)

    # --- serialization: scalars go to graph.json, arrays to params.npz
    def scalars(self) -> dict[str, Any]:
        return {}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"weight": self.weight}

    @classmethod
    def from_parts(cls, scalars: dict[str, Any], arrays: dict[str, np.ndarray]) -> "Kernel":
        return cls(**arrays, **scalars)


@register
@dataclass(eq=False)
class Elementwise(Kernel):
    """y = w * x elementwise: one-to-one synapses (identity, residual, per-channel gains)."""

    kind: ClassVar[str] = "elementwise"

    def out_shape(self, view_shape):
        return tuple(view_shape)

    def apply(self, x, w):
        return x * w.reshape((1,) + w.shape)

    def to_sparse(self, view_shape, w=None):
        w = self.weight if w is None else w
        n = int(np.prod(view_shape))
        return sp.csr_matrix((np.broadcast_to(w, view_shape).ravel().astype(np.float64), (np.arange(n), np.arange(n))), shape=(n, n))

    def entries(self, view_shape):
        return int(np.prod(view_shape, dtype=np.int64))

    def rows(self, view_shape, positions, w=None):
        w = np.broadcast_to(self.weight if w is None else w, view_shape).ravel()
        positions = np.asarray(positions, np.int64)
        return sp.csr_matrix((w[positions].astype(np.float64), (np.arange(positions.size), positions)), shape=(positions.size, w.size))

    def max_abs_row_sum(self, view_shape, w):
        return float(np.abs(w).max()) if w.size else 0.0

    def fanout(self, view_shape, uses=None):
        nonzero = (np.broadcast_to(self.weight, view_shape) != 0).ravel().astype(np.int64)
        return nonzero if uses is None else nonzero * uses


@register
@dataclass(eq=False)
class Dense(Kernel):
    """y[..., o] = sum_i W[o, i] x[..., i]: a matrix on the last axis, shared by all leading
    positions (Gemm, MatMul with a constant, token-wise Linear)."""

    kind: ClassVar[str] = "dense"

    def out_shape(self, view_shape):
        if view_shape[-1] != self.weight.shape[1]:
            raise NeurocompileError(f"dense kernel expects {self.weight.shape[1]} inputs on the last axis, view has shape {list(view_shape)}")
        return tuple(view_shape[:-1]) + (self.weight.shape[0],)

    def apply(self, x, w):
        # One matrix product over all leading positions: numpy would otherwise loop over them.
        return (x.reshape(-1, x.shape[-1]) @ w.T).reshape(x.shape[:-1] + (w.shape[0],))

    def to_sparse(self, view_shape, w=None):
        w = self.weight if w is None else w
        lead = int(np.prod(view_shape[:-1]))
        block = sp.csr_matrix(w.astype(np.float64))
        return sp.kron(sp.identity(lead, format="csr"), block, format="csr")

    def entries(self, view_shape):
        return int(np.prod(view_shape[:-1], dtype=np.int64)) * int(self.weight.size)

    def rows(self, view_shape, positions, w=None):
        w = self.weight if w is None else w
        positions = np.asarray(positions, np.int64)
        n_out, n_in = w.shape
        lead, o = np.divmod(positions, n_out)
        block = sp.csr_matrix(w[o].astype(np.float64))  # row k: W[o_k, :], columns of lead 0
        block.indices = (block.indices + np.repeat(lead * n_in, np.diff(block.indptr))).astype(np.int64)
        return sp.csr_matrix((block.data, block.indices, block.indptr), shape=(positions.size, int(np.prod(view_shape))))

    def max_abs_row_sum(self, view_shape, w):
        return float(np.abs(w).sum(axis=1).max()) if w.size else 0.0

    def fanout(self, view_shape, uses=None):
        nonzero = (self.weight != 0).astype(np.int64)
        if uses is None:
            return np.tile(nonzero.sum(axis=0), int(np.prod(view_shape[:-1])))
        # Counts times 0/1 in float64 (BLAS; numpy's integer product has none): exact far below 2^53.
        return np.rint(uses.reshape(-1, nonzero.shape[0]).astype(np.float64) @ nonzero.astype(np.float64)).astype(np.int64).ravel()


@register
@dataclass(eq=False)
class Conv2d(Kernel):
    """ONNX Conv on an [N, C, H, W] view: weight [O, C/group, kh, kw]; pads (top, left, bottom,
    right) are zeros."""

    kind: ClassVar[str] = "conv2d"
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilations: tuple[int, int] = (1, 1)
    group: int = 1

    def __post_init__(self):
        self.strides = tuple(int(v) for v in self.strides)
        self.pads = tuple(int(v) for v in self.pads)
        self.dilations = tuple(int(v) for v in self.dilations)
        self.group = int(self.group)

    def out_shape(self, view_shape):
        if len(view_shape) != 4 or view_shape[1] != self.weight.shape[1] * self.group:
            raise NeurocompileError(
                f"conv2d kernel with weight {list(self.weight.shape)} and group {self.group} cannot take a view of shape {list(view_shape)}"
            )
        n, _, h, w = view_shape
        kh, kw = self.weight.shape[2:]
        (sh, sw), (dh, dw) = self.strides, self.dilations
        t, l, b, r = self.pads
        ho = (h + t + b - dh * (kh - 1) - 1) // sh + 1
        wo = (w + l + r - dw * (kw - 1) - 1) // sw + 1
        return (n, self.weight.shape[0], ho, wo)

    def _windows(self, x):
        """[B, N, C, H, W] -> [B*N, C, Ho, Wo, kh, kw] strided view of the padded input."""
        b, n, c, h, w = x.shape
        kh, kw = self.weight.shape[2:]
        (sh, sw), (dh, dw) = self.strides, self.dilations
        t, l, bo, r = self.pads
        xp = np.zeros((b * n, c, h + t + bo, w + l + r), x.dtype)  # np.pad is slow on small arrays
        xp[:, :, t: t + h, l: l + w] = x.reshape(b * n, c, h, w)
        win = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
        return win[:, :, ::sh, ::sw, ::dh, ::dw]

    def apply(self, x, w):
        b, view = x.shape[0], x.shape[1:]
        _, no, ho, wo = self.out_shape(view)
        win = self._windows(x)  # [BN, C, Ho, Wo, kh, kw]
        bn, g = win.shape[0], self.group
        k = w.shape[1] * w.shape[2] * w.shape[3]
        # im2col, one matrix product per group (BLAS): [g, BN*Ho*Wo, K] @ [g, K, O/g]
        cols = win.reshape(bn, g, w.shape[1], ho, wo, *w.shape[2:]).transpose(1, 0, 3, 4, 2, 5, 6).reshape(g, bn * ho * wo, k)
        y = np.matmul(cols, w.reshape(g, no // g, k).transpose(0, 2, 1))  # [g, BN*Ho*Wo, O/g]
        y = y.reshape(g, bn, ho, wo, no // g).transpose(1, 0, 4, 2, 3)
        return y.reshape(b, view[0], no, ho, wo)

    def to_sparse(self, view_shape, w=None):
        return self.rows(view_shape, None, w)

    def fanout(self, view_shape, uses=None):
        """Counted per kernel tap, not from the matrix (a Swin-T's patch embedding has 14 M
        synapses): input (c, y, x) feeds, through tap (ky, kx), every output channel of its
        group whose weight there is nonzero, if an output position puts that tap on (y, x).
        Outputs taken unevenly (`uses`) are counted from the matrix."""
        if uses is not None and uses.size and uses.min() != uses.max():
            return super().fanout(view_shape, uses)
        times = int(uses[0]) if uses is not None and uses.size else 1
        n, c, h, wd = view_shape
        _, _, ho, wo = self.out_shape(view_shape)
        o, cg, kh, kw = self.weight.shape
        nonzero = (self.weight != 0).reshape(self.group, o // self.group, cg, kh, kw).sum(axis=1).reshape(c, kh, kw)
        (sh, sw), (dh, dw) = self.strides, self.dilations
        t, l = self.pads[0], self.pads[1]
        rows = _tap_lands(h, kh, sh, dh, t, ho)  # [kh, h]: tap row ky lands on input row y
        cols = _tap_lands(wd, kw, sw, dw, l, wo)
        per_image = np.einsum("cab,ay,bx->cyx", nonzero.astype(np.int64), rows, cols)
        return np.tile(per_image.ravel(), n) * times

    def entries(self, view_shape):
        return int(np.prod(self.out_shape(view_shape), dtype=np.int64)) * int(np.prod(self.weight.shape[1:]))

    def rows(self, view_shape, positions, w=None):
        """Rows of the matrix (all, or the flat output `positions`), built straight in CSR:
        a row's taps in (channel, ky, kx) order have increasing input indices, so nothing is
        sorted, and taps in the padding are dropped."""
        w = self.weight if w is None else w
        n, c, h, wd = view_shape
        _, o, ho, wo = self.out_shape(view_shape)
        cg, kh, kw = w.shape[1:]
        (sh, sw), (dh, dw) = self.strides, self.dilations
        t, l = self.pads[0], self.pads[1]
        flat = np.arange(n * o * ho * wo, dtype=np.int64) if positions is None else np.asarray(positions, np.int64)
        rest, j = np.divmod(flat, wo)
        rest, i = np.divmod(rest, ho)
        nn_, oo = np.divmod(rest, o)
        yy = (i * sh - t)[:, None, None] + (np.arange(kh) * dh)[None, :, None]  # [P, kh, 1]
        xx = (j * sw - l)[:, None, None] + (np.arange(kw) * dw)[None, None, :]  # [P, 1, kw]
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < wd)  # [P, kh, kw]
        first = (nn_ * c + (oo // (o // self.group)) * cg) * (h * wd)  # [P]: the group's first input channel
        cols = first[:, None, None, None] + (np.arange(cg) * (h * wd))[None, :, None, None] + (yy * wd + xx)[:, None]  # [P, cg, kh, kw]
        vals = w[oo]  # [P, cg, kh, kw]
        keep = inside[:, None] & (vals != 0)
        indptr = np.concatenate([[0], np.cumsum(keep.reshape(flat.size, -1).sum(axis=1))])
        return sp.csr_matrix((vals[keep].astype(np.float64), cols[keep], indptr), shape=(flat.size, n * c * h * wd))

    def max_abs_row_sum(self, view_shape, w):
        return float(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max()) if w.size else 0.0

    def scalars(self):
        return {"strides": list(self.strides), "pads": list(self.pads), "dilations": list(self.dilations), "group": self.group}


@register
@dataclass(eq=False)
class Sparse(Kernel):
    """y = M x for an explicit sparse matrix M [n_out, n_in] (CSR structure fixed, values in
    `weight`): the general index-mapped form every linear map can take."""

    kind: ClassVar[str] = "sparse"
    indptr: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    shape: tuple[int, int] = (0, 0)

    def __post_init__(self):
        self.shape = (int(self.shape[0]), int(self.shape[1]))

    @classmethod
    def from_matrix(cls, m: sp.spmatrix) -> "Sparse":
        m = sp.csr_matrix(m)
        m.sum_duplicates()
        m.eliminate_zeros()
        m.sort_indices()
        itype = np.int32 if max(m.shape) < 2**31 and m.nnz < 2**31 else np.int64
        return cls(weight=m.data.astype(np.float64), indptr=m.indptr.astype(itype), indices=m.indices.astype(itype), shape=m.shape)

    def out_shape(self, view_shape):
        if int(np.prod(view_shape)) != self.shape[1]:
            raise NeurocompileError(f"sparse kernel expects {self.shape[1]} inputs, view has shape {list(view_shape)}")
        return (self.shape[0],)

    def to_sparse(self, view_shape=None, w=None):
        w = self.weight if w is None else w
        # Copies: callers may compact the matrix in place, which must not touch the kernel.
        return sp.csr_matrix((np.array(w, np.float64), self.indices.copy(), self.indptr.copy()), shape=self.shape)

    def entries(self, view_shape=None):
        return int(self.weight.size)

    def fanout(self, view_shape=None, uses=None):
        # From the stored structure directly: building the 0/1 matrix costs more than counting.
        nonzero = self.weight != 0
        cols = self.indices[nonzero]
        if uses is None:
            return np.bincount(cols, minlength=self.shape[1]).astype(np.int64)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))[nonzero]
        return np.rint(np.bincount(cols, weights=uses[rows].astype(np.float64), minlength=self.shape[1])).astype(np.int64)

    def apply(self, x, w):
        m = sp.csr_matrix((w, self.indices, self.indptr), shape=self.shape)
        flat = x.reshape(x.shape[0], -1)
        return np.asarray((m @ flat.T).T)

    def scalars(self):
        return {"shape": list(self.shape)}

    def arrays(self):
        return {"weight": self.weight, "indptr": self.indptr, "indices": self.indices}


def kernel_from_parts(kind: str, scalars: dict[str, Any], arrays: dict[str, np.ndarray]) -> Kernel:
    if kind not in KERNELS:
        raise NeurocompileError(f"unknown kernel kind '{kind}' (known: {', '.join(sorted(KERNELS))})")
    return KERNELS[kind].from_parts(scalars, arrays)


def _tap_lands(size: int, taps: int, stride: int, dilation: int, pad: int, outputs: int) -> np.ndarray:
    """[taps, size]: 1 where some output position i (0 <= i < outputs) puts tap k on input
    position i * stride - pad + k * dilation."""
    i = np.arange(size)[None, :] + pad - np.arange(taps)[:, None] * dilation  # i * stride
    return ((i % stride == 0) & (i >= 0) & (i // stride < outputs)).astype(np.int64)
