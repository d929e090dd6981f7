"""Hand-made quantized networks for semantics tests: every integer set explicitly."""

from __future__ import annotations

import numpy as np

from neurocompile.ir.graph import Network
from neurocompile.ir.kernels import Dense, Elementwise
from neurocompile.ir.nodes import IFPopulation, InputPopulation, Readout, SynapseBlock

THETA = 8


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
