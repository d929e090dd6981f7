"""Quantize the IR to the target's fixed point (the integer fields of every node).

Per IF population, the membrane scale maps the threshold to `threshold_units` exactly, so that
all rounding goes into weights and biases; where the worst-case input of a step (every synapse at
its largest input at once) would not fit `current_bits` at that scale, the population's threshold
and scale are halved until it does (`threshold_exp`: a coarser membrane, never a refusal while a
threshold of at least 2^threshold_shift remains). Per synapse block,
the real weight in membrane units, R = W * (value of one source unit) * (target scale), becomes an
8-bit mantissa with one shift for the whole block. Biases become a mantissa and a per-population
exponent. The worst-case per-step input of every neuron is bounded here so that the integer
arithmetic of both backends is exact (docs/semantics.md).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import NeurocompileError
from ..ir.graph import Network
from ..ir.interpret import evaluate
from ..ir.nodes import HostOp, IFPopulation, InputPopulation, Product, Readout, Relay
from ..numerics import Numerics
from ..semantics.hostops import LAYERNORM_FRAC, SOFTMAX_OUT_FRAC, exp_constant
from ..targets import Target


def input_frac_bits(num: Numerics, input_range: float) -> int:
    """Fraction bits for graded input payloads: the largest that keeps input_range in range."""
    if not math.isfinite(input_range) or input_range <= 0:
        raise NeurocompileError(f"input range {input_range} must be positive and finite")
    if input_range > 2.0**63:
        unit = 2.0 ** math.ceil(math.log2(input_range / num.input_payload_max))
        raise NeurocompileError(f"input range {input_range:g} is above 2^63: one payload unit would be {unit:g}, every smaller input would read 0")
    return int(math.floor(math.log2(num.input_payload_max / input_range)))


def quantize_block(R: np.ndarray, num: Numerics) -> tuple[np.ndarray, int, int]:
    """Real weights R (membrane units) -> (mantissa, shift, saturated count)."""
    mmax = num.weight_mantissa_max
    peak = float(np.abs(R).max()) if R.size else 0.0
    shift = math.ceil(math.log2(peak / mmax)) if peak > 0 else num.weight_shift_min
    shift = min(max(shift, num.weight_shift_min), num.weight_shift_max)
    scaled = np.rint(R / 2.0**shift)
    saturated = int(np.count_nonzero((scaled > mmax) | (scaled < -mmax - 1)))
    return np.clip(scaled, -mmax - 1, mmax).astype(np.int32), shift, saturated


def quantize_bias(b: np.ndarray, num: Numerics) -> tuple[np.ndarray, int, int]:
    """Bias in membrane units -> (mantissa, exponent, saturated count)."""
    mmax = num.bias_mantissa_max
    peak = float(np.abs(b).max()) if b.size else 0.0
    exp = 0
    while exp < num.bias_exp_max and peak / 2.0**exp > mmax:
        exp += 1
    scaled = np.rint(b / 2.0**exp)
    saturated = int(np.count_nonzero((scaled > mmax) | (scaled < -mmax - 1)))
    return np.clip(scaled, -mmax - 1, mmax).astype(np.int32), exp, saturated


def _accumulator_scale(net: Network, pop, limit: int, num: Numerics) -> float:
    """Populations without a threshold (readout, host ops) may take any scale. Bigger gives
    their input more resolution (weight precision does not depend on it: each block's shift
    adapts), up to three limits: the worst-case input per step (every synapse at its largest
    payload, plus the bias) below half of `limit`; every weight within the largest mantissa and
    shift; every bias within the largest bias mantissa and exponent."""
    bias_peak = float(np.abs(pop.bias).max()) if pop.bias.size else 0.0
    per_unit = bias_peak
    caps = []
    if bias_peak > 0:
        caps.append(num.bias_mantissa_max * 2.0 ** num.bias_exp_max / bias_peak)
    for block in net.incoming(pop.name):
        src = net.source_of(block)
        w = np.abs(block.kernel.weight)
        per_unit += block.kernel.max_abs_row_sum(block.view_shape, w) * src.value_per_unit() * src.max_payload()
        if w.size and w.max() > 0:
            caps.append(num.weight_mantissa_max * 2.0 ** num.weight_shift_max / (w.max() * src.value_per_unit()))
    if per_unit == 0:
        return 1.0
    return min([(limit // 2) / per_unit] + caps)


def _spare_bits(net: Network, pop, num: Numerics) -> int:
    """How many low bits of a graded source's payload its IF consumers cannot resolve: the
    smallest shift of a block holds real weights down to 127 * 2^shift_min at full mantissa, so
    a payload unit worth less than that only adds noise below the weights' precision. (Host ops
    fed by the source adapt their own scale instead.)"""
    floor_weight = num.weight_mantissa_max * 2.0 ** num.weight_shift_min
    spare = 0
    for block in net.outgoing(pop.name):
        target = net.target_of(block)
        peak = float(np.abs(block.kernel.weight).max()) if block.kernel.weight.size else 0.0
        if isinstance(target, IFPopulation) and peak > 0:
            spare = max(spare, math.ceil(math.log2(floor_weight / (peak * pop.value_per_unit() * target.scale))))
    return spare


def _quantize_product(net: Network, pop: Product, num: Numerics) -> None:
    a, b = net.operands(pop.name)
    pop.unit_value = a.value_per_unit() * b.value_per_unit()
    pop.out_shift = 0
    pop.out_shift = max(0, _spare_bits(net, pop, num))
    pop.payload_bound = (pop.a_shape[-1] * a.max_payload() * b.max_payload() >> pop.out_shift) + 1
    if pop.payload_bound > num.graded_payload_max:
        raise NeurocompileError(f"product '{pop.name}': its largest possible payload {pop.payload_bound} exceeds the {num.graded_payload_bits}-bit graded spike range")


def _quantize_host(net: Network, pop: HostOp, num: Numerics) -> None:
    limit = num.current_max
    if pop.op == "layernorm":  # its variance sums n squared inputs in int64
        limit = min(limit, math.isqrt(2**62 // pop.shape[-1]))
    pop.scale = _accumulator_scale(net, pop, limit, num)
    if pop.op == "softmax":
        pop.out_frac, pop.exp_k = SOFTMAX_OUT_FRAC, exp_constant(pop.scale)
        pop.out_frac = min(SOFTMAX_OUT_FRAC, max(0, SOFTMAX_OUT_FRAC - _spare_bits(net, pop, num)))
        pop.payload_bound = 1 << pop.out_frac
        return
    pop.gb_frac = LAYERNORM_FRAC
    pop.gamma_q = np.rint(pop.gamma * 2.0**LAYERNORM_FRAC).astype(np.int64)
    pop.beta_q = np.rint(pop.beta * 2.0**LAYERNORM_FRAC).astype(np.int64)
    pop.eps_int = int(round(pop.epsilon * pop.scale**2))
    # |(x - mean) / std| <= sqrt(n - 1): the output bound, kept inside a graded payload.
    bound = float(np.abs(pop.gamma).max()) * math.sqrt(pop.shape[-1]) + float(np.abs(pop.beta).max())
    pop.out_frac = LAYERNORM_FRAC
    pop.out_frac = min(LAYERNORM_FRAC, max(0, LAYERNORM_FRAC - _spare_bits(net, pop, num)))
    while pop.out_frac > 0 and math.ceil(bound * 2**pop.out_frac) > num.graded_payload_max:
        pop.out_frac -= 1
    pop.payload_bound = math.ceil(bound * 2**pop.out_frac) + 1


def _quantize_relay(net: Network, pop: Relay, num: Numerics) -> None:
    """A relay sums its input exactly in the full current range (its scale chosen as a
    readout's), then forwards it shifted right by `out_shift`: enough that the payload fits a
    graded spike, that each consumer's accumulator holds its fan-in times a full mantissa times
    the payload at the smallest weight shift (else the consumer's scale, and its weights, would
    shrink to nothing), and no finer than its IF consumers resolve."""
    pop.scale = _accumulator_scale(net, pop, num.current_max, num)
    fan_in = max((b.kernel.max_abs_row_sum(b.view_shape, (b.kernel.weight != 0).astype(np.float64)) for b in net.outgoing(pop.name)), default=1.0)
    per_consumer = num.current_max // 2 / (num.weight_mantissa_max * 2.0 ** num.weight_shift_min * max(fan_in, 1.0))
    payload_max = max(1.0, min(num.graded_payload_max // 2, per_consumer))
    pop.out_shift = 0
    pop.out_shift = max(math.ceil(math.log2((num.current_max // 2) / payload_max)), _spare_bits(net, pop, num), 0)
    pop.payload_bound = min(num.graded_payload_max, num.current_max >> pop.out_shift)


def quantize(net: Network, target: Target, input_range: float = 4.0) -> dict[str, Any]:
    """Fills every integer field. Returns the per-population quantization report."""
    num = target.numerics
    units = num.threshold_units
    report: dict[str, Any] = {}
    # 1. IF populations: the threshold fixes the scale, whatever feeds them.
    for pop in net.populations():
        if isinstance(pop, IFPopulation):
            if not math.isfinite(pop.threshold) or pop.threshold <= 0:
                hint = "; a ReLU network needs thresholds from data: pass --calibrate X.npy" if pop.activation == "relu" else ""
                raise NeurocompileError(f"population '{pop.name}' ({pop.origin}) has threshold {pop.threshold}, which must be positive{hint}")
            pop.scale = units / pop.threshold
            pop.threshold_int = units
            pop.v_init_int = int(round(pop.v_init_frac * units))
    # 2. The input's payload, fitted to the range and to the IF populations it feeds.
    inp = net.input
    inp.payload_frac_bits = input_frac_bits(num, input_range) if inp.graded else 0
    if inp.graded:  # no finer than the IF populations it feeds can resolve
        inp.payload_frac_bits -= max(0, _spare_bits(net, inp, num))
    inp.payload_bound = num.input_payload_max if inp.graded else 1
    # 3. What depends on its sources' units, in topological order.
    for pop in net.populations():
        if isinstance(pop, Product):
            _quantize_product(net, pop, num)
        elif isinstance(pop, HostOp):
            _quantize_host(net, pop, num)
        elif isinstance(pop, Relay):
            _quantize_relay(net, pop, num)
        elif isinstance(pop, Readout):
            pop.scale = _accumulator_scale(net, pop, num.current_max, num)

    for pop in net.populations():
        if isinstance(pop, (InputPopulation, Product)):
            continue
        entry, bound = _quantize_inputs(net, pop, num)
        if isinstance(pop, IFPopulation) and bound > num.current_max:
            entry, bound = _coarser_membrane(net, pop, num, bound)
        if bound > num.current_max:
            raise NeurocompileError(
                f"population '{pop.name}': worst-case input per step is {bound}, above the {num.current_bits}-bit limit "
                f"{num.current_max}; its weights are too large relative to its threshold {getattr(pop, 'threshold', '')}"
                + (f" even at the coarsest membrane (threshold {pop.threshold_int} units)" if isinstance(pop, IFPopulation) else "")
            )
        if isinstance(pop, Relay):
            if bound >> pop.out_shift > pop.payload_bound:
                raise NeurocompileError(f"relay '{pop.name}': inputs up to {bound}, shifted by {pop.out_shift}, exceed its payload bound {pop.payload_bound}")
            # What it can actually send, which its consumers' bounds (quantized later, in
            # topological order) multiply: often far below the payload range.
            pop.payload_bound = min(pop.payload_bound, (bound >> pop.out_shift) + 1)
        if isinstance(pop, HostOp) and pop.op == "layernorm" and bound * bound * pop.shape[-1] >= 2**62:
            raise NeurocompileError(f"layer norm '{pop.name}': inputs up to {bound} would overflow its 64-bit variance")
        entry["input_bound"] = bound
        entry["headroom_bits"] = round(math.log2(num.current_max / bound), 2) if bound else None
        if isinstance(pop, IFPopulation):
            entry["threshold_int"] = pop.threshold_int
        report[pop.name] = entry
    return report


def _largest_sum(block, src) -> int:
    """The largest |sum of w_mant * payload| one output of the block can take in a step, and
    so the bound on every partial sum of it. Spikes are 0 or 1, so a row's sum lies between the
    sum of its negative and of its positive weights (about half of the sum of |w| when signs
    are mixed); signed graded payloads can reach the sum of |w| times the largest payload."""
    w = block.w_mant.astype(np.float64)
    if isinstance(src, IFPopulation) or (isinstance(src, InputPopulation) and not src.graded):
        return int(max(block.kernel.max_abs_row_sum(block.view_shape, np.maximum(w, 0)),
                       block.kernel.max_abs_row_sum(block.view_shape, np.maximum(-w, 0))))
    return int(block.kernel.max_abs_row_sum(block.view_shape, w)) * src.max_payload()


def _coarser_membrane(net: Network, pop: IFPopulation, num: Numerics, bound: int) -> tuple[dict, int]:
    """Halves the population's threshold and scale until its worst-case input fits: each
    halving halves every weight in membrane units (the block shifts absorb it; only weights
    below the smallest shift lose precision) and doubles the input's headroom."""
    units = num.threshold_units
    # Halvings that keep the threshold exact and a multiple of 2^threshold_shift (trailing zeros of units).
    coarsest = (units & -units).bit_length() - 1 - num.threshold_shift
    entry = {}
    while bound > num.current_max:
        now = units.bit_length() - pop.threshold_int.bit_length()
        exp = min(now + max(1, math.ceil(math.log2(bound / num.current_max))), coarsest)
        if exp <= now:
            break
        threshold = units >> exp
        pop.threshold_int = threshold
        pop.scale = threshold / pop.threshold
        pop.v_init_int = int(round(pop.v_init_frac * threshold))
        entry, bound = _quantize_inputs(net, pop, num)
    entry["threshold_exp"] = units.bit_length() - pop.threshold_int.bit_length()
    return entry, bound


def _quantize_inputs(net: Network, pop, num: Numerics) -> tuple[dict[str, Any], int]:
    """Quantizes the population's incoming blocks and bias at its scale; returns its report
    entry and the worst-case input of one step."""
    units = num.threshold_units
    entry: dict[str, Any] = {"weight_rel_error": 0.0, "weights_saturated": 0, "blocks": {}}
    bound = 0
    for block in net.incoming(pop.name):
        src = net.source_of(block)
        R = block.kernel.weight * src.value_per_unit() * pop.scale
        block.w_mant, block.w_shift, saturated = quantize_block(R, num)
        block.acc_bound = _largest_sum(block, src)
        shifted = block.acc_bound << block.w_shift if block.w_shift >= 0 else -(-block.acc_bound >> -block.w_shift)
        bound += shifted
        norm = float(np.linalg.norm(R))
        err = float(np.linalg.norm(block.w_mant * 2.0**block.w_shift - R)) / norm if norm else 0.0
        entry["blocks"][block.name] = {"shift": block.w_shift, "rel_error": err, "saturated": saturated}
        entry["weight_rel_error"] = max(entry["weight_rel_error"], err)
        entry["weights_saturated"] += saturated
    b_int = pop.bias * pop.scale
    pop.bias_mant, pop.bias_exp, bias_saturated = quantize_bias(b_int, num)
    b_q = pop.bias_mant.astype(np.float64) * 2.0**pop.bias_exp
    theta = pop.threshold_int if isinstance(pop, IFPopulation) else units
    entry["bias_abs_error_theta"] = float(np.abs(b_q - b_int).max() / theta) if b_int.size else 0.0
    entry["bias_saturated"] = bias_saturated
    bound += int(np.abs(b_q).max()) if b_q.size else 0
    return entry, bound


def activation_error(net: Network, x: np.ndarray, reference: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """Relative RMS difference of each population's pre-activation, quantized vs float
    (`reference`: the float pre-activations on x, if already evaluated)."""
    ref = evaluate(net, x)["pre"] if reference is None else reference
    got = evaluate(net, x, quantized=True)["pre"]
    out = {}
    for name, r in ref.items():
        norm = float(np.sqrt(np.mean(r**2)))
        out[name] = float(np.sqrt(np.mean((got[name] - r) ** 2))) / norm if norm else 0.0
    return out

