"""Dead-code elimination: synapse blocks whose weights are all zero, and populations from which
no path reaches the readout."""

from __future__ import annotations

import networkx as nx
import numpy as np

from ..ir.graph import Network
from ..ir.nodes import InputPopulation


def eliminate_dead_code(net: Network) -> bool:
    changed = False
    for block in net.synapses():
        if block.kernel is not None and not np.any(block.kernel.weight):
            net.remove(block.name)
            changed = True
    live = nx.ancestors(net.graph, net.readout.name) | {net.readout.name}
    for name in list(net.graph.nodes):
        node = net.node(name)
        if name not in live and not isinstance(node, InputPopulation):
            net.remove(name)
            changed = True
    return changed

