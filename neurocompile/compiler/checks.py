"""What an artifact must hold for the backends to run it as the build meant: checked on load,
because an artifact is a directory that anyone can edit and re-hash. The manifest's sha256s
catch corruption; these checks catch well-formed files with values no build writes (a
negative threshold, a shift outside the chip's range, NaN parameters, a placement over the
core limits). Each problem is one line naming the file, the node and the field."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import NeurocompileError
from ..ir.graph import Network
from ..ir.nodes import FAILURE_MODES, HostOp, IFPopulation, InputPopulation, Product, Readout, Relay
from ..numerics import Numerics
from ..partition.validate import placement_problems
from ..targets import Target

MODES = ("sim", "hw")


def _bad(where: str, message: str) -> NeurocompileError:
    return NeurocompileError(f"{where}: {message} (not what a build writes; rebuild the artifact)")


def _integer(where: str, field: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
        raise _bad(where, f"{field} = {value!r} is not an integer in [{lo}, {hi}]")


def _finite(where: str, field: str, value: Any) -> None:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf" or (arr.dtype.kind == "f" and not np.all(np.isfinite(arr))):
        raise _bad(where, f"{field} holds {'non-real' if arr.dtype.kind not in 'biuf' else 'NaN or inf'} values")


def _mantissas(where: str, field: str, value: Any, bits: int) -> None:
    arr = np.asarray(value)
    hi = (1 << (bits - 1)) - 1
    if arr.dtype.kind not in "iu" or (arr.size and (int(arr.min()) < -hi - 1 or int(arr.max()) > hi)):
        raise _bad(where, f"{field} must be {bits}-bit signed integers")


def _check_population(pop, num: Numerics, where: str) -> None:
    for field in ("threshold", "scale", "epsilon", "v_init_frac", "bias", "gamma", "beta"):
        if getattr(pop, field, None) is not None:
            _finite(where, field, getattr(pop, field))
    if isinstance(pop, (IFPopulation, Readout, Relay, HostOp)):  # what the quantize pass sets on them
        if pop.bias_mant is None or not isinstance(pop.scale, (int, float)) or isinstance(pop.scale, bool) or not pop.scale > 0:
            raise _bad(where, f"it is not quantized (scale = {pop.scale!r}, bias_mant {'missing' if pop.bias_mant is None else 'present'})")
        _mantissas(where, "bias_mant", pop.bias_mant, num.bias_mantissa_bits)
        _integer(where, "bias_exp", pop.bias_exp, 0, num.bias_exp_max)
    if hasattr(pop, "start"):
        _integer(where, "start", pop.start, 0, 2**31 - 1)
    graded = num.graded_payload_max
    if isinstance(pop, IFPopulation):
        _integer(where, "threshold_int", pop.threshold_int, 1, num.membrane_max)
        if pop.threshold_int % (1 << num.threshold_shift):
            raise _bad(where, f"threshold_int = {pop.threshold_int} is not a multiple of 2^{num.threshold_shift}")
        # Below the threshold: before its start a neuron takes no input and must not fire.
        _integer(where, "v_init_int", pop.v_init_int, -num.membrane_max, pop.threshold_int - 1)
    elif isinstance(pop, InputPopulation):
        _integer(where, "payload_frac_bits", pop.payload_frac_bits, -64, 64)
        _integer(where, "payload_bound", pop.payload_bound, 1, num.input_payload_max if pop.graded else 1)
    elif isinstance(pop, Relay):
        _integer(where, "out_shift", pop.out_shift, 0, 62)
        _integer(where, "payload_bound", pop.payload_bound, 1, graded)
    elif isinstance(pop, Product):
        _integer(where, "out_shift", pop.out_shift, 0, 62)
        _integer(where, "payload_bound", pop.payload_bound, 1, graded)
        for side in ("a", "b"):
            p = getattr(pop, f"failure_{side}")
            if not (isinstance(p, (int, float)) and 0.0 <= p < 1.0):
                raise _bad(where, f"failure_{side} = {p!r} is not a probability in [0, 1)")
    elif isinstance(pop, HostOp):
        _integer(where, "out_frac", pop.out_frac, 0, 30)
        _integer(where, "payload_bound", pop.payload_bound, 1, graded)
        if pop.op == "softmax":
            _integer(where, "exp_k", pop.exp_k, 1, 2**62)
        else:
            _integer(where, "gb_frac", pop.gb_frac, 0, 30)
            _integer(where, "eps_int", pop.eps_int, 0, 2**62)
            for field in ("gamma_q", "beta_q"):
                arr = np.asarray(getattr(pop, field))
                if arr.dtype.kind not in "iu" or (arr.size and int(np.abs(arr).max()) >= 2**40):
                    raise _bad(where, f"{field} must be integers below 2^40")
    elif not isinstance(pop, Readout):
        raise _bad(where, f"unknown population kind {type(pop).__name__}")


def _shape(where: str, field: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in value):
        raise _bad(where, f"{field} = {value!r} is not a list of positive integers")
    return tuple(int(d) for d in value)


def _sized(where: str, field: str, value: Any, n: int) -> None:
    if value is not None and np.asarray(value).size != n:
        raise _bad(where, f"{field} has {np.asarray(value).size} values for {n}")


def check_network(net: Network, num: Numerics, where: str) -> None:
    """Every integer a backend consumes within the target's numerics, every float finite, every
    array the size its node says."""
    for pop in net.populations():
        _shape(f"{where}: population '{pop.name}'", "shape", pop.shape)
    try:
        net.validate()
    except NeurocompileError as e:
        raise NeurocompileError(f"{where}: {e}") from None
    meta = net.meta
    for key, pop in (("input_shape", net.input), ("output_shape", net.readout)):
        shape = _shape(f"{where}: meta", key, meta.get(key))
        if int(np.prod(shape)) != pop.size:
            raise _bad(f"{where}: meta", f"{key} {list(shape)} does not match '{pop.name}' ({pop.size} neurons)")
    for pop in net.populations():
        at = f"{where}: population '{pop.name}'"
        _sized(at, "bias_mant", getattr(pop, "bias_mant", None), pop.size)
        if isinstance(pop, HostOp) and pop.op == "layernorm":
            for field in ("gamma", "beta", "gamma_q", "beta_q"):
                _sized(at, field, getattr(pop, field), pop.shape[-1])
    for pop in net.populations():
        _check_population(pop, num, f"{where}: population '{pop.name}'")
    for block in net.synapses():
        at = f"{where}: synapse block '{block.name}'"
        _finite(at, "kernel weights", block.kernel.weight)
        if block.w_mant is None:
            raise _bad(at, "it is not quantized")
        if np.shape(block.w_mant) != np.shape(block.kernel.weight):
            raise _bad(at, f"w_mant has shape {list(np.shape(block.w_mant))}, its kernel's weights {list(np.shape(block.kernel.weight))}")
        _mantissas(at, "w_mant", block.w_mant, num.weight_mantissa_bits)
        _integer(at, "w_shift", block.w_shift, num.weight_shift_min, num.weight_shift_max)
        _integer(at, "acc_bound", block.acc_bound, 0, 2**53 - 1)
        if not (isinstance(block.failure, (int, float)) and 0.0 <= block.failure < 1.0):
            raise _bad(at, f"failure = {block.failure!r} is not a probability in [0, 1)")
        if block.failure_mode not in FAILURE_MODES:
            raise _bad(at, f"failure_mode '{block.failure_mode}' is not one of {', '.join(FAILURE_MODES)}")


def check_artifact(net: Network, target: Target, manifest: Any, placement: Any, report: Any, where: str, recompute: bool = False) -> None:
    """The whole artifact: manifest, target, network, placement (its stated figures against the
    core limits; `recompute`: each core's figures recomputed from the network first, which
    takes seconds per million neurons: `inspect` does it) and report; raises on the first
    problem."""
    if not isinstance(manifest.get("options"), dict):
        raise _bad(f"{where}: manifest.json", "options is not an object")
    if target.mode not in MODES:
        raise _bad(f"{where}: graph.json", f"target mode '{target.mode}' is not one of {', '.join(MODES)}")
    check_network(net, target.numerics, f"{where}: graph.json")
    if not isinstance(report, dict):
        raise _bad(f"{where}: report.json", "it is not an object")
    if not isinstance(placement, dict) or not isinstance(placement.get("cores"), list) or not isinstance(placement.get("totals"), dict):
        raise _bad(f"{where}: placement.json", "it needs an object with a list 'cores' and an object 'totals'")
    try:
        problems = placement_problems(net, target, placement, recompute)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise _bad(f"{where}: placement.json", f"a core entry is malformed ({type(e).__name__}: {e})") from None
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise NeurocompileError(f"{where}: placement.json: {problems[0]}{more}")

