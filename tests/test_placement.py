"""Placement: every core within the target's limits, re-checked from the artifact alone."""

import numpy as np
import pytest

from neurocompile.compiler import BuildOptions, compile_network
from neurocompile.errors import NeurocompileError
from neurocompile.ir.interpret import evaluate
from neurocompile.partition import place
from neurocompile.partition.validate import placement_problems
from neurocompile.targets import load_target

from conftest import GRAPHS, target_with


@pytest.mark.parametrize("target", ["loihi2-sim", "loihi1"])
@pytest.mark.parametrize("model", ["digits_mlp", "digits_cnn"])
def test_every_core_passes_the_validator(artifacts, model, target):
    art = artifacts(model, target=target)
    assert placement_problems(art.net, art.target, art.placement) == []
    assert art.placement["lower_bound_cores"] <= art.placement["totals"]["cores"]


def test_validator_catches_a_wrong_claim_and_a_gap(artifacts):
    art = artifacts("digits_cnn")
    cores = [dict(c, slices=[dict(s) for s in c["slices"]]) for c in art.placement["cores"]]
    cores[0]["neurons"] += 1
    cores[1]["slices"][0]["start"] += 3
    problems = placement_problems(art.net, art.target, dict(art.placement, cores=cores))
    assert any("neurons" in p and "recomputed" in p for p in problems)
    assert any("not placed" in p for p in problems)


def test_placement_leaves_the_network_unchanged():
    target = load_target("loihi2-sim")
    net, _, _ = compile_network(GRAPHS / "digits_cnn.onnx", target, BuildOptions())
    x = np.load(GRAPHS / "digits_test_x.npy")[:4]
    before = evaluate(net, x, quantized=True)["post"]
    place(net, target)
    after = evaluate(net, x, quantized=True)["post"]
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])


def test_model_too_large_for_the_target_says_what_and_how_much(tmp_path):
    spec = (GRAPHS.parent / "targets" / "loihi1.toml").read_text().replace("chips = 2", "chips = 1").replace("cores = 128", "cores = 4")
    small = tmp_path / "tiny_chip.toml"
    small.write_text(spec)
    with pytest.raises(NeurocompileError, match=r"needs \d+ cores; target .* offers 4"):
        compile_network(GRAPHS / "digits_cnn.onnx", load_target(str(small)), BuildOptions())


@pytest.mark.parametrize("model", ["digits_mlp", "digits_cnn"])
def test_shipped_models_quantize_without_warnings(artifacts, model):
    report = artifacts(model).report
    assert report["warnings"] == []
    assert max(q["weight_rel_error"] for q in report["quantization"].values()) < 0.05


def _target_with(tmp_path, key: str, value: int):
    """loihi2 with one per-core limit lowered (and plenty of cores), so that it binds alone."""
    return target_with(tmp_path, chips=64, **{key: value})


# (limit, value that makes it bind on the digits MLP, the placement field it limits)
LIMITS = [("neurons", 24, "neurons"), ("synapse_memory_bits", 20000, "synapse_bits"), ("fan_in_axons", 200, "fan_in_axons"), ("fan_out_axons", 30, "fan_out_axons")]


@pytest.mark.parametrize("strategy", ["packed", "naive"])
@pytest.mark.parametrize("limit,value,field", LIMITS)
def test_each_limit_alone_binds_and_every_core_respects_it(tmp_path, limit, value, field, strategy):
    target = _target_with(tmp_path, limit, value)
    net, _, _ = compile_network(GRAPHS / "digits_mlp.onnx", target, BuildOptions())
    placement = place(net, target, strategy)
    assert placement_problems(net, target, placement) == []
    used = max(c[field] for c in placement["cores"])
    assert value // 2 < used <= value, (field, used, value)


def test_packing_beats_one_slice_per_core_on_the_digits_mst():
    from neurocompile.ir.interpret import evaluate, spike_rates
    from neurocompile.partition.traffic import spike_traffic

    target = load_target("loihi2-sim")
    net, _, _ = compile_network(GRAPHS / "digits_mst.onnx", target, BuildOptions())
    post = evaluate(net, np.load(GRAPHS / "digits_mst_test_x.npy")[:32])["post"]
    rates = {name: r.mean(axis=0) for name, r in spike_rates(net, post).items()}
    packed, naive = place(net, target, "packed"), place(net, target, "naive")
    for placement in (packed, naive):
        assert placement_problems(net, target, placement) == []
    assert packed["lower_bound_cores"] <= packed["totals"]["cores"] < naive["totals"]["cores"]
    assert spike_traffic(net, target, packed, rates)["inter_core"] < spike_traffic(net, target, naive, rates)["inter_core"]


