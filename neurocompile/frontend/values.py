"""Symbolic values of the frontend.

Between two nonlinearities a converted network is linear, so the frontend executes the ONNX graph
on symbolic values: a tensor is either a constant (a numpy array) or an `Affine` expression

    value = sum_k chain_k(source_k) + offset

where each source is a population (input, IF neurons) and each chain is a sequence of linear
ops. Layout ops (Reshape, Transpose, Slice, Concat, Gather, ...) become index maps, per-element
constants (BatchNorm, Mul, Div) become scales, Conv/Gemm/MatMul/pools become kernels, biases go to
the offset. A nonlinearity turns the expression into a population fed by one synapse block per term.

Chains are kept in a normal form: [Gather] [Scale] ( Kernel [Gather] [Scale] )*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence, Union

import numpy as np

from ..ir.kernels import Kernel
from ..ir.nodes import size


@dataclass(frozen=True, eq=False)
class Gather:
    """out.flat[k] = in.flat[index.flat[k]], or 0 where index is -1; `index` has the out shape."""

    index: np.ndarray


@dataclass(frozen=True, eq=False)
class Scale:
    """out = in * w, with w of the full current shape."""

    w: np.ndarray


@dataclass(frozen=True, eq=False)
class Apply:
    """out = kernel(in), `in_shape` being the shape the kernel sees."""

    kernel: Kernel
    in_shape: tuple[int, ...]


LinearOp = Union[Gather, Scale, Apply]


def compose_index(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Index map of `gather(gather(x, outer), inner)`: inner indexes into outer's result."""
    flat = outer.ravel()
    return np.where(inner >= 0, flat[np.maximum(inner, 0)], -1).astype(np.int64)


def gather_values(values: np.ndarray, index: np.ndarray, fill=0.0) -> np.ndarray:
    flat = values.ravel()
    return np.where(index >= 0, flat[np.maximum(index, 0)], fill)


@dataclass(frozen=True)
class Failure:
    """Random spike masking on a term: each spike of its source fails with probability `p`;
    `group` names the mask (its ONNX node), whose draws every consumer of the mask shares."""

    group: str
    p: float


@dataclass(eq=False)
class Term:
    """One source population seen through a chain of linear ops, its spikes possibly masked."""

    source: str
    source_shape: tuple[int, ...]
    ops: tuple[LinearOp, ...] = ()
    failure: Failure | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        for op in reversed(self.ops):
            if isinstance(op, Gather):
                return tuple(op.index.shape)
            if isinstance(op, Scale):
                return tuple(op.w.shape)
            return op.kernel.out_shape(op.in_shape)
        return self.source_shape

    def then_gather(self, index: np.ndarray) -> "Term":
        index = np.asarray(index, np.int64)
        if index.shape == self.shape and np.array_equal(index.ravel(), np.arange(index.size)):
            return self
        ops = list(self.ops)
        scale = ops.pop() if ops and isinstance(ops[-1], Scale) else None
        # Gathers move before scales: the scale follows its elements (indexed by the new
        # gather, in the space the scale lives in, before gathers are composed).
        moved = Scale(gather_values(scale.w, index)) if scale is not None else None
        if ops and isinstance(ops[-1], Gather):
            index = compose_index(ops.pop().index, index)
        ops.append(Gather(index))
        if moved is not None:
            ops.append(moved)
        return Term(self.source, self.source_shape, tuple(ops), self.failure)

    def then_scale(self, w: np.ndarray) -> "Term":
        w = np.broadcast_to(np.asarray(w, np.float64), self.shape)
        if np.all(w == 1.0):
            return self
        ops = list(self.ops)
        if ops and isinstance(ops[-1], Scale):
            w = ops.pop().w * w
        ops.append(Scale(np.array(w)))
        return Term(self.source, self.source_shape, tuple(ops), self.failure)

    def then_kernel(self, kernel: Kernel) -> "Term":
        return Term(self.source, self.source_shape, self.ops + (Apply(kernel, self.shape),), self.failure)

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """Float evaluation on a batch [B, *source_shape] (the frontend's own reference)."""
        b = x.shape[0]
        for op in self.ops:
            if isinstance(op, Gather):
                flat = np.concatenate([x.reshape(b, -1), np.zeros((b, 1))], axis=1)
                x = flat[:, np.where(op.index >= 0, op.index, flat.shape[1] - 1).ravel()].reshape((b,) + op.index.shape)
            elif isinstance(op, Scale):
                x = x * op.w[None]
            else:
                x = op.kernel.apply(x.reshape((b,) + op.in_shape), op.kernel.weight)
        return x.reshape((b,) + self.shape)


