"""Neuron positions (partition/positions.py): the order in which placement fills the cores."""

from pathlib import Path

import numpy as np
import pytest

from neurocompile.compiler import BuildOptions, compile_network
from neurocompile.ir.nodes import Product
from neurocompile.partition.fanout import FaninCache, product_operands
from neurocompile.partition.positions import hilbert_rank, neuron_positions
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


def test_a_products_lead_and_the_operands_it_reads_share_one_position(digits_mst):
    net, pos, _ = digits_mst
    products = [p for p in net.populations() if isinstance(p, Product)]
    assert len(products) == 8
    for prod in products:
        m = prod.a_shape[-2]
        rows = pos[prod.name].reshape(-1, prod.shape[-1])
        assert (rows == rows[:, :1]).all()
        lead_pos = rows[::m, 0]
        assert (rows[:, 0].reshape(-1, m) == lead_pos[:, None]).all()
        (a, a_rows, _), (b, b_rows, _) = product_operands(net, prod)
        for name, index in ((a, a_rows.reshape(lead_pos.size, -1)), (b, b_rows)):
            valid = index >= 0
            assert (pos[name][index[valid]] == np.broadcast_to(lead_pos[:, None], index.shape)[valid]).all(), (prod.name, name)
    windows = {int(np.unique(pos[prod.name]).size) for prod in products}
    assert windows == {4, 1}  # the first stage's four windows, the second's one