@pytest.mark.parametrize("model", ["digits_mst", "digits_cnn"])
def test_rows_of_a_block_equal_those_of_its_whole_matrix(model):
    from neurocompile.ir.connectivity import block_matrix, block_rows

    net, _, _ = compile_network(GRAPHS / f"{model}.onnx", load_target("loihi2"), BuildOptions())
    rng = np.random.default_rng(0)
    kinds = set()
    for block in net.synapses():
        n = net.source_of(block).size
        whole = block_matrix(block, n)
        kinds.add((block.kernel.kind, block.in_index is not None, block.out_index is not None))
        for _ in range(3):
            start = int(rng.integers(0, whole.shape[0]))
            stop = int(rng.integers(start, whole.shape[0] + 1))
            rows = block_rows(block, n, start, stop)
            assert rows.shape == (stop - start, n)
            assert (rows != whole[start:stop]).nnz == 0
    assert len(kinds) >= 3  # dense, elementwise, conv or sparse, with and without index maps


def test_a_neuron_too_large_for_any_core_is_refused_before_blocks_are_built_whole(tmp_path, monkeypatch):
    import neurocompile.partition.fanout as fanout_module

    target = _target_with(tmp_path, "fan_in_axons", 40)
    net, _, _ = compile_network(GRAPHS / "digits_mlp.onnx", load_target("loihi2"), BuildOptions())

    def built_whole(*args):
        raise AssertionError("a block was built whole before the single-neuron check")

    monkeypatch.setattr(fanout_module, "fanin_patterns", built_whole)
    with pytest.raises(NeurocompileError, match=r"population '[^']+': neuron 0 alone needs \d+ fan-in axons .* a core has 40 axons"):
        place(net, target)


@pytest.mark.parametrize("model", ["digits_mst", "digits_cnn"])
def test_token_wise_fan_in_costs_what_its_explicit_matrix_costs(model):
    from neurocompile.partition.leads import LeadPattern
    from neurocompile.partition.resources import _matrix_pattern, fanin_patterns, slice_cost

    target = load_target("loihi2")
    net, _, _ = compile_network(GRAPHS / f"{model}.onnx", target, BuildOptions())
    rng = np.random.default_rng(1)
    checked = 0
    for pop in (p for p in net.populations() if not p.on_host):
        for src, pattern in fanin_patterns(net, pop.name):
            if not isinstance(pattern, LeadPattern):
                continue
            matrix = _matrix_pattern(net, pop.name, src)
            for _ in range(10):
                start = int(rng.integers(0, pop.size))
                stop = int(rng.integers(start + 1, pop.size + 1))
                assert slice_cost([(src, pattern)], start, stop, target.core, 8) == slice_cost([(src, matrix)], start, stop, target.core, 8)
            checked += 1
    assert checked >= 2


def test_a_patch_convolution_is_read_token_wise_pixel_by_pixel():
    """The digits MST's patch embedding (2x2 patches, token-major) is a lead pattern, and every
    slice's axons carry the synapses its explicit matrix gives each pixel. One tap is zeroed in
    every filter so that a pixel mistaken for another in its patch would show."""
    from neurocompile.partition.leads import LeadPattern, lead_pattern
    from neurocompile.partition.resources import _matrix_pattern, axons_of

    net, _, _ = compile_network(GRAPHS / "digits_mst.onnx", load_target("loihi2"), BuildOptions())
    (block,) = net.incoming("patch_embed.act")
    block.w_mant[:, :, 0, 1] = 0
    block.w_mant[::2, :, 1, 0] = 0
    pattern, matrix = lead_pattern(net, "patch_embed.act", "image"), _matrix_pattern(net, "patch_embed.act", "image")
    assert isinstance(pattern, LeadPattern) and pattern.width == block.kernel.weight.shape[0]
    size = net.node("patch_embed.act").size
    rng = np.random.default_rng(2)
    for start, stop in [(0, size), (0, 1), (size - 1, size)] + [tuple(sorted(rng.choice(size + 1, 2, replace=False))) for _ in range(20)]:
        got, expected = axons_of(pattern, start, stop), axons_of(matrix, start, stop)
        order = np.argsort(got[0])
        np.testing.assert_array_equal(got[0][order], expected[0])
        np.testing.assert_array_equal(got[1][order], expected[1])


