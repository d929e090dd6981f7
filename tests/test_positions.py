"""Neuron positions (partition/positions.py): the order in which placement fills the cores."""

from pathlib import Path

import numpy as np
import pytest

from neurocompile.compiler import BuildOptions, compile_network
from neurocompile.ir.nodes import Product
from neurocompile.partition.fanout import FaninCache, product_operands
from neurocompile.partition.positions import _first_inputs, hilbert_rank, neuron_positions
from neurocompile.targets import load_target

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"


def test_the_hilbert_order_steps_to_a_neighbour_and_fills_aligned_squares_in_turn():
    rank = hilbert_rank(8, 8)
    assert sorted(rank.ravel().tolist()) == list(range(64))
    cells = np.argsort(rank.ravel())
    y, x = np.divmod(cells, 8)
    assert (np.abs(np.diff(y)) + np.abs(np.diff(x)) == 1).all()
    for top in (0, 4):
        for left in (0, 4):
            block = np.sort(rank[top:top + 4, left:left + 4].ravel())
            assert (np.diff(block) == 1).all(), (top, left)
    odd = hilbert_rank(5, 7)  # not a power of two: the cells' ranks, renumbered
    assert sorted(odd.ravel().tolist()) == list(range(35)) and odd[0, 0] == 0


@pytest.fixture(scope="module")
def digits_mst():
    net, _, _ = compile_network(GRAPHS / "digits_mst.onnx", load_target("loihi2"), BuildOptions())
    return net, *neuron_positions(net, FaninCache(net))


