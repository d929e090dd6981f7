"""Random Spike Masking: random draws compared with a ratio, cast, multiplied into a spike tensor.

In the ANN a mask is `x * (rand_like(x) > ratio)` (or `<`, or Bernoulli); on the chip it is a
synaptic failure. The frontend follows the draw symbolically (a `Uniform`, then a `Mask` with
its failure probability) and, at the multiplication, marks the spike tensor's term with a
`Failure` that the blocks and products it feeds inherit. Anything else done with a random
tensor is an error.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ...errors import NeurocompileError
from ..registry import attrs, describe, handles
from ..values import Affine, Apply, Failure, RandomValue, Term, is_const, shape_of
from .constants import require_const


@dataclass(frozen=True)
class Uniform(RandomValue):
    """Draws uniform in [low, high) of `shape`, fresh every time step."""

    shape: tuple[int, ...]
    low: float
    high: float
    group: str


@dataclass(frozen=True)
class Mask(RandomValue):
    """A 0/1 tensor that is 0 (the spike fails) with probability `p`."""

    shape: tuple[int, ...]
    p: float
    group: str


RANDOM_OPS = ("RandomUniformLike", "RandomUniform", "Bernoulli")


def _module_path(node) -> str:
    parts = [p for p in (node.name or node.output[0]).split("/") if p]
    return ".".join(parts[:-1]) if len(parts) > 1 else ".".join(parts)


def mask_names(nodes) -> dict[str, str]:
    """Each random draw's mask name (keyed by the draw's output), which `--mask-ratio KEY=R`
    matches against and its random stream is keyed by: the module path
    ("/blocks.0/attn/q_mask/RandomUniformLike" -> "blocks.0.attn.q_mask"), or, where one module
    draws several masks (a plain function masking q, k and the attention map), the module path
    and the node's own name ("blocks.0.attn.RandomUniformLike_1"): draws the model makes
    independently stay independent."""
    draws = [n for n in nodes if n.op_type in RANDOM_OPS]
    per_module = Counter(_module_path(n) for n in draws)
    names = {}
    for n in draws:
        path = _module_path(n)
        own = [p for p in (n.name or n.output[0]).split("/") if p][-1]
        names[n.output[0]] = path if per_module[path] == 1 else ".".join(p for p in (path, own) if p)
    taken = Counter(names.values())
    return {out: name if taken[name] == 1 else f"{name}:{out}" for out, name in names.items()}


def _group(ctx, node) -> str:
    return ctx.mask_names.get(node.output[0]) or _module_path(node)


def _check_ratio(node, p: float) -> float:
    if not 0.0 <= p < 1.0:
        raise NeurocompileError(f"{describe(node)}: mask ratio {p:g} is outside [0, 1) (a spike must be able to pass)")
    return p


@handles("RandomUniformLike")
def random_uniform_like(ctx, node, inputs):
    a = attrs(node)
    return [Uniform(shape_of(inputs[0]), float(a.get("low", 0.0)), float(a.get("high", 1.0)), _group(ctx, node))]


@handles("RandomUniform")
def random_uniform(ctx, node, inputs):
    a = attrs(node)
    return [Uniform(tuple(int(d) for d in a["shape"]), float(a.get("low", 0.0)), float(a.get("high", 1.0)), _group(ctx, node))]


@handles("Bernoulli")
def bernoulli(ctx, node, inputs):
    keep = np.asarray(require_const(node, inputs[0], "the probabilities"), np.float64)
    if keep.size == 0 or np.any(keep != keep.flat[0]):
        raise NeurocompileError(f"{describe(node)}: only a uniform keep probability is supported")
    return [Mask(tuple(keep.shape), _check_ratio(node, 1.0 - float(keep.flat[0])), _group(ctx, node))]


# Comparison of a draw with a ratio: whether the draw on the left keeps the spike when it is larger.
COMPARISONS = {"Greater": np.greater, "GreaterOrEqual": np.greater_equal, "Less": np.less, "LessOrEqual": np.less_equal}


@handles(*COMPARISONS)
def compare(ctx, node, inputs):
    a, b = inputs
    if is_const(a) and is_const(b):
        return [np.asarray(COMPARISONS[node.op_type](a, b))]
    if isinstance(a, Uniform) and is_const(b):
        draw, ratio, keep_above = a, b, node.op_type.startswith("Greater")
    elif isinstance(b, Uniform) and is_const(a):
        draw, ratio, keep_above = b, a, node.op_type.startswith("Less")
    else:
        raise NeurocompileError(f"{describe(node)}: {node.op_type} on a spiking tensor is not supported (only a random draw compared with a constant ratio)")
    ratio = np.asarray(ratio, np.float64)
    if ratio.size == 0 or np.any(ratio != ratio.flat[0]):
        raise NeurocompileError(f"{describe(node)}: the mask ratio must be one constant")
    r = float(ratio.flat[0])
    frac = (r - draw.low) / (draw.high - draw.low)
    if not 0.0 <= frac <= 1.0:
        raise NeurocompileError(f"{describe(node)}: mask ratio {r:g} is outside [0, 1) (the draws lie in [{draw.low:g}, {draw.high:g}))")
    return [Mask(draw.shape, _check_ratio(node, frac if keep_above else 1.0 - frac), draw.group)]


def apply_mask(node, x, mask: Mask) -> Affine:
    """x * mask: the spikes of x fail with the mask's probability."""
    if not isinstance(x, Affine) or len(x.terms) != 1 or np.any(x.offset):
        raise NeurocompileError(f"{describe(node)}: a random mask must multiply one population's spikes, not a constant or a sum")
    term = x.terms[0]
    if any(isinstance(op, Apply) for op in term.ops):
        raise NeurocompileError(f"{describe(node)}: a random mask must multiply a population's spikes, not a weighted sum of them")
    if term.failure is not None:
        raise NeurocompileError(f"{describe(node)}: the spikes of '{term.source}' are masked twice")
    if tuple(mask.shape) != tuple(x.shape):
        raise NeurocompileError(f"{describe(node)}: the mask's shape {list(mask.shape)} differs from the tensor's {list(x.shape)}")
    return Affine(x.shape, [Term(term.source, term.source_shape, term.ops, Failure(mask.group, mask.p))], x.offset)