def test_token_wise_destinations_equal_those_of_the_explicit_matrices():
    from neurocompile.partition.fanout import FaninCache, destinations
    from neurocompile.partition.resources import _matrix_pattern
    from neurocompile.partition.traffic import placement_units

    target = load_target("loihi2")
    net, placement, _ = compile_network(GRAPHS / "digits_mst.onnx", target, BuildOptions())
    owner, chip_of = placement_units(net, target, placement)  # cores, and host nodes on the chip's processors
    assert {net.node(name).kind for name in owner} >= {"if", "host", "product", "input"}
    explicit = FaninCache(net)
    for block in net.synapses():
        tgt, src = net.target_of(block).name, net.source_of(block).name
        explicit[(tgt, src)] = _matrix_pattern(net, tgt, src)
    units = chip_of.size
    for name in owner:
        fast = destinations(net, name, owner, units)
        slow = destinations(net, name, owner, units, explicit)
        assert (fast is None) == (slow is None)
        if fast is not None:
            np.testing.assert_array_equal(fast[0], slow[0])
            np.testing.assert_array_equal(fast[1], slow[1])


def test_messages_per_neuron_count_its_distinct_destinations(tmp_path):
    """fan_out_and_messages groups pairs by neuron without sorting them: against the sorted
    distinct pairs, on chips of 16 cores so that messages cross chips."""
    from conftest import target_with

    from neurocompile.partition.fanout import destinations, fan_out_and_messages
    from neurocompile.partition.traffic import placement_units

    target = target_with(tmp_path, cores=16)
    net, placement, _ = compile_network(GRAPHS / "digits_mst.onnx", target, BuildOptions())
    owner, chip_of = placement_units(net, target, placement)
    axons, sent = fan_out_and_messages(net, owner, chip_of)
    expected_axons = np.zeros(chip_of.size, np.int64)
    for name, own in owner.items():
        pairs = destinations(net, name, owner, chip_of.size)
        neuron, dest = pairs if pairs is not None else (np.zeros(0, np.int64), np.zeros(0, np.int64))  # the readout sends nothing
        here = own[neuron]
        same = dest == here
        off_chip = ~same & ((dest < 0) | (here < 0) | (chip_of[np.maximum(here, 0)] != chip_of[np.maximum(dest, 0)]))
        np.add.at(expected_axons, here[here >= 0], 1)
        for got, pairs in ((sent[name].local, same), (sent[name].inter_core, ~same), (sent[name].inter_chip, off_chip)):
            np.testing.assert_array_equal(got, np.bincount(neuron[pairs], minlength=own.size), err_msg=name)
    np.testing.assert_array_equal(axons, expected_axons)
    assert placement["totals"]["chips"] > 1 and sum(int(m.inter_chip.sum()) for m in sent.values()) > 0


@pytest.mark.parametrize("limit,value", [(None, None), ("synapse_memory_bits", 100000), ("fan_in_axons", 1100), ("neurons", 50)])
def test_token_wise_slicing_finds_the_slices_of_the_general_search(tmp_path, limit, value):
    import importlib

    from neurocompile.partition.resources import fanin_patterns

    place_module = importlib.import_module("neurocompile.partition.place")
    target = load_target("loihi2") if limit is None else _target_with(tmp_path, limit, value)
    net, _, _ = compile_network(GRAPHS / "digits_mst.onnx", load_target("loihi2"), BuildOptions())
    patterns = {p.name: fanin_patterns(net, p.name) for p in net.populations() if not p.on_host}
    for caps in ({}, {name: 37 for name in patterns}):
        fast = place_module._slices(net, target, patterns, caps, fast=True)
        assert fast == place_module._slices(net, target, patterns, caps, fast=False)


