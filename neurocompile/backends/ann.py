"""ANN mode: the IR evaluated in floating point as the network it was converted from.

Each population applies its ANN activation (QCFS, clip, ReLU) to the sum of its synapse blocks'
outputs plus bias. Before lowering, blocks are evaluated through their frontend chains; after,
through their kernels. With `quantized=True` the kernels use the integer weights and biases the
quantize pass chose, mapped back to activation units: the difference is the quantization error.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Network
from ..ir.indexing import gather
from ..ir.nodes import InputPopulation, Product, SynapseBlock


def block_weight(net: Network, block: SynapseBlock, quantized: bool) -> np.ndarray:
    if not quantized:
        return block.kernel.weight
    src, dst = net.source_of(block), net.target_of(block)
    return block.w_mant * 2.0 ** block.w_shift / (src.value_per_unit() * dst.scale)


def apply_block(net: Network, block: SynapseBlock, x: np.ndarray, quantized: bool = False) -> np.ndarray:
    """Float output [B, n_target] of a block given its source's values [B, n_source]."""
    b = x.shape[0]
    if block.kernel is None:
        return block.chain.evaluate(x.reshape((b,) + net.source_of(block).shape)).reshape(b, -1)
    view = gather(x, block.in_index, block.view_shape)
    y = block.kernel.apply(view, block_weight(net, block, quantized)).reshape(b, -1)
    return gather(y, block.out_index, block.out_index.shape).reshape(b, -1) if block.out_index is not None else y


def product(net: Network, prod: Product, outputs: dict[str, np.ndarray], convert) -> np.ndarray:
    """A @ B on the operands' outputs [B, n] (converted by `convert` before multiplying)."""
    a, b = net.operands(prod.name)
    va = convert(gather(outputs[a.name], prod.a_index, prod.a_shape))
    vb = convert(gather(outputs[b.name], prod.b_index, prod.b_shape))
    return np.matmul(va, vb)


def population_bias(pop, quantized: bool) -> np.ndarray:
    if not quantized:
        return pop.bias
    return (pop.bias_mant.astype(np.float64) * 2.0 ** pop.bias_exp) / pop.scale


def evaluate(net: Network, x: np.ndarray, quantized: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """Runs the ANN on x [B, *input shape]. Returns {"pre": ..., "post": ...}: per population,
    the summed input (pre-activation) and the activation output, both [B, n]."""
    b = x.shape[0]
    pre: dict[str, np.ndarray] = {}
    post: dict[str, np.ndarray] = {}
    for pop in net.populations():
        if isinstance(pop, InputPopulation):
            post[pop.name] = x.reshape(b, -1).astype(np.float64)
            continue
        if isinstance(pop, Product):
            post[pop.name] = product(net, pop, post, lambda a: a).reshape(b, -1)
            continue
        total = np.zeros((b, pop.size)) + population_bias(pop, quantized)[None]
        for block in net.incoming(pop.name):
            total += apply_block(net, block, post[net.source_of(block).name], quantized)
        pre[pop.name] = total
        post[pop.name] = pop.ann(total)
    return {"pre": pre, "post": post}
