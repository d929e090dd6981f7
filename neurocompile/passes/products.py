"""Spike products on the cores (`build --products-on cores`, or `auto` where they cost a smaller
share of a chip than on its processors; docs/semantics.md, "Products on cores").

A spike product of two binary operands (IF neurons, rate-coded input) in the coincidence form
becomes two populations of neurons:
- coincidence neurons `<product>.terms`, shape [..., M, N, K]: neuron (..., m, n, k) reads
  A[..., m, k] and B[..., k, n] through unit-weight elementwise blocks and emits (a + b) >> 1,
  which is 1 exactly when both spiked in the same step;
- a relay population that takes the product's name, shape and integer fields: a dense block of
  ones sums the K coincidences of each (..., m, n), and the relay shifts the sum right by the
  product's `out_shift`.
The relay emits at step t + 2 what the product emitted at step t, bit for bit, masked operands
included: the operand blocks fail per spike with the product's mask, whose draws depend only on
the mask, the step and the neuron. The rewrite runs after quantization and copies the product's
integer fields, so nothing else changes; the starts are assigned again for the two steps added.

Graded operands (softmax output, layer norm, current-coded input) have no coincidence form: a
neuron cannot multiply two payloads. Neither has the telescoping form, which divides running
sums by the step count. Those products stay on the processors, and every product's entry says
where it runs and what either place would cost.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..ir.graph import Network
from ..ir.kernels import Dense, Elementwise
from ..ir.nodes import Coincidence, Product, Relay, SynapseBlock
from ..targets import Target

SITES = ("auto", "processors", "cores")  # where spike products run: `build --products-on`


def coincidence_cost(pop: Product, target: Target) -> dict[str, Any]:
    """What a product takes either way: on cores, its coincidence and sum neurons, their synapses
    and the cores they need at least; on processors, its multiply-adds per step. Each also as a
    share of one chip's cores, or of one chip's processors over `energy.step_time_s`.
    Every coincidence neuron sends to its sum: one fan-out axon each, so a core holds at most
    `fan_out_axons` of them; every sum reads K of them: a core of sums takes at most
    `fan_in_axons` coincidence neurons' spikes."""
    k = int(pop.a_shape[-1])
    terms = pop.size * k
    chip, core = target.spec["chip"], target.core
    cores = math.ceil(terms / min(core["neurons"], core["fan_out_axons"])) + math.ceil(terms / core["fan_in_axons"])
    cost = {"terms": terms, "neurons": terms + pop.size, "synapses": 3 * terms, "cores_at_least": cores,
            "ops_per_step": terms, "share_of_chip_cores": cores / chip["cores"]}
    per_step = chip.get("embedded_cpus", 0) * chip.get("embedded_cpu_ops_per_s", 0) * target.spec.get("energy", {}).get("step_time_s", 0)
    if per_step > 0 and target.spec["system"].get("host_ops", "chip") == "chip":  # else the system's host runs them
        cost["share_of_chip_processors"] = terms / per_step
    return cost


def no_coincidence_form(net: Network, pop: Product) -> str | None:
    """Why the product cannot become coincidence neurons, or None."""
    if pop.form != "coincidence":
        return f"its {pop.form} form divides running sums by the step count, which no neuron does"
    graded = [op.name for op in net.operands(pop.name) if op.graded]
    if graded:
        return f"operand {' and '.join(graded)} is graded, and a neuron cannot multiply two payloads"
    return None


def _operand_terms(index: np.ndarray | None, view: tuple[int, ...], lead: tuple[int, ...], side: str, m: int, n: int, k: int) -> np.ndarray:
    """The operand neuron each coincidence neuron (..., m, n, k) reads: A[..., m, k] or B[..., k, n]."""
    flat = np.arange(math.prod(view), dtype=np.int64).reshape(view) if index is None else np.asarray(index, np.int64).reshape(view)
    if side == "a":
        full = np.broadcast_to(flat, lead + (m, k))[..., :, None, :]
    else:
        full = np.swapaxes(np.broadcast_to(flat, lead + (k, n)), -1, -2)[..., None, :, :]
    return np.ascontiguousarray(np.broadcast_to(full, lead + (m, n, k)))