@pytest.mark.parametrize("fan_out_axons", [4096, 300])
def test_slice_fan_out_bounds_equal_a_full_recount(tmp_path, fan_out_axons):
    import importlib

    from neurocompile.partition.fanout import fan_out_and_messages
    from neurocompile.partition.resources import fanin_patterns

    place_module = importlib.import_module("neurocompile.partition.place")
    target = _target_with(tmp_path, "fan_out_axons", fan_out_axons)
    net, _, _ = compile_network(GRAPHS / "digits_mst.onnx", load_target("loihi2"), BuildOptions())
    patterns = {p.name: fanin_patterns(net, p.name) for p in net.populations() if not p.on_host}
    slices, bound, _ = place_module._slice_within_fan_out(net, target, patterns, place_module.FaninCache(net))
    owner = {name: np.empty(net.node(name).size, np.int64) for name in patterns}
    for k, (name, start, stop, _) in enumerate(slices):
        owner[name][start:stop] = k
    np.testing.assert_array_equal(bound, fan_out_and_messages(net, owner, np.zeros(len(slices), np.int64))[0])  # slices as units
    assert bound.max() <= fan_out_axons


@pytest.mark.parametrize("model", ["digits_mst", "digits_cnn"])
def test_synapses_per_source_neuron_are_counted_without_the_matrix(model):
    from neurocompile.ir.connectivity import block_matrix, source_fanout

    net, _, _ = compile_network(GRAPHS / f"{model}.onnx", load_target("loihi2"), BuildOptions())
    for block in net.synapses():
        n = net.source_of(block).size
        whole = block_matrix(block, n, (block.kernel.weight != 0).astype(np.float64))
        np.testing.assert_array_equal(source_fanout(block, n), np.bincount(whole.indices, minlength=n))


def test_convolution_fan_out_counted_per_tap_equals_the_matrix_columns():
    """Conv2d.fanout counts each input's synapses per kernel tap; strides, pads, dilations,
    groups and zero weights drawn at random, against the explicit matrix's column counts (each
    output counted as often as targets take it)."""
    from neurocompile.ir.kernels import Conv2d

    rng = np.random.default_rng(5)
    checked = 0
    while checked < 60:
        group, cg, og, kh, kw = (int(v) for v in rng.integers(1, [4, 4, 4, 5, 5]))
        weight = rng.normal(size=(og * group, cg, kh, kw)) * (rng.random((og * group, cg, kh, kw)) < 0.6)
        kernel = Conv2d(weight=weight, strides=tuple(rng.integers(1, 4, 2)), pads=tuple(rng.integers(0, 3, 4)),
                        dilations=tuple(rng.integers(1, 3, 2)), group=group)
        view = (int(rng.integers(1, 3)), cg * group, int(rng.integers(2 * kh, 12)), int(rng.integers(2 * kw, 12)))
        if min(kernel.out_shape(view)[2:]) <= 0:
            continue
        matrix = kernel.connectivity(view)
        np.testing.assert_array_equal(kernel.fanout(view), np.bincount(matrix.indices, minlength=int(np.prod(view))))
        outputs = int(np.prod(kernel.out_shape(view)))
        for uses in (np.full(outputs, 2), rng.integers(0, 3, outputs)):  # every output taken twice; unevenly
            np.testing.assert_array_equal(kernel.fanout(view, uses), np.rint(matrix.T @ uses.astype(np.float64)).astype(np.int64))
        checked += 1


def test_distinct_pairs_equal_those_of_numpy_unique():
    from neurocompile.partition.fanout import HOST, distinct_pairs

    rng = np.random.default_rng(2)
    for n, units in ((1, 1), (50, 7), (1000, 300)):
        neurons = rng.integers(0, n, 5000)
        dests = rng.integers(HOST, units, 5000)
        got = distinct_pairs(neurons, dests, n)
        pairs = np.unique(np.stack([dests, neurons], axis=1), axis=0)  # unit-major, as distinct_pairs orders them
        np.testing.assert_array_equal(got[0], pairs[:, 1])
        np.testing.assert_array_equal(got[1], pairs[:, 0])


