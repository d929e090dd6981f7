"""The IR evaluated in floating point as the network it was converted from (ANN mode).

Each population applies its ANN activation (QCFS, clip, ReLU, softmax, layer norm, identity) to
the sum of its synapse blocks' outputs plus bias; a product multiplies its operands' outputs, and
a coincidence neuron the values its two unit-weight blocks deliver. With
`quantized=True` the kernels use the integer weights and biases the quantize pass chose, mapped
back to activation units: the difference is the quantization error. Calibration, quantization,
traffic and energy estimates all read the network's activations from here.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .graph import Network
from .indexing import gather, operand_views
from .nodes import Coincidence, HostOp, IFPopulation, InputPopulation, Product, Readout, Relay, SynapseBlock


def softmax_float(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def layernorm_float(x: np.ndarray, eps: float, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _if_activation(pop: IFPopulation, x: np.ndarray) -> np.ndarray:
    """The ANN activation an IF population converts."""
    if pop.activation == "relu":
        return np.maximum(x, 0.0)
    if pop.activation == "clip":
        return np.clip(x, 0.0, pop.threshold)
    up, L = pop.threshold, pop.levels
    return up * np.clip(np.floor(x / up * L + 0.5) / L, 0.0, 1.0)


def host_function(pop: HostOp, x: np.ndarray) -> np.ndarray:
    """Softmax or layer norm over the last axis of the population's shape; x [B, n]."""
    rows = x.reshape(x.shape[0], -1, pop.shape[-1])
    if pop.op == "softmax":
        return softmax_float(rows).reshape(x.shape)
    return layernorm_float(rows, pop.epsilon, pop.gamma, pop.beta).reshape(x.shape)


# What each kind of population does to its summed input in ANN mode.
ACTIVATIONS: dict[type, Callable[[object, np.ndarray], np.ndarray]] = {
    IFPopulation: _if_activation,
    HostOp: host_function,
    Readout: lambda pop, x: x,
    Relay: lambda pop, x: x,
}


def activation(pop, x: np.ndarray) -> np.ndarray:
    return ACTIVATIONS[type(pop)](pop, x)


def block_weight(net: Network, block: SynapseBlock, quantized: bool) -> np.ndarray:
    if not quantized:
        return block.kernel.weight
    src, dst = net.source_of(block), net.target_of(block)
    return block.w_mant * 2.0 ** block.w_shift / (src.value_per_unit() * dst.scale)


def apply_block(net: Network, block: SynapseBlock, x: np.ndarray, quantized: bool = False) -> np.ndarray:
    """Float output [B, n_target] of a block given its source's values [B, n_source]."""
    b = x.shape[0]
    view = gather(x, block.in_index, block.view_shape)
    y = block.kernel.apply(view, block_weight(net, block, quantized)).reshape(b, -1)
    return gather(y, block.out_index, block.out_index.shape).reshape(b, -1) if block.out_index is not None else y


def product(net: Network, prod: Product, outputs: dict[str, np.ndarray]) -> np.ndarray:
    """A @ B on the operands' outputs [B, n]."""
    a, b = net.operands(prod.name)
    va, vb = operand_views(prod, outputs[a.name], outputs[b.name])
    return np.matmul(va, vb)


def population_bias(pop, quantized: bool) -> np.ndarray:
    if not quantized:
        return pop.bias
    return (pop.bias_mant.astype(np.float64) * 2.0 ** pop.bias_exp) / pop.scale


def coincidences(inputs: list[np.ndarray]) -> np.ndarray:
    """The value of coincidence neurons from what their two blocks deliver: the product of the
    operands' values, which spikes of one step make 0 or the product of the thresholds."""
    a, b = inputs
    return a * b


BlockFunction = Callable[[SynapseBlock, np.ndarray], np.ndarray]


def evaluate(net: Network, x: np.ndarray, quantized: bool = False, apply: BlockFunction | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Runs the ANN on x [B, *input shape]. Returns {"pre": ..., "post": ...}: per population,
    the summed input (pre-activation) and the activation output, both [B, n]. `apply` replaces
    how a block maps its source's values to its target's input (the frontend's unlowered
    chains, in tests)."""
    b = x.shape[0]
    pre: dict[str, np.ndarray] = {}
    post: dict[str, np.ndarray] = {}
    for pop in net.populations():
        if isinstance(pop, InputPopulation):
            post[pop.name] = x.reshape(b, -1).astype(np.float64)
            continue
        if isinstance(pop, Product):
            post[pop.name] = product(net, pop, post).reshape(b, -1)
            continue
        if isinstance(pop, Coincidence):  # its blocks' weights are exactly 1 in both modes
            pre[pop.name] = post[pop.name] = coincidences([apply_block(net, blk, post[net.source_of(blk).name]) for blk in net.incoming(pop.name)])
            continue
        total = np.zeros((b, pop.size)) + population_bias(pop, quantized)[None]
        for block in net.incoming(pop.name):
            source = post[net.source_of(block).name]
            total += apply_block(net, block, source, quantized) if apply is None else apply(block, source)
        pre[pop.name] = total
        post[pop.name] = activation(pop, total)
    return {"pre": pre, "post": post}


def spike_rates(net: Network, post: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Expected spikes per step of every IF neuron, [B, n]: its ANN activation over its
    threshold, clipped to one spike per step (the rate a converted neuron settles at)."""
    return {p.name: np.clip(post[p.name] / p.threshold, 0.0, 1.0) for p in net.populations() if isinstance(p, IFPopulation)}
