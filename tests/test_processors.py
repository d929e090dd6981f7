"""Host nodes (softmax, layer norm, spike products) on the embedded processors of the chip where
most of their messages stay: rows checked one by one against a count over the explicit
matrices and index maps, the work per chip, the traffic they cause, and the target option that
keeps them on the system's host."""

from __future__ import annotations

import numpy as np
import pytest

from neurocompile.compiler import BuildOptions, build
from neurocompile.compiler.artifact import load_artifact
from neurocompile.errors import NeurocompileError
from neurocompile.ir.connectivity import block_matrix
from neurocompile.ir.nodes import HostOp, Product
from neurocompile.partition import place
from neurocompile.partition.fanout import FaninCache
from neurocompile.partition.processors import HOST_OP_WORK
from neurocompile.partition.traffic import core_owner, placement_messages, spike_traffic

from conftest import GRAPHS, target_with


@pytest.fixture(scope="module")
def on_five_chips(tmp_path_factory):
    """The digits MST built for chips of 16 cores (five chips): the artifact."""
    folder = tmp_path_factory.mktemp("t")
    target_with(folder, cores=16)
    path, _ = build(GRAPHS / "digits_mst.onnx", folder / "d.ncx", BuildOptions(target=str(folder / "cores16.toml")))
    return load_artifact(path)


def _majority(chips: list[int]) -> int:
    """The most frequent chip, the lowest on a tie (-1, the host, lowest of all)."""
    values, counts = np.unique(np.asarray(chips, np.int64), return_counts=True)
    return int(values[np.flatnonzero(counts == counts.max())[0]])