def test_synapse_memory_of_an_axon_looked_up_or_computed_is_the_same():
    """Counts below a core's neurons come from a table, larger ones from the formula; both are
    Loihi's accounting: synapses of weight + index bits, a header per block, whole words."""
    from neurocompile.partition.resources import axon_bits_each

    core = load_target("loihi2").core
    n = np.arange(3 * core["neurons"])
    blocks = -(-n // core["synapses_per_axon_block"])
    bits = n * (8 + core["synapse_index_bits"]) + blocks * core["synapse_header_bits"]
    expected = -(-bits // core["synapse_word_bits"]) * core["synapse_word_bits"]
    np.testing.assert_array_equal(axon_bits_each(n, core, 8), expected)  # past the table: the formula
    np.testing.assert_array_equal(axon_bits_each(n[: core["neurons"]], core, 8), expected[: core["neurons"]])
    np.testing.assert_array_equal(axon_bits_each(n[:2000].reshape(40, 50), core, 8), expected[:2000].reshape(40, 50))
    assert axon_bits_each(np.zeros(0, np.int64), core, 8).shape == (0,)


def test_elementwise_fed_populations_fill_the_room_other_slices_leave(tmp_path, monkeypatch):
    """With fan-out binding, the residual stream's slices would take cores of their own; poured
    into the spare fan-out of other cores they take fewer, and every core still passes."""
    import importlib

    from neurocompile.partition.resources import fanin_patterns

    place_module = importlib.import_module("neurocompile.partition.place")
    target = _target_with(tmp_path, "fan_out_axons", 300)
    net, _, _ = compile_network(GRAPHS / "digits_mst.onnx", load_target("loihi2"), BuildOptions())
    poured = place(net, target)
    assert placement_problems(net, target, poured) == []
    free = {p.name for p in net.populations() if not p.on_host and place_module._splits_freely(fanin_patterns(net, p.name))}
    assert any(name.endswith("act1") for name in free)  # the residual stream after attention
    hosts = [c for c in poured["cores"] if {s["population"] for s in c["slices"]} & free and {s["population"] for s in c["slices"]} - free]
    assert hosts  # pieces of the residual stream on cores that other populations' slices opened
    monkeypatch.setattr(place_module, "_splits_freely", lambda patterns: False)
    apart = place(net, target)
    assert placement_problems(net, target, apart) == []
    assert poured["totals"]["cores"] < apart["totals"]["cores"]


@pytest.mark.parametrize("model", ["digits_cnn", "digits_mst"])
def test_longest_fit_finds_the_largest_slice_that_fits_whatever_the_hint(model):
    """The galloping search from the previous slice's length finds what trying every stop
    finds, for hints below, at and above the answer (a core small enough that several limits
    bind and every stop can be tried)."""
    from neurocompile.partition.place import _longest_fit
    from neurocompile.partition.resources import fanin_patterns, slice_cost

    target = load_target("loihi2")
    core = dict(target.core, neurons=48, synapse_memory_bits=target.core["synapse_memory_bits"] // 16, fan_in_axons=256)
    net, _, _ = compile_network(GRAPHS / f"{model}.onnx", target, BuildOptions())
    rng = np.random.default_rng(5)
    checked = 0
    for pop in (p for p in net.populations() if not p.on_host):
        patterns = fanin_patterns(net, pop.name)
        for start in rng.integers(0, pop.size, 3).tolist():
            if not slice_cost(patterns, start, start + 1, core, 8).fits(core):
                continue
            top = min(pop.size, start + core["neurons"])
            expected = max(stop for stop in range(start + 1, top + 1) if slice_cost(patterns, start, stop, core, 8).fits(core))
            for hint in sorted({1, 2, expected - start, expected - start + 1, 7, core["neurons"]}):
                stop, cost = _longest_fit(patterns, start, pop.size, core, 8, pop.name, pop.size, max(1, hint))
                assert stop == expected, (pop.name, start, hint)
                assert cost == slice_cost(patterns, start, stop, core, 8)
            checked += expected < top  # a limit other than the population's end stopped it
    assert checked >= 5


def test_a_tokens_layers_share_a_chip(tmp_path, monkeypatch):
    """Token-wise layers packed in stripes (a fraction of every layer at a time) keep each
    token's spikes on its chip; packed layer after layer, nearly all of them cross chips."""
    import importlib

    import torch
    from torch import nn

    from neurocompile.partition.traffic import spike_traffic
    from snn_models.qcfs import QCFS

    place_module = importlib.import_module("neurocompile.partition.place")
    torch.manual_seed(0)
    layers = []
    for _ in range(4):
        layers += [nn.Linear(16, 64), QCFS(), nn.Linear(64, 16), QCFS()]
    path = tmp_path / "token_mlp.onnx"
    torch.onnx.export(nn.Sequential(*layers).eval(), torch.rand(1, 256, 16), str(path), opset_version=17, input_names=["x"])
    net, _, _ = compile_network(path, load_target("loihi2"), BuildOptions())
    target = target_with(tmp_path, cores=16, chips=64, synapse_memory_bits=100000)
    striped = place(net, target)
    monkeypatch.setattr(place_module, "STRIPES_PER_CHIP", 1e-9)  # one stripe: layer after layer
    layered = place(net, target)
    for placement in (striped, layered):
        assert placement_problems(net, target, placement) == []
    crossing = [spike_traffic(net, target, p)["inter_chip"] for p in (striped, layered)]
    assert crossing[0] < 0.5 * crossing[1], crossing


@pytest.mark.parametrize("in_order", [True, False])
def test_distinct_units_per_neuron_count_each_pair_once(in_order):
    """The one-pass count (units in nondecreasing order) and the sort (any order) both give,
    per neuron, the number of distinct units among its pairs, repeats and the host included."""
    from neurocompile.partition.fanout import distinct_units_per_neuron

    rng = np.random.default_rng(11)
    neurons = rng.integers(0, 50, 4000)
    units = rng.integers(-1, 40, 4000)  # -1: the host
    if in_order:
        units = np.sort(units)
    expected = np.array([np.unique(units[neurons == k]).size for k in range(60)])
    assert np.array_equal(distinct_units_per_neuron(neurons, units, 60), expected)
    assert expected.max() > 1 and (expected == 0).any()


def test_a_lead_patterns_distinct_units_counted_without_its_pairs_equal_those_of_its_pairs():
    """LeadPattern.distinct_units (the fan-out bound's count, no pairs written) against the
    distinct units of LeadPattern.runs' pairs, on random blocks: any widths, leads, padding
    (-1 sources), channel offsets and synapses; None where units fall along the target."""
    from neurocompile.partition.fanout import distinct_units_per_neuron
    from neurocompile.partition.leads import LeadPattern, Part

    rng = np.random.default_rng(5)
    counted = refused = 0
    for _ in range(300):
        width, leads, n_in, n_source = int(rng.integers(1, 6)), int(rng.integers(0, 6)), int(rng.integers(1, 5)), 12
        n_out = width + int(rng.integers(0, 3))
        synapses = rng.integers(0, 2, (n_out, n_in))
        part = Part(sources=rng.integers(-1, n_source, (leads, n_in)), offset=rng.integers(0, n_out - width + 1, leads),
                    prefix=np.concatenate([np.zeros((1, n_in), np.int64), np.cumsum(synapses, axis=0)]), one_to_one=False)
        pattern = LeadPattern(width=width, parts=[part])
        own = rng.integers(-1, 4, leads * width)
        if rng.random() < 0.7:
            own = np.sort(own)
        got = pattern.distinct_units(own, n_source)
        if own.size > 1 and (np.diff(own) < 0).any():
            assert got is None
            refused += 1
            continue
        np.testing.assert_array_equal(got, distinct_units_per_neuron(*pattern.runs(own), n_source))
        counted += got.sum() > 0
    assert counted > 100 and refused > 30
    two = LeadPattern(width=1, parts=[part, part])  # several blocks: left to the pairs
    assert two.distinct_units(np.zeros(part.sources.shape[0], np.int64), n_source) is None


def test_pouring_fills_the_room_left_and_names_a_neuron_no_core_takes():
    from neurocompile.partition.counting import pour

    n = 10
    bound = np.ones(n, np.int64)
    bound[7] = 100  # more fan-out than a core has
    totals = np.stack([np.arange(n + 1), 10 * np.arange(n + 1), np.arange(n + 1), np.concatenate([[0], np.cumsum(bound)])]).astype(np.int64)
    capacity = np.array([4, 1000, 1000, 50], np.int64)
    used = np.zeros((16, 4), np.int64)
    used[0, 0] = 2  # core 0 has room for 2 neurons, and holds the inputs of every neuron
    cores, stops, open_cores, stuck = pour(totals, np.zeros((1, n), np.int64), 0, n, used, 1, capacity, 16, 64, 2)
    # 0..1 fill core 0; 2..5 a new core (4 neurons); 6 a third, as neuron 7's fan-out would pass
    # a core's; 7 fits no core
    assert cores.tolist() == [0, 1, 2] and stops.tolist() == [2, 6, 7] and open_cores == 3 and stuck == 7
    np.testing.assert_array_equal(used[:4, 0], [4, 4, 1, 0])
    assert (used <= capacity).all()


def test_slices_and_pieces_join_no_core_of_an_earlier_chip():
    """Chips of 4 cores, 5 open: core 3 (chip 0) has room, core 4 (chip 1) has none. A slice
    that fits core 3 opens a new core instead, and so does a poured piece, unless core 3 holds
    its inputs; with chips of 8 cores both join core 3."""
    from neurocompile.partition.counting import open_cores_until_one_fits, pour

    capacity = np.array([10, 10, 10, 10], np.int64)

    def used_now():
        used = np.zeros((8, 4), np.int64)
        used[:5] = 10
        used[3] = 0
        return used

    for chip_cores, joins in ((4, False), (8, True)):
        used, homes = used_now(), np.full(1, -1, np.int64)
        fitting_at, open_cores = open_cores_until_one_fits(np.full((1, 4), 5, np.int64), 0, used, 5, capacity, 16, chip_cores, homes)
        assert (fitting_at, open_cores) == ((0, 5) if joins else (1, 6))
        n = 3
        totals = np.tile(np.arange(n + 1), (4, 1)).astype(np.int64)
        for home, to in ((-1, 3 if joins else 5), (3, 3)):
            used = used_now()
            cores, stops, _, _ = pour(totals, np.full((1, n), home, np.int64), 0, n, used, 5, capacity, 16, chip_cores, 1)
            assert cores.tolist() == [to] and stops.tolist() == [n]


def test_stripe_cuts_keep_slices_in_one_stripe_where_asked(tmp_path):
    """`build --stripe-cuts all`: no core slice holds neurons of two stripes (a window's Q, K
    and V rows then sit with the tokens that feed them); `none`: some do; `small`, the default:
    none of a population whose piece between stripe changes (the median one) takes at most
    SMALL_PIECE of a core, while a population of larger pieces still spans. All pass the
    validator."""
    import importlib

    from neurocompile.partition.fanout import FaninCache
    from neurocompile.partition.positions import neuron_positions
    from neurocompile.partition.resources import fanin_patterns, slice_cost

    place_module = importlib.import_module("neurocompile.partition.place")
    target = target_with(tmp_path, cores=16)
    core, wbits = target.core, target.numerics.weight_mantissa_bits
    net, cut, _ = compile_network(GRAPHS / "digits_mst.onnx", target, BuildOptions(stripe_cuts="all"))
    uncut, small = place(net, target, stripe_cuts="none"), place(net, target)
    pos, span = neuron_positions(net, FaninCache(net))
    stripes = -(-cut["lower_bound_cores"] // (16 // place_module.STRIPES_PER_CHIP))  # the count the cuts use

    def stripe_of(name):
        return pos[name] * stripes // span

    def spanning(placement) -> set[str]:
        return {s["population"] for c in placement["cores"] for s in c["slices"] if np.ptp(stripe_of(s["population"])[s["start"]:s["stop"]]) > 0}

    def piece_share(name) -> float:
        stripe = stripe_of(name)
        bounds = np.concatenate([[0], np.flatnonzero(np.diff(stripe)) + 1, [stripe.size]])
        k = int(np.argsort(np.diff(bounds), kind="stable")[(bounds.size - 1) // 2])
        cost = slice_cost(fanin_patterns(net, name), int(bounds[k]), int(bounds[k + 1]), core, wbits)
        return max(cost.neurons / core["neurons"], cost.synapse_bits / core["synapse_memory_bits"], cost.fan_in_axons / core["fan_in_axons"])

    assert cut["totals"]["chips"] > 1
    assert not spanning(cut) and spanning(uncut)
    large = spanning(small)
    assert large and all(piece_share(name) > place_module.SMALL_PIECE for name in large)
    assert any(piece_share(name) <= place_module.SMALL_PIECE for name in spanning(uncut))  # small cuts some that span uncut
    for placement in (cut, uncut, small):
        assert placement_problems(net, target, placement) == []
