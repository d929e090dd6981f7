"""Where host ops run: on the embedded processors of the chip where most of their messages stay,
or on the system's host.

A Loihi chip has a few small processors beside its neurocores (`chip.embedded_cpus`). Softmax
and layer norm work along a tensor's last axis and a spike product along the rows of its output,
so a host op splits into rows that need nothing from each other. Rows that read a common
neuron on the cores (a window's rows of Q K^T share its keys) form a group, and each group runs
on the processors of the chip where most of its messages would stay: those from the neurons its
rows read (a product's B operand sends once per lead, however many rows read it; a row fed by
another host node reads that node's rows where they run) and those to the cores that read its
rows (one per element and core). Ties: the lowest chip. So each neuron on the cores sends to one
processor per host node it feeds: one fan-out axon, as placement counts.
In a transformer a row is one token's or one window's work, and a token's layers share a chip
(placement's stripes), so most operands reach their processors without leaving their chip. A
target without processor figures, or with `system.host_ops = "host"`, runs every host op on the
system's host.

The processors' work per step is an estimate (HOST_OP_WORK): the busiest chip's work over its
processors' throughput, plus their latency, is the step time the host ops imply.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ..ir.graph import Network
from ..ir.nodes import InputPopulation, Product
from ..passes.products import no_coincidence_form
from ..targets import Target
from .fanout import HOST, FaninCache, destination_pieces, distinct_pairs, product_operands, row_width
from .leads import LeadPattern, run_starts, unique_pairs

# Integer operations per element of a row, an estimate from semantics/hostops.py's integer
# algorithms: softmax takes a max, an exponential (shift and polynomial), a sum and a
# division per element; layer norm a sum, a square, a sum, a division and a scale and shift.
# A spike product's element is K multiply-adds (HOST_OP_WORK does not list it).
HOST_OP_WORK = {"softmax": 4, "layernorm": 6}


def processors_modelled(target: Target) -> bool:
    chip = target.spec["chip"]
    return target.spec["system"].get("host_ops", "chip") == "chip" and chip.get("embedded_cpus", 0) > 0 and chip.get("embedded_cpu_ops_per_s", 0) > 0


def _work_per_row(pop) -> int:
    if isinstance(pop, Product):
        return int(pop.shape[-1]) * int(pop.a_shape[-1])
    return row_width(pop) * HOST_OP_WORK[pop.op]


def _busiest_chip(rows: np.ndarray, chips: np.ndarray, weight: np.ndarray, n_rows: int, n_chips: int) -> np.ndarray:
    """Per row (or group of rows), the chip (-1: the host) with the most weight among the
    (row, chip) pairs."""
    keys = rows.astype(np.int64) * (n_chips + 1) + (chips + 1)
    order = np.argsort(keys, kind="stable")
    keys, weight = keys[order], weight[order]
    first = run_starts(keys)
    keys, totals = keys[first], np.add.reduceat(weight, first) if first.size else weight[:0]
    row, chip = np.divmod(keys, n_chips + 1)
    best = np.lexsort((chip, -totals, row))  # per row: most weight first, then the lowest chip
    pick = best[run_starts(row[best])]
    out = np.full(n_rows, -1, np.int64)
    out[row[pick]] = chip[pick] - 1
    return out


def place_host_ops(net: Network, target: Target, core_of: dict[str, np.ndarray], chip_of_core: np.ndarray,
                   fanin: FaninCache) -> tuple[dict[str, np.ndarray], list[dict[str, Any]], dict[str, Any]]:
    """Per host node, the chip of each of its neurons (-1: the system's host); the placement's
    `host_ops` entries (where each runs and why) and its `processors` summary."""
    on_chips = processors_modelled(target)
    n_chips = int(chip_of_core.max()) + 1 if chip_of_core.size else 0
    chip_of = {name: chip_of_core[cores] for name, cores in core_of.items()}
    entries, work_per_chip = [], np.zeros(max(n_chips, 1))
    for pop in net.populations():
        if not pop.on_host:
            continue
        if isinstance(pop, InputPopulation) or not on_chips:
            chip_of[pop.name] = np.full(pop.size, -1, np.int64)
            entries.append({"node": pop.name, "kind": pop.kind, "runs_on": "host", "why": _host_reason(net, pop, on_chips)})
            continue
        n_rows = pop.size // row_width(pop)
        reads = list(_reads(net, pop, fanin))
        group = _row_groups(n_rows, reads, core_of)
        triples = list(_operand_chips_by_group(reads, chip_of, group)) + list(_reader_chips_by_group(net, pop, fanin, core_of, chip_of_core, group))
        if triples:
            groups, chips, weight = (np.concatenate(parts) for parts in zip(*triples))
            row_chip = _busiest_chip(groups, chips, weight, int(group.max()) + 1, n_chips)[group]
        else:  # reads nothing (every operand padding): nothing to be near
            row_chip = np.full(n_rows, -1, np.int64)
        chip_of[pop.name] = np.repeat(row_chip, row_width(pop))
        work = _work_per_row(pop)
        on = row_chip >= 0
        work_per_chip += np.bincount(row_chip[on], minlength=work_per_chip.size)[: work_per_chip.size] * float(work)
        entries.append({"node": pop.name, "kind": pop.kind, "runs_on": "chip processors", "chips": np.unique(row_chip[on]).tolist(),
                        "rows": n_rows, "ops_per_step": n_rows * work, "why": _host_reason(net, pop, on_chips)})
    summary = {"host_ops_on": "chip processors" if on_chips else "host"}
    if on_chips and work_per_chip.any():
        chip = target.spec["chip"]
        busiest = int(np.argmax(work_per_chip))
        seconds = float(work_per_chip[busiest]) / (chip["embedded_cpus"] * chip["embedded_cpu_ops_per_s"]) + chip.get("embedded_cpu_latency_s", 0.0)
        summary.update(ops_per_step=float(work_per_chip.sum()), busiest_chip=busiest, busiest_chip_ops=float(work_per_chip[busiest]),
                       step_time_s=seconds)
    return {name: c for name, c in chip_of.items() if net.node(name).on_host}, entries, summary


def units(core_of: dict[str, np.ndarray], chip_of_core: np.ndarray, host_chips: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every sender's neurons as units, and each unit's chip: cores 0..C-1, then one unit per
    chip for its processors (C + chip), HOST for the system's host."""
    n_cores = chip_of_core.size
    n_chips = int(chip_of_core.max()) + 1 if n_cores else 0
    owner = {**core_of, **{name: np.where(chip >= 0, n_cores + chip, HOST) for name, chip in host_chips.items()}}
    return owner, np.concatenate([chip_of_core, np.arange(n_chips)])


def _reads(net: Network, pop, fanin: FaninCache):
    """(source, rows, neurons, m) for every operand of a host node: row rows[i] reads the
    source's neuron neurons[i]; m > 0 marks a product's B operand, whose pairs name each lead
    by its first row and stand for every one of its m rows."""
    if isinstance(pop, Product):
        m = pop.a_shape[-2]
        for src, index, is_b in product_operands(net, pop):
            valid = index >= 0
            rows = np.broadcast_to(np.arange(index.shape[0])[:, None] * (m if is_b else 1), index.shape)
            yield src, rows[valid], index[valid], m if is_b else 0
        return
    w = row_width(pop)
    for src in fanin.sources(pop.name):
        pattern = fanin.get_pattern(pop.name, src)
        if isinstance(pattern, LeadPattern):
            neurons, rows = pattern.runs(np.arange(pop.size) // w)
        else:
            m = pattern.tocoo()
            neurons, rows = distinct_pairs(m.col, m.row // w, pattern.shape[1])  # each source neuron once per row
        yield src, rows, neurons, 0


def _row_groups(n_rows: int, reads: list, core_of: dict[str, np.ndarray]) -> np.ndarray:
    """Rows that read a common neuron on the cores, joined (connected components): a group runs
    on one chip, so that each of those neurons sends to one processor, one fan-out axon, as
    placement's fan-out bound counts it (a window's rows of Q K^T share its keys)."""
    offsets: dict[str, int] = {}  # graph nodes: the rows, then each source's neurons (A and B may be one source)
    heads, tails = [], []
    for src, rows, neurons, m in reads:
        if src not in core_of:
            continue  # a host node's output: no fan-out axon of a core
        if src not in offsets:
            offsets[src] = n_rows + sum(core_of[s].size for s in offsets)
        heads.append(rows)
        tails.append(offsets[src] + neurons)
        if m:  # every row of a lead reads its B
            first = np.unique(rows)
            heads.append(np.repeat(first, m - 1))
            tails.append((first[:, None] + np.arange(1, m)).ravel())
    if not heads:
        return np.arange(n_rows)
    size = n_rows + sum(core_of[s].size for s in offsets)
    edges = np.concatenate(heads), np.concatenate(tails)
    graph = sp.coo_matrix((np.ones(edges[0].size, np.int8), edges), shape=(size, size)).tocsr()
    return connected_components(graph, directed=False)[1][:n_rows]


def _operand_chips_by_group(reads: list, chip_of: dict[str, np.ndarray], group: np.ndarray):
    """(group, chip of an operand neuron one of its rows reads, weight) triples."""
    for src, rows, neurons, m in reads:
        chips = chip_of[src][neurons]
        if not m:
            yield group[rows], chips, np.ones(rows.size)
            continue
        # B: what a lead reads, counted once per lead and shared among its m rows: each B
        # neuron sends one message to the lead's chip, not one per row
        first_row, chip, count = unique_pairs(rows, chips + 1, return_counts=True)  # the host is -1
        every = (first_row[:, None] + np.arange(m)).ravel()
        yield group[every], np.repeat(chip - 1, m), np.repeat(count / m, m)


def _reader_chips_by_group(net: Network, pop, fanin: FaninCache, core_of: dict[str, np.ndarray], chip_of_core: np.ndarray, group: np.ndarray):
    """(group, chip, 1) per message out of a host node's rows: each element of a row goes once to
    every core holding neurons that read it (host nodes that read it run where they are placed
    after this one)."""
    pieces = destination_pieces(net, pop.name, core_of, fanin)  # HOST: a host node or none; no core
    if pieces:
        e, c = np.concatenate([e for e, _ in pieces]), np.concatenate([c for _, c in pieces])
        e, c = distinct_pairs(e[c != HOST], c[c != HOST], pop.size)
        yield group[e // row_width(pop)], chip_of_core[c], np.ones(e.size)


def _host_reason(net: Network, pop, on_chips: bool) -> str:
    if isinstance(pop, InputPopulation):
        return f"{pop.encoding} encoding of the input is injected by the host"
    if isinstance(pop, Product):
        a, b = net.operands(pop.name)
        reason = no_coincidence_form(net, pop)
        k = pop.a_shape[-1]
        what = (f"a product ({a.name} @ {b.name}) with no form on cores: {reason}" if reason else
                f"a product of two spike tensors ({a.name} @ {b.name}), which `build --products-on cores` makes "
                f"{pop.size * k} coincidence neurons and {pop.size} sums of {k}")
    else:
        what = f"{pop.op} has no neuron form"
    if not on_chips:
        return f"{what}; it runs on the host"
    return f"{what}; its rows, in groups that share operands, run on the embedded processors of the chip where most of their messages stay"
