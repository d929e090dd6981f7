"""IR <-> (graph.json document, arrays for params.npz). No pickle anywhere.

Each node is written as its dataclass fields: scalars and tuples inline, arrays by reference
(`"arrays": {field: key}`), the kernel as a nested object of the same form.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..errors import NeurocompileError
from .graph import Network
from .kernels import kernel_from_parts
from .nodes import NODE_TYPES, SynapseBlock

FORMAT_VERSION = 1


def _split_fields(obj, prefix: str, arrays: dict[str, np.ndarray], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    refs: dict[str, str] = {}
    for f in dataclasses.fields(obj):
        if f.name in skip:
            continue
        value = getattr(obj, f.name)
        if isinstance(value, np.ndarray):
            key = f"{prefix}/{f.name}"
            arrays[key] = value
            refs[f.name] = key
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        elif isinstance(value, (np.integer, np.floating)):
            out[f.name] = value.item()
        else:
            out[f.name] = value
    if refs:
        out["arrays"] = refs
    return out


def to_document(net: Network) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    nodes = []
    for node in net.populations() + net.synapses():
        doc = {"kind": node.kind, **_split_fields(node, node.name, arrays, skip=("kernel",))}
        if isinstance(node, SynapseBlock):
            k = node.kernel
            kdoc = {"kind": k.kind, **k.scalars()}
            refs = {}
            for field, value in k.arrays().items():
                key = f"{node.name}/kernel.{field}"
                arrays[key] = value
                refs[field] = key
            kdoc["arrays"] = refs
            doc["kernel"] = kdoc
        nodes.append(doc)
    edges = [
        {"src": u, "dst": v, "src_port": d["src_port"], "dst_port": d["dst_port"]}
        for u, v, d in sorted(net.graph.edges(data=True), key=lambda e: (e[0], e[1]))
    ]
    return {"format_version": FORMAT_VERSION, "meta": net.meta, "nodes": nodes, "edges": edges}, arrays


def from_document(doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> Network:
    if doc.get("format_version") != FORMAT_VERSION:
        raise NeurocompileError(f"graph.json has format_version {doc.get('format_version')}; this neurocompile reads {FORMAT_VERSION}")
    net = Network()
    net.meta = dict(doc.get("meta", {}))

    def load(refs: dict[str, str]) -> dict[str, np.ndarray]:
        try:
            return {field: arrays[key] for field, key in refs.items()}
        except KeyError as e:
            raise NeurocompileError(f"params.npz has no array {e}") from None

    blocks = []
    for nd in doc["nodes"]:
        nd = dict(nd)
        kind = nd.pop("kind")
        cls = NODE_TYPES.get(kind)
        if cls is None:
            raise NeurocompileError(f"graph.json: unknown node kind '{kind}'")
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in nd.items() if k in fields and k not in ("kernel",)}
        values.update(load(nd.get("arrays", {})))
        for name in ("shape", "view_shape"):
            if name in values:
                values[name] = tuple(values[name])
        if cls is SynapseBlock:
            kd = dict(nd["kernel"])
            kkind = kd.pop("kind")
            karrays = load(kd.pop("arrays", {}))
            values["kernel"] = kernel_from_parts(kkind, kd, karrays)
            blocks.append(cls(**values))
        else:
            net.add(cls(**values))
    ends = {}
    for e in doc["edges"]:
        ends.setdefault(e["src"], {})["dst"] = e["dst"]
        ends.setdefault(e["dst"], {})["src"] = e["src"]
    for block in blocks:
        end = ends.get(block.name, {})
        if "src" not in end or "dst" not in end:
            raise NeurocompileError(f"graph.json: synapse block '{block.name}' is not connected at both ends")
        for pop in (end["src"], end["dst"]):
            if pop not in net:
                raise NeurocompileError(f"graph.json: synapse block '{block.name}' refers to unknown population '{pop}'")
        net.connect(block, end["src"], end["dst"])
    for e in doc["edges"]:
        if e["dst_port"] in ("a", "b"):  # a product's operands
            if e["src"] not in net or e["dst"] not in net:
                raise NeurocompileError(f"graph.json: operand edge {e['src']} -> {e['dst']} refers to an unknown node")
            net.graph.add_edge(e["src"], e["dst"], src_port=e["src_port"], dst_port=e["dst_port"])
    net.validate()
    return net