def _reads_by_row(net, pop, b_once: bool = False) -> list[list[tuple[str, int]]]:
    """Per row, the (source, neuron) pairs it reads, counted from the explicit matrices and index
    maps: a host op's row (its last axis) reads each source neuron with a synapse into it once;
    a product's output row reads its row of A and its lead's B (`b_once`: only the lead's first
    row lists B, as a B neuron sends one message to its lead)."""
    if isinstance(pop, Product):
        a, b = net.operands(pop.name)
        lead = tuple(pop.shape[:-2])
        m, k = pop.a_shape[-2:]
        n = pop.b_shape[-1]
        ai = np.broadcast_to(pop.a_index if pop.a_index is not None else np.arange(a.size).reshape(pop.a_shape), lead + (m, k)).reshape(-1, m, k)
        bi = np.broadcast_to(pop.b_index if pop.b_index is not None else np.arange(b.size).reshape(pop.b_shape), lead + (k, n)).reshape(-1, k * n)
        return [[(a.name, int(i)) for i in ai[r // m, r % m] if i >= 0] + [(b.name, int(i)) for i in bi[r // m] if i >= 0 and not (b_once and r % m)]
                for r in range(ai.shape[0] * m)]
    w = pop.shape[-1]
    matrices: dict[str, object] = {}
    for block in net.incoming(pop.name):
        src = net.source_of(block)
        m = block_matrix(block, src.size, (block.w_mant != 0).astype(np.float64))
        matrices[src.name] = m if src.name not in matrices else matrices[src.name] + m
    return [[(src, int(c)) for src, m in matrices.items() for c in np.unique(m[r * w:(r + 1) * w].tocoo().col)] for r in range(pop.size // w)]


def _sent_by_row(net, pop, core_of: dict[str, np.ndarray]) -> list[list[int]]:
    """Per row of a host node, the core of each message out of it: each element goes once to
    every core holding neurons on the cores that read it (explicit matrices)."""
    pairs = set()
    for block in net.outgoing(pop.name):
        tgt = net.target_of(block).name
        if tgt in core_of:
            m = block_matrix(block, pop.size, (block.w_mant != 0).astype(np.float64)).tocoo()
            pairs |= {(int(e), int(core_of[tgt][t])) for t, e in zip(m.row, m.col)}
    out: list[list[int]] = [[] for _ in range(pop.size // pop.shape[-1])]
    for e, core in sorted(pairs):
        out[e // pop.shape[-1]].append(core)
    return out


def _expected_rows(net, pop, chip_of: dict[str, np.ndarray], core_of: dict[str, np.ndarray], chip_of_core: np.ndarray) -> list[int]:
    """The chip of each row: rows that read a common neuron on the cores share one (union-find),
    the chip where most of the group's messages, in and out, stay."""
    on_cores = set(core_of)
    reads = _reads_by_row(net, pop)
    parent = list(range(len(reads)))

    def root(r):
        while parent[r] != r:
            parent[r] = parent[parent[r]]
            r = parent[r]
        return r

    first_reader: dict[tuple[str, int], int] = {}
    for r, row in enumerate(reads):
        for key in row:
            if key[0] in on_cores:
                parent[root(r)] = root(first_reader.setdefault(key, r))
    chips: dict[int, list[int]] = {}
    for r, (row, sent) in enumerate(zip(_reads_by_row(net, pop, b_once=True), _sent_by_row(net, pop, core_of))):
        chips.setdefault(root(r), []).extend([int(chip_of[src][i]) for src, i in row] + [int(chip_of_core[c]) for c in sent])
    return [_majority(chips[root(r)]) for r in range(len(reads))]


def test_each_row_runs_on_the_chip_where_most_of_its_messages_stay(on_five_chips):
    net, target, placement = on_five_chips.net, on_five_chips.target, on_five_chips.placement
    core_of, chip_of_core = core_owner(net, placement)
    assert len(set(chip_of_core)) > 1  # operands spread over several chips
    chip_of = {name: chip_of_core[cores] for name, cores in core_of.items()}
    entries = {h["node"]: h for h in placement["host_ops"]}
    from neurocompile.partition.fanout import destinations
    from neurocompile.partition.processors import place_host_ops, units

    host_chips, again, _ = place_host_ops(net, target, core_of, chip_of_core, FaninCache(net))
    assert again == placement["host_ops"]
    work = np.zeros(len(set(chip_of_core)))
    spread = 0
    for pop in net.populations():
        if not pop.on_host:
            continue
        entry = entries[pop.name]
        if pop.kind == "input":
            assert entry["runs_on"] == "host" and (host_chips[pop.name] == -1).all()
            chip_of[pop.name] = host_chips[pop.name]
            continue
        assert entry["runs_on"] == "chip processors" and "embedded processors" in entry["why"]
        rows = _expected_rows(net, pop, chip_of, core_of, chip_of_core)
        width = pop.shape[-1]
        np.testing.assert_array_equal(host_chips[pop.name], np.repeat(rows, width), err_msg=pop.name)
        chip_of[pop.name] = host_chips[pop.name]  # later host nodes read this one where its rows run
        assert entry["chips"] == sorted(set(rows))
        spread += len(entry["chips"]) > 1
        per_row = pop.a_shape[-1] * width if isinstance(pop, Product) else HOST_OP_WORK[pop.op] * width
        assert entry["ops_per_step"] == len(rows) * per_row
        np.add.at(work, rows, per_row)
    assert spread  # some host node's rows run on more than one chip
    # Each neuron on the cores sends to one processor per host node it feeds.
    owner, chip_of_unit = units(core_of, chip_of_core, host_chips)
    for name in core_of:
        pairs = destinations(net, name, owner, chip_of_unit.size)
        if pairs is not None:
            to_processors = pairs[0][pairs[1] >= chip_of_core.size]
            feeds = sum(1 for succ in set(net.graph.successors(name)) if isinstance(net.node(succ), Product)) + sum(
                1 for t in {net.target_of(b).name for b in net.outgoing(name)} if net.node(t).on_host)
            assert np.bincount(to_processors, minlength=1).max() <= max(feeds, 1), name
    # Each core's fan-out axons: one per distinct (neuron, destination unit) of its neurons.
    axons = np.zeros(chip_of_unit.size, np.int64)
    for name in core_of:
        pairs = destinations(net, name, owner, chip_of_unit.size)
        if pairs is not None:
            np.add.at(axons, owner[name][pairs[0]], 1)
    assert [c["fan_out_axons"] for c in placement["cores"]] == axons[: chip_of_core.size].tolist()
    proc = placement["processors"]
    spec = target.spec["chip"]
    assert proc["host_ops_on"] == "chip processors" and proc["ops_per_step"] == work.sum()
    assert proc["busiest_chip"] == int(np.argmax(work)) and proc["busiest_chip_ops"] == work.max()
    assert proc["step_time_s"] == pytest.approx(work.max() / (spec["embedded_cpus"] * spec["embedded_cpu_ops_per_s"]) + spec["embedded_cpu_latency_s"])


def test_host_nodes_send_and_receive_messages_where_they_run(on_five_chips, tmp_path):
    """On the processors, a host node's operands reach it over its chip or from another chip,
    and its results go out the same way; on the system's host every such message leaves the
    chips. The cores and their slices are the same either way."""
    net, placement, report = on_five_chips.net, on_five_chips.placement, on_five_chips.report
    host_target = target_with(tmp_path, cores=16, host_ops='"host"')
    on_host = place(net, host_target)
    assert [c["slices"] for c in on_host["cores"]] == [c["slices"] for c in placement["cores"]]
    assert all(h["runs_on"] == "host" and ("runs on the host" in h["why"] or h["kind"] == "input") for h in on_host["host_ops"])
    assert on_host["processors"] == {"host_ops_on": "host"}
    chips, host = report["spike_traffic_per_step"], spike_traffic(net, host_target, on_host)
    assert chips["inter_chip"] < host["inter_chip"]
    # On the host, every message into or out of a host node leaves the chips.
    sent = placement_messages(net, host_target, on_host)
    host_nodes = [p.name for p in net.populations() if p.on_host]
    for name in host_nodes:
        np.testing.assert_array_equal(sent[name].inter_chip, sent[name].inter_core)
    assert sum(float(sent[name].inter_chip.sum()) for name in host_nodes) > 0


def test_one_chip_keeps_everything_but_the_input_on_chip(artifacts):
    """With one chip, only the input (injected by the host) crosses into it."""
    art = artifacts("digits_mst")
    net, target, placement, report = art.net, art.target, art.placement, art.report
    assert placement["totals"]["chips"] == 1
    sent = placement_messages(net, target, placement)
    assert report["spike_traffic_per_step"]["inter_chip"] == float(sent[net.input.name].inter_core.sum()) > 0
    assert any(isinstance(net.node(h["node"]), HostOp) and h["chips"] == [0] for h in placement["host_ops"])


def test_where_host_ops_run_is_checked(tmp_path):
    with pytest.raises(NeurocompileError, match=r"system.host_ops = 'gpu' is not one of 'chip', 'host'"):
        target_with(tmp_path, host_ops='"gpu"')


def test_inspect_says_where_each_host_node_runs_and_why(on_five_chips):
    import subprocess
    import sys

    art = on_five_chips
    proc = subprocess.run([sys.executable, "-m", "neurocompile.cli", "inspect", str(art.path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout[proc.stdout.index("Host nodes"):].splitlines()
    lines = [line.split("│") for line in table if line.startswith("│")]
    runs_on = [cells[3].strip() for cells in lines if cells[3].strip()]
    why = " ".join(" ".join(cells[-2].split()) for cells in lines)  # the last column, its wrapped lines joined
    on_chips = [h for h in art.placement["host_ops"] if h["runs_on"] == "chip processors"]
    assert len(on_chips) == len(art.placement["host_ops"]) - 1 and runs_on.count("host") == 1
    assert sum(r.startswith("processors (") for r in runs_on) == len(on_chips)
    assert why.count("in groups that share operands, run on the embedded processors of the chip where most of their messages stay") == len(on_chips)
    assert "injected by the host" in why
    from neurocompile.cli.views import _host_ops

    proc_time = art.placement["processors"]["step_time_s"]
    assert _host_ops(art.placement).startswith(f"1 on the host, {len(on_chips)} on the chips' processors")
    assert f"{proc_time * 1e6:.3g} us per step (estimate)" in _host_ops(art.placement)


def test_host_nodes_messages_on_their_chip_cost_the_intra_chip_price(artifacts, tmp_path):
    """docs/energy.md: on one chip, messages into and out of host nodes are priced as within the
    chip. The same cores with host nodes on the system's host cost exactly those messages times
    the difference of the two prices more."""
    from neurocompile.ir.interpret import evaluate
    from neurocompile.partition.energy import _edges, expected_activity, run_energy

    art = artifacts("digits_mst")
    net, target = art.net, art.target
    host_target = target_with(tmp_path, host_ops='"host"')
    activity = expected_activity(net, evaluate(net, np.load(GRAPHS / "digits_mst_test_x.npy")[:16])["post"])
    on_chip = run_energy(net, target, art.placement, activity)
    on_host = run_energy(net, host_target, place(net, host_target), activity)
    host_nodes = {p.name for p in net.populations() if p.on_host and p.kind != "input"}
    moved = sum(float(activity.messages[name][0]) for name, src, dst, _, _ in _edges(net) if src in host_nodes or dst in host_nodes)
    e = target.energy
    assert moved > 0
    assert on_host["dynamic_energy_j"] - on_chip["dynamic_energy_j"] == pytest.approx(moved * (e["spike_inter_chip_j"] - e["spike_intra_chip_j"]))