@dataclass(eq=False)
class Affine:
    """sum of terms + offset, all of `shape`."""

    shape: tuple[int, ...]
    terms: list[Term] = field(default_factory=list)
    offset: np.ndarray = field(default_factory=lambda: np.zeros(()))

    def __post_init__(self):
        self.shape = tuple(int(d) for d in self.shape)
        self.offset = np.broadcast_to(np.asarray(self.offset, np.float64), self.shape)

    @classmethod
    def of_population(cls, name: str, shape: tuple[int, ...]) -> "Affine":
        return cls(shape, [Term(name, tuple(shape))], np.zeros(()))


class RandomValue:
    """Base of the random tensors of spike masking (frontend/ops/masks.py): symbolic, never
    evaluated."""


Value = Union[np.ndarray, Affine, RandomValue]


def is_const(v) -> bool:
    return isinstance(v, np.ndarray)


def shape_of(v: Value) -> tuple[int, ...]:
    return tuple(v.shape)


def layout(fn: Callable[..., np.ndarray], inputs: Sequence[Value]) -> Value:
    """Applies a pure data-movement function to values, constants and index maps alike.

    `fn(*arrays, fill=...)` must only move, copy or drop elements, filling new positions with
    `fill`; applied to an arange it yields the index map that the terms then gather with."""
    if all(is_const(v) for v in inputs):
        return fn(*inputs, fill=0)
    arrays = [v.offset if isinstance(v, Affine) else np.asarray(v, np.float64) for v in inputs]
    offset = fn(*arrays, fill=0.0)
    terms: list[Term] = []
    for k, v in enumerate(inputs):
        if not isinstance(v, Affine) or not v.terms:
            continue
        probes = [np.arange(size(v.shape), dtype=np.int64).reshape(v.shape) if j == k else np.full(shape_of(u), -1, np.int64) for j, u in enumerate(inputs)]
        index = np.asarray(fn(*probes, fill=-1), np.int64)
        terms.extend(t.then_gather(index) for t in v.terms)
    return Affine(offset.shape, terms, offset)


def broadcast(v: Value, shape: tuple[int, ...]) -> Value:
    if shape_of(v) == tuple(shape):
        return v
    return layout(lambda a, fill: np.broadcast_to(a, shape).copy(), [v])


def add(a: Value, b: Value) -> Value:
    if is_const(a) and is_const(b):
        return a + b
    shape = np.broadcast_shapes(shape_of(a), shape_of(b))
    a, b = broadcast(a, shape), broadcast(b, shape)
    terms, offset = [], np.zeros(shape)
    for v in (a, b):
        if isinstance(v, Affine):
            terms += v.terms
            offset = offset + v.offset
        else:
            offset = offset + v
    return Affine(shape, terms, offset)


def scale(a: Value, w: np.ndarray) -> Value:
    if is_const(a):
        return a * w
    shape = np.broadcast_shapes(shape_of(a), np.shape(w))
    a = broadcast(a, shape)
    w = np.broadcast_to(np.asarray(w, np.float64), shape)
    return Affine(shape, [t.then_scale(w) for t in a.terms], a.offset * w)


def fan_in_map(term: Term) -> np.ndarray:
    """How many source neurons (at most) each element of the term reads, [*term.shape]: ones
    carried through the term's ops with every nonzero weight counting 1."""
    counts = np.ones(term.source_shape)
    for op in term.ops:
        if isinstance(op, Gather):
            counts = gather_values(counts, op.index)
        elif isinstance(op, Scale):
            counts = counts * (op.w != 0)
        else:
            counts = op.kernel.apply(counts.reshape((1,) + op.in_shape), (op.kernel.weight != 0).astype(np.float64))[0]
    return counts.reshape(term.shape)


def apply_kernel(a: Affine, kernel: Kernel) -> Affine:
    """The kernel on every term; the offset (a constant) is transformed numerically."""
    offset = kernel.apply(np.array(a.offset)[None], kernel.weight)[0]
    return Affine(offset.shape, [t.then_kernel(kernel) for t in a.terms], offset)