def test_a_patch_takes_the_position_of_its_first_pixel(digits_mst):
    net, pos, span = digits_mst
    image = net.input
    h, w = image.shape[2:]
    assert span == h * w
    assert (pos[image.name].reshape(image.shape) == hilbert_rank(h, w)).all()
    patches = next(p for p in net.populations() if p.name == "patch_embed.act")
    rows, cols, _ = patches.shape[1:]  # token-major: [1, rows, cols, channels]
    expected = hilbert_rank(h, w)[:: h // rows, :: w // cols]
    assert (pos[patches.name].reshape(patches.shape) == expected[None, :, :, None]).all()


def test_a_products_rows_take_their_heads_position_and_its_operands_keep_their_own(digits_mst):
    net, pos, _ = digits_mst
    fanin = FaninCache(net)
    products = [p for p in net.populations() if isinstance(p, Product)]
    assert len(products) == 8
    spread = 0
    for prod in products:
        m = prod.a_shape[-2]
        windows, heads = (int(d) for d in prod.shape[-4:-2])
        rows = pos[prod.name].reshape(windows, heads, m, prod.shape[-1])
        assert (rows == rows[..., :1]).all() and (rows == rows[:, :, :1]).all()  # one position per head
        (a, a_rows, _), (b, _, _) = product_operands(net, prod)
        first_a = a_rows[np.arange(a_rows.shape[0]), np.argmax(a_rows >= 0, axis=1)]
        row_pos = pos[a][first_a].reshape(windows, heads, m)
        for h in range(heads):  # head h: its row h * m / heads
            np.testing.assert_array_equal(rows[:, h, 0, 0], row_pos[:, h, h * m // heads], err_msg=prod.name)
        if heads > 1:
            assert (rows[:, 0, 0, 0] != rows[:, 1, 0, 0]).all()  # a window's heads apart
        for name in (a, b):  # on the cores, an operand neuron is where its first input is
            if net.node(name).on_host:
                continue
            (src,) = fanin.sources(name)
            first = _first_inputs(fanin.get_pattern(name, src), net.node(name).size)
            np.testing.assert_array_equal(pos[name], pos[src][first], err_msg=name)
            spread += np.unique(pos[name]).size > windows * heads  # a window's tokens apart
    assert spread


def test_a_heads_output_back_in_token_order_stays_beside_its_head(digits_mst):
    """The A V product's output, read elementwise into token-major order: each channel takes its
    own head's position, not the first head's."""
    net, pos, _ = digits_mst
    fanin = FaninCache(net)
    checked = 0
    for prod in (p for p in net.populations() if isinstance(p, Product)):
        for reader in sorted({net.target_of(b).name for b in net.outgoing(prod.name)}):
            pattern = fanin.get_pattern(reader, prod.name)
            first = _first_inputs(pattern, net.node(reader).size)
            np.testing.assert_array_equal(pos[reader], pos[prod.name][first], err_msg=reader)
            if np.unique(pos[reader].reshape(-1, pattern.width), axis=1).shape[1] > 1:
                checked += 1  # a token's channels on several heads' positions
    assert checked


def test_a_relay_read_by_a_patch_merging_takes_its_merged_tokens_position():
    """Pulled populations take the least position of their readers on the cores: the stage's
    last relay, read by the patch merging, moves to the merged tokens (three of the four tokens
    each merged token reads); relays read by their own token, or only by a host node, stay."""
    from neurocompile.partition.resources import _matrix_pattern

    net, _, _ = compile_network(GRAPHS / "digits_mst.onnx", load_target("loihi2"), BuildOptions(relay_sums=3))
    fanin = FaninCache(net)
    relays = frozenset(p.name for p in net.populations() if p.kind == "relay")
    own, _ = neuron_positions(net, fanin)
    pulled, _ = neuron_positions(net, fanin, relays)
    last, merged = "stages.0.stages.0.1.relay", "stages.1.stages.1.0.act"
    readers = _matrix_pattern(net, merged, last).tocsc()  # [merged neurons, relay neurons]
    expected = np.array([own[merged][readers.indices[readers.indptr[j]:readers.indptr[j + 1]]].min() for j in range(net.node(last).size)])
    np.testing.assert_array_equal(pulled[last], expected)
    assert (pulled[last] != own[last]).mean() == 0.75
    for name in relays - {last}:
        np.testing.assert_array_equal(pulled[name], own[name], err_msg=name)
    for name in set(own) - relays:
        np.testing.assert_array_equal(pulled[name], own[name], err_msg=name)


def test_a_relay_is_pulled_where_its_readers_take_more_cores_than_it_has_inputs(tmp_path, monkeypatch):
    """Pulled, each of a relay neuron's three inputs sends it a message from afar; left with its
    inputs, it sends one to every core of the merged token it feeds. On loihi2 a merged token of
    the digits MST fits one core, and the relay stays; on cores of 16 neurons it takes four, and
    the relay moves: fewer messages leave the chips, its own and in all, at the ANN's rates."""
    import importlib

    from conftest import target_with

    from neurocompile.ir.interpret import evaluate
    from neurocompile.partition.traffic import message_rates, placement_messages, spike_traffic

    place_module = importlib.import_module("neurocompile.partition.place")
    relay = "stages.0.stages.0.1.relay"
    decided = []
    pulled = place_module._pulled
    monkeypatch.setattr(place_module, "_pulled", lambda *args: decided.append(pulled(*args)) or decided[-1])
    compile_network(GRAPHS / "digits_mst.onnx", target_with(tmp_path, cores=16), BuildOptions(relay_sums=3))
    assert relay not in decided[-1]

    target = target_with(tmp_path, cores=16, neurons=16, chips=1000)
    x = np.load(GRAPHS / "digits_mst_test_x.npy")[:32].astype(np.float64)
    leaving = {}
    for pull in (True, False):
        if not pull:
            monkeypatch.setattr(place_module, "_pulled", lambda *args: frozenset())
        net, placement, _ = compile_network(GRAPHS / "digits_mst.onnx", target, BuildOptions(relay_sums=3))
        rates = message_rates(net, evaluate(net, x)["post"])
        sent = placement_messages(net, target, placement)[relay].inter_chip
        leaving[pull] = (float(rates[relay] @ sent), spike_traffic(net, target, placement, rates)["inter_chip"])
    assert relay in decided[-1]
    assert leaving[True][0] < leaving[False][0] and leaving[True][1] < leaving[False][1], leaving