def _unit_block(net: Network, name: str, view: tuple[int, ...], kernel, acc_bound: int, **fields) -> SynapseBlock:
    weight_mant = np.ones(kernel.weight.shape, np.int32)
    return SynapseBlock(name=net.unique_name(name), view_shape=view, kernel=kernel, w_mant=weight_mant, w_shift=0, acc_bound=acc_bound, **fields)


def to_coincidence_neurons(net: Network, pop: Product) -> str:
    """Replaces the product by coincidence neurons and a relay of the same name; returns the
    coincidence population's name."""
    a, b = net.operands(pop.name)
    lead, (m, n), k = tuple(pop.shape[:-2]), tuple(pop.shape[-2:]), int(pop.a_shape[-1])
    terms_shape = lead + (m, n, k)
    terms = Coincidence(name=net.unique_name(f"{pop.name}.terms"), shape=terms_shape, bias=np.zeros(math.prod(terms_shape)), scale=2.0 / pop.unit_value,
                        bias_mant=np.zeros(math.prod(terms_shape), np.int32), bias_exp=0, out_shift=1, payload_bound=1,
                        origin=f"coincidence neurons of {pop.origin or pop.name}")
    total = Relay(name=pop.name, shape=tuple(pop.shape), bias=np.zeros(pop.size), scale=1.0 / pop.unit_value, bias_mant=np.zeros(pop.size, np.int32),
                  bias_exp=0, out_shift=pop.out_shift, payload_bound=pop.payload_bound, origin=pop.origin)
    readers = list(net.graph.successors(pop.name))
    net.remove(pop.name)
    net.add(terms)
    for side, operand, index, view in (("a", a, pop.a_index, pop.a_shape), ("b", b, pop.b_index, pop.b_shape)):
        block = _unit_block(net, f"{terms.name}.{side}", terms_shape, Elementwise(weight=np.ones(1)), 1,
                            in_index=_operand_terms(index, tuple(view), lead, side, m, n, k),
                            failure=getattr(pop, f"failure_{side}"), failure_group=getattr(pop, f"failure_group_{side}"), failure_mode="spike",
                            origin=f"operand {side} of {pop.name}")
        net.connect(block, operand.name, terms.name)
    net.add(total)
    net.connect(_unit_block(net, f"{pop.name}.sum", terms_shape, Dense(weight=np.ones((1, k))), k, origin=f"sums of {terms.name}"),
                terms.name, total.name)
    for reader in readers:
        net.graph.add_edge(total.name, reader, src_port="s_out", dst_port="s_in")
    return terms.name


def _choose(site: str, cost: dict[str, Any]) -> tuple[str, str]:
    """Where a product with a coincidence form runs, and why. `auto` weighs the two shares of a
    chip: its cores the coincidence neurons would take, against its processors' time over one
    step that the product's multiply-adds take."""
    if site != "auto":
        return site, f"--products-on {site}"
    cores, processors = cost["share_of_chip_cores"], cost.get("share_of_chip_processors")
    if processors is None:
        return "processors", "auto: the target gives no chip processors' throughput to weigh against cores"
    if cores < processors:
        return "cores", f"auto: cores {cores:.3g} of a chip < processors {processors:.3g}"
    return "processors", f"auto: processors {processors:.3g} of a chip <= cores {cores:.3g}"


def place_products(net: Network, target: Target, site: str) -> list[dict[str, Any]]:
    """Puts every product that has a coincidence form where `site` says (`auto`: the smaller
    share of a chip); returns one entry per product: where it runs, why, and what either place
    costs (the artifact keeps them in `net.meta["products"]`)."""
    entries = []
    for pop in net.populations():
        if not isinstance(pop, Product):
            continue
        a, b = net.operands(pop.name)
        entry = {"node": pop.name, "operands": [a.name, b.name], **coincidence_cost(pop, target)}
        reason = no_coincidence_form(net, pop)
        entry["coincidence_form"] = reason is None
        where, why = ("processors", reason) if reason else _choose(site, entry)
        if where == "cores":
            entry["coincidence_neurons"] = to_coincidence_neurons(net, pop)
            why += f": {entry['terms']} coincidence neurons and {pop.size} sums, two steps of latency"
        entry.update(runs_on=where, why=why)
        entries.append(entry)
    net.meta["products"] = entries
    return entries
