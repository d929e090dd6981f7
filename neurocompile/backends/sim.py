"""The bit-accurate simulator: numpy, batched over inputs.

It executes the integer semantics of docs/semantics.md. Kernels run in floating point on integer
values; the quantize pass bounded every accumulator (`acc_bound`), and a sum of integers whose
partial sums stay below 2^24 (float32) or 2^53 (float64) is exact in any order, so the result is
the exact integer. Lava executes the same semantics with its own fixed-point processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import NeurocompileError
from ..ir.connectivity import source_fanout
from ..ir.graph import Network
from ..ir.indexing import gather
from ..ir.nodes import IFPopulation, InputPopulation, Readout, SynapseBlock
from ..rng import rate_probability, rate_spikes, stream_id
from .result import RunResult

EXACT_FLOAT32 = 2**24
EXACT_FLOAT64 = 2**53


def shift(acc: np.ndarray, s: int) -> np.ndarray:
    """acc * 2^s for integer acc; a negative s is an arithmetic right shift (floor)."""
    return acc << s if s >= 0 else acc >> -s


def encode_input(pop: InputPopulation, x: np.ndarray, payload_bits: int) -> tuple[np.ndarray, int]:
    """Per-sample input [B, n] -> (graded payload or spike probability, #saturated elements)."""
    x = np.asarray(x, np.float64).reshape(x.shape[0], -1)
    if pop.graded:
        pmax = 2 ** (payload_bits - 1) - 1
        raw = np.rint(x * 2.0**pop.payload_frac_bits)
        return np.clip(raw, -pmax, pmax).astype(np.int64), int(np.count_nonzero(np.abs(raw) > pmax))
    return rate_probability(x), 0


@dataclass
class _Block:
    block: SynapseBlock
    source: str
    target: str
    dtype: type
    weight: np.ndarray
    fanout: np.ndarray

    def current(self, out: np.ndarray) -> np.ndarray:
        """Integer current [B, n_target] from the source's integer output [B, n_source]."""
        b = self.block
        view = gather(out, b.in_index, b.view_shape).astype(self.dtype)
        y = b.kernel.apply(view, self.weight).reshape(out.shape[0], -1)
        if b.out_index is not None:
            y = gather(y, b.out_index, b.out_index.shape).reshape(out.shape[0], -1)
        return shift(np.rint(y).astype(np.int64), b.w_shift)


class Simulator:
    def __init__(self, net: Network, payload_bits: int, membrane_bits: int):
        self.net = net
        self.payload_bits = payload_bits
        self.vmax = 2 ** (membrane_bits - 1) - 1
        self.pops = net.populations()
        self.blocks = []
        for block in net.synapses():
            if block.w_mant is None:
                raise NeurocompileError(f"synapse block '{block.name}' is not quantized; build the artifact first")
            dtype = np.float32 if block.acc_bound < EXACT_FLOAT32 else np.float64
            if block.acc_bound >= EXACT_FLOAT64:
                raise NeurocompileError(f"synapse block '{block.name}': accumulator bound {block.acc_bound} exceeds exact float64 range")
            src = net.source_of(block)
            self.blocks.append(_Block(block, src.name, net.target_of(block).name, dtype, block.w_mant.astype(dtype), source_fanout(block, src.size)))

    def run(self, x: np.ndarray, steps: int, seed: int = 0, record: bool = False, progress=None) -> RunResult:
        b = x.shape[0]
        state: dict[str, np.ndarray] = {}
        out: dict[str, np.ndarray] = {}
        counts: dict[str, np.ndarray] = {}
        rasters = {} if record else None
        bias = {}
        for pop in self.pops:
            if isinstance(pop, InputPopulation):
                encoded, saturated = encode_input(pop, x, self.payload_bits)
                stream = stream_id(pop.name)
            elif isinstance(pop, IFPopulation):
                state[pop.name] = np.full((b, pop.size), pop.v_init_int, np.int64)
                counts[pop.name] = np.zeros((b, pop.size), np.int64)
                bias[pop.name] = pop.bias_mant.astype(np.int64) << pop.bias_exp
                if record:
                    rasters[pop.name] = np.zeros((steps, b, pop.size), np.uint8)
            else:
                state[pop.name] = np.zeros((b, pop.size), np.int64)
                bias[pop.name] = pop.bias_mant.astype(np.int64) << pop.bias_exp
        buffers = {blk.block.name: None for blk in self.blocks}
        synops = np.zeros(b, np.int64)

        for t in range(steps):
            # 1. Every block delivers what it computed last step.
            current = {pop.name: bias.get(pop.name, 0) + np.zeros((b, pop.size), np.int64) for pop in self.pops if not isinstance(pop, InputPopulation)}
            for blk in self.blocks:
                if buffers[blk.block.name] is not None:
                    current[blk.target] += buffers[blk.block.name]
            # 2. Every population updates and emits.
            for pop in self.pops:
                if isinstance(pop, InputPopulation):
                    out[pop.name] = encoded if pop.graded else rate_spikes(seed, stream, t, encoded).astype(np.int64)
                elif isinstance(pop, IFPopulation):
                    v = np.clip(state[pop.name] + current[pop.name], -self.vmax, self.vmax)
                    spikes = v >= pop.threshold_int
                    state[pop.name] = v - spikes * pop.threshold_int
                    counts[pop.name] += spikes
                    out[pop.name] = spikes.astype(np.int64)
                    if record:
                        rasters[pop.name][t] = spikes
                else:
                    state[pop.name] += current[pop.name]
            # 3. Every block integrates this step's output, to deliver it next step.
            for blk in self.blocks:
                src_out = out[blk.source]
                buffers[blk.block.name] = blk.current(src_out)
                synops += (src_out != 0).astype(np.int64) @ blk.fanout
            if progress is not None:
                progress(t + 1)

        readout = self.net.readout
        acc = state[readout.name]
        output = (acc / readout.scale).reshape((b,) + tuple(self.net.meta["output_shape"]))
        membranes = {name: state[name] for name in counts}
        return RunResult("sim", steps, output, acc, counts, synops, saturated, membranes, rasters)
