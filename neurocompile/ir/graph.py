"""The IR container: a networkx DiGraph keyed by node name.

Populations and synapse blocks are both nodes; an edge population -> block enters the block's
`s_in` port, an edge block -> population enters the population's `a_in` port (inputs sum there).
"""

from __future__ import annotations

from typing import Iterator

import networkx as nx
import numpy as np

from ..errors import NeurocompileError
from .nodes import PRODUCT_FORMS, InputPopulation, Population, Product, Readout, SynapseBlock, size


class Network:
    def __init__(self) -> None:
        self.graph = nx.DiGraph()
        self.meta: dict = {}  # model-level facts: input name/shape, output name, opset, ...

    # --- construction
    def add(self, node) -> None:
        if node.name in self.graph:
            raise NeurocompileError(f"IR already has a node named '{node.name}'")
        self.graph.add_node(node.name, node=node)

    def connect(self, block: SynapseBlock, source: str, target: str) -> None:
        self.add(block)
        self.graph.add_edge(source, block.name, src_port="s_out", dst_port="s_in")
        self.graph.add_edge(block.name, target, src_port="a_out", dst_port="a_in")

    def connect_operands(self, product: Product, a: str, b: str) -> None:
        self.add(product)
        self.graph.add_edge(a, product.name, src_port="s_out", dst_port="a")
        self.graph.add_edge(b, product.name, src_port="s_out", dst_port="b")

    def remove(self, name: str) -> None:
        self.graph.remove_node(name)

    def unique_name(self, base: str) -> str:
        name, k = base, 1
        while name in self.graph:
            k += 1
            name = f"{base}_{k}"
        return name

    # --- queries
    def __contains__(self, name: str) -> bool:
        return name in self.graph

    def node(self, name: str):
        return self.graph.nodes[name]["node"]

    def nodes(self) -> Iterator:
        for name in self.graph.nodes:
            yield self.graph.nodes[name]["node"]

    def populations(self) -> list:
        """Populations in a deterministic topological order (inputs first)."""
        order = list(nx.lexicographical_topological_sort(self.graph))
        return [self.node(n) for n in order if isinstance(self.node(n), Population)]

    def synapses(self) -> list[SynapseBlock]:
        order = list(nx.lexicographical_topological_sort(self.graph))
        return [self.node(n) for n in order if isinstance(self.node(n), SynapseBlock)]

    def source_of(self, block: SynapseBlock):
        (src,) = self.graph.predecessors(block.name)
        return self.node(src)

    def target_of(self, block: SynapseBlock):
        (dst,) = self.graph.successors(block.name)
        return self.node(dst)

    def incoming(self, pop_name: str) -> list[SynapseBlock]:
        blocks = (self.node(b) for b in self.graph.predecessors(pop_name))
        return sorted((b for b in blocks if isinstance(b, SynapseBlock)), key=lambda b: b.name)

    def operands(self, product_name: str) -> tuple[Population, Population]:
        ports = {d["dst_port"]: self.node(u) for u, _, d in self.graph.in_edges(product_name, data=True)}
        return ports["a"], ports["b"]

    def outgoing(self, pop_name: str) -> list[SynapseBlock]:
        blocks = (self.node(b) for b in self.graph.successors(pop_name))
        return sorted((b for b in blocks if isinstance(b, SynapseBlock)), key=lambda b: b.name)

    @property
    def input(self) -> InputPopulation:
        (inp,) = [p for p in self.nodes() if isinstance(p, InputPopulation)]
        return inp

    @property
    def readout(self) -> Readout:
        (out,) = [p for p in self.nodes() if isinstance(p, Readout)]
        return out

    def delays(self) -> dict[str, int]:
        """Steps from the input to each node: one per synapse hop on the longest path (products
        take their operands of the same step and add none)."""
        dist = {self.input.name: 0}
        for name in nx.topological_sort(self.graph):
            for succ in self.graph.successors(name):
                hop = 1 if isinstance(self.node(succ), SynapseBlock) else 0
                dist[succ] = max(dist.get(succ, 0), dist.get(name, 0) + hop)
        return dist

    def latency(self) -> int:
        """Steps from the input to the readout."""
        return self.delays().get(self.readout.name, 0)

    # --- validation
    def validate(self) -> None:
        """Checks the invariants every pass must keep; names the offending node."""
        inputs = [p for p in self.nodes() if isinstance(p, InputPopulation)]
        readouts = [p for p in self.nodes() if isinstance(p, Readout)]
        if len(inputs) != 1 or len(readouts) != 1:
            raise NeurocompileError(f"IR must have one input and one readout, has {len(inputs)} and {len(readouts)}")
        if not nx.is_directed_acyclic_graph(self.graph):
            raise NeurocompileError(f"IR has a cycle: {nx.find_cycle(self.graph)}")
        for node in self.nodes():  # sizes below are products of these
            shape = node.shape if isinstance(node, Population) else ()
            if not isinstance(shape, (tuple, list)) or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in shape):
                raise NeurocompileError(f"population '{node.name}': shape {shape!r} is not a list of positive integers")
        for node in self.nodes():
            if isinstance(node, SynapseBlock):
                self._validate_block(node)
            else:
                if isinstance(node, InputPopulation) and self.graph.in_degree(node.name):
                    raise NeurocompileError(f"input population '{node.name}' has incoming synapses")
                if isinstance(node, Product):
                    self._validate_product(node)
                elif any(not isinstance(self.node(u), SynapseBlock) for u in self.graph.predecessors(node.name)):
                    raise NeurocompileError(f"population '{node.name}' has an input that is not a synapse block")
                bias = getattr(node, "bias", None)
                if bias is not None and bias.size not in (0, node.size):
                    raise NeurocompileError(f"population '{node.name}': bias has {bias.size} values for {node.size} neurons")

    def _validate_product(self, prod: Product) -> None:
        ports = sorted(d["dst_port"] for _, _, d in self.graph.in_edges(prod.name, data=True))
        if ports != ["a", "b"]:
            raise NeurocompileError(f"product '{prod.name}' must have operands on ports a and b, has {ports}")
        if prod.form not in PRODUCT_FORMS:
            raise NeurocompileError(f"product '{prod.name}': form '{prod.form}' is not one of {', '.join(PRODUCT_FORMS)}")
        a, b = self.operands(prod.name)
        for name, op, index, view in (("a", a, prod.a_index, prod.a_shape), ("b", b, prod.b_index, prod.b_shape)):
            if index is None:
                if size(view) != op.size:
                    raise NeurocompileError(f"product '{prod.name}': operand {name} view {list(view)} does not match '{op.name}' ({op.size} neurons)")
            else:
                _check_index(index, op.size, f"product '{prod.name}' operand {name} index")
        if prod.a_shape[-1] != prod.b_shape[-2] or tuple(prod.shape) != tuple(np.broadcast_shapes(prod.a_shape[:-2], prod.b_shape[:-2])) + (prod.a_shape[-2], prod.b_shape[-1]):
            raise NeurocompileError(f"product '{prod.name}': views {list(prod.a_shape)} @ {list(prod.b_shape)} do not give shape {list(prod.shape)}")

    def _validate_block(self, block: SynapseBlock) -> None:
        preds, succs = list(self.graph.predecessors(block.name)), list(self.graph.successors(block.name))
        if len(preds) != 1 or len(succs) != 1:
            raise NeurocompileError(f"synapse block '{block.name}' must have one source and one target, has {len(preds)} and {len(succs)}")
        src, dst = self.node(preds[0]), self.node(succs[0])
        if not isinstance(src, Population) or not isinstance(dst, Population):
            raise NeurocompileError(f"synapse block '{block.name}' must connect two populations")
        if block.kernel is None:
            raise NeurocompileError(f"synapse block '{block.name}' has no kernel")
        if block.in_index is None:
            if size(block.view_shape) != src.size:
                raise NeurocompileError(f"synapse block '{block.name}': view {list(block.view_shape)} does not match source '{src.name}' ({src.size} neurons)")
        else:
            _check_index(block.in_index, src.size, f"synapse block '{block.name}' in_index")
            if tuple(block.in_index.shape) != tuple(block.view_shape):
                raise NeurocompileError(f"synapse block '{block.name}': in_index shape {list(block.in_index.shape)} is not the view shape {list(block.view_shape)}")
        n_out = size(block.kernel.out_shape(tuple(block.view_shape)))
        if block.out_index is None:
            if n_out != dst.size:
                raise NeurocompileError(f"synapse block '{block.name}': kernel gives {n_out} outputs, target '{dst.name}' has {dst.size} neurons")
        else:
            _check_index(block.out_index, n_out, f"synapse block '{block.name}' out_index")
            if block.out_index.size != dst.size:
                raise NeurocompileError(f"synapse block '{block.name}': out_index has {block.out_index.size} entries, target '{dst.name}' has {dst.size} neurons")


def _check_index(index: np.ndarray, bound: int, what: str) -> None:
    if not np.issubdtype(index.dtype, np.integer):
        raise NeurocompileError(f"{what} must be integer, is {index.dtype}")
    if index.size and (index.min() < -1 or index.max() >= bound):
        raise NeurocompileError(f"{what} points outside [0, {bound}) (range {index.min()}..{index.max()})")
