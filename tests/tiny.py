"""Hand-made quantized networks for semantics tests: every integer set explicitly."""

from __future__ import annotations

import numpy as np

from neurocompile.ir.graph import Network
from neurocompile.ir.kernels import Dense, Elementwise
from neurocompile.ir.nodes import IFPopulation, InputPopulation, Readout, Relay, SynapseBlock
from neurocompile.targets import load_target

THETA = 8
LOIHI2 = load_target("loihi2-sim").numerics  # 16-bit input payloads, 24-bit membrane


def chain(layers: list[dict], n_in: int = 1, encoding: str = "current", frac: int = 0) -> Network:
    """input -> IF -> IF -> ... -> readout. Each layer dict: n, w (mantissas [n, n_prev]),
    shift, bias_mant, bias_exp, theta, v0. The readout copies the last layer with weight 1."""
    net = Network()
    inp = InputPopulation("in", (1, n_in), encoding=encoding, payload_frac_bits=frac)
    net.add(inp)
    prev, prev_graded = inp, encoding == "current"
    for k, spec in enumerate(layers):
        n = spec["n"]
        pop = IFPopulation(f"l{k}", (1, n), threshold=1.0, activation="clip", bias=np.zeros(n),
                           scale=float(spec.get("theta", THETA)), threshold_int=spec.get("theta", THETA), v_init_int=spec.get("v0", 0),
                           bias_mant=np.asarray(spec.get("bias_mant", np.zeros(n)), np.int32), bias_exp=spec.get("bias_exp", 0))
        net.add(pop)
        w = np.asarray(spec["w"], np.int32)
        block = SynapseBlock(f"b{k}", (1, prev.size), kernel=Dense(weight=w.astype(np.float64)), w_mant=w, w_shift=spec.get("shift", 0),
                             acc_bound=int(np.abs(w).sum(axis=1).max()) * (2**15 if prev_graded else 1))
        net.connect(block, prev.name, pop.name)
        prev, prev_graded = pop, False
    out = Readout("out", (1, prev.size), bias=np.zeros(prev.size), scale=1.0, bias_mant=np.zeros(prev.size, np.int32), bias_exp=0)
    net.add(out)
    ident = np.ones((1, prev.size), np.int32)
    net.connect(SynapseBlock("b_out", (1, prev.size), kernel=Elementwise(weight=ident.astype(np.float64)), w_mant=ident, w_shift=0, acc_bound=1), prev.name, "out")
    net.meta.update(input_shape=[n_in], output_shape=[prev.size])
    net.validate()
    return net


def relay_chain(shift: int) -> Network:
    """input -> IF l0 (3) -> relay r (3) -> IF l1 (2) -> readout: the relay sums signed
    weighted spikes plus a signed bias and forwards it shifted right by `shift`."""
    net = chain([{"n": 3, "w": [[8], [5], [7]]}, {"n": 2, "w": [[2, -1, 1], [0, 3, 1]]}])
    relay = Relay("r", (1, 3), bias=np.zeros(3), scale=1.0, bias_mant=np.array([2, -3, 0], np.int32), bias_exp=0,
                  out_shift=shift, payload_bound=64)
    net.add(relay)
    into = np.array([[3, 1, 0], [0, -5, 2], [1, 1, 1]], np.int32)
    net.connect(SynapseBlock("b_r", (1, 3), kernel=Dense(weight=into.astype(np.float64)), w_mant=into, w_shift=0, acc_bound=6), "l0", "r")
    out = net.node("b1")  # l0 -> l1 becomes r -> l1
    net.remove(out.name)
    out.acc_bound *= 64
    net.connect(out, "r", "l1")
    net.validate()
    return net
