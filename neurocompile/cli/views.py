"""Tables for people: what `inspect`, `run` and `compare` print."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.table import Table

from ..compiler.artifact import Artifact
from ..ir.connectivity import n_synapses
from ..ir.graph import Network


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


NUMERIC_COLUMNS = ("neurons", "threshold", "blocks in", "synapses in", "weight err", "act err", "nJ / step")


def populations_table(net: Network, quant: dict | None = None, energy: dict | None = None, placement: dict | None = None) -> Table:
    """One row per population; `energy`: the build's per-population estimate per step;
    `placement`: where host nodes run."""
    host = {h["node"]: _runs_on(h) for h in (placement or {}).get("host_ops", [])}
    t = Table(title="Populations", title_justify="left")
    for col in ("population", "kind", "runs on", "shape", "neurons", "threshold", "activation", "blocks in", "synapses in", "weight err", "act err", "nJ / step"):
        t.add_column(col, justify="right" if col in NUMERIC_COLUMNS else "left")
    for p in net.populations():
        blocks = net.incoming(p.name)
        q = (quant or {}).get(p.name, {})
        act = getattr(p, "activation", None)
        if act == "qcfs":
            act = f"qcfs L={p.levels}"
        if act is None:
            act = getattr(p, "op", None) or ("matmul" if p.kind == "product" else None)
        t.add_row(
            p.name, p.kind, host.get(p.name, "host") if p.on_host else "cores", "x".join(map(str, p.shape)), str(p.size), _fmt(getattr(p, "threshold", None)), _fmt(act if p.kind != "input" else p.encoding),
            str(len(blocks)), str(sum(n_synapses(b, net.source_of(b).size) for b in blocks)) if blocks else "-",
            _fmt(q.get("weight_rel_error")), _fmt(q.get("activation_rel_error")),
            _fmt((energy or {}).get(p.name, {}).get("energy_j", 0) * 1e9 if energy and p.name in energy else None),
        )
    return t


def quantization_table(net: Network, quant: dict) -> Table:
    """Per population, the scaling the build chose: the worst-case input of one step (every
    synapse at its largest input at once, plus the bias) in membrane units, the threshold in
    membrane units (halved from the target's where that bound would not fit `current_bits`),
    the bits to spare, and the rounding of weights and biases."""
    t = Table(title="Quantization", title_justify="left")
    for col in ("population", "input bound", "threshold (units)", "headroom", "weight err", "bias err (θ)"):
        t.add_column(col, justify="left" if col == "population" else "right")
    for p in net.populations():
        q = quant.get(p.name)
        if q is None:
            continue
        exp = q.get("threshold_exp")
        threshold = _fmt(q.get("threshold_int")) + (f" (2^-{exp})" if exp else "")
        headroom = f"{q['headroom_bits']:.1f} bits" if q.get("headroom_bits") is not None else "-"
        t.add_row(p.name, _fmt(q.get("input_bound")), threshold if q.get("threshold_int") else "-", headroom,
                  _fmt(q.get("weight_rel_error")), _fmt(q.get("bias_abs_error_theta")))
    return t


def blocks_table(net: Network) -> Table:
    t = Table(title="Synapse blocks", title_justify="left")
    for col in ("block", "kernel", "view", "index maps", "synapses", "shift", "acc bound"):
        t.add_column(col, justify="right" if col in ("synapses", "shift", "acc bound") else "left")
    for b in net.synapses():
        maps = "+".join(side for side, idx in (("in", b.in_index), ("out", b.out_index)) if idx is not None) or "-"
        t.add_row(b.name, b.kernel.kind if b.kernel else "chain", "x".join(map(str, b.view_shape)), maps,
                  str(n_synapses(b, net.source_of(b).size)) if b.kernel else "-", _fmt(b.w_shift), _fmt(b.acc_bound))
    return t


def placement_table(placement: dict) -> Table:
    t = Table(title="Placement", title_justify="left")
    for col in ("population", "cores", "neurons", "synapse bits", "fan-in axons", "fan-out axons"):
        t.add_column(col, justify="left" if col == "population" else "right")
    per_pop: dict[str, dict[str, int]] = {}
    for c in placement["cores"]:
        name = c["slices"][0]["population"]
        row = per_pop.setdefault(name, {"cores": 0, "neurons": 0, "synapse_bits": 0, "fan_in_axons": 0, "fan_out_axons": 0})
        row["cores"] += 1
        for key in ("neurons", "synapse_bits", "fan_in_axons", "fan_out_axons"):
            row[key] += c[key]
    for name, row in per_pop.items():
        t.add_row(name, *(str(row[k]) for k in ("cores", "neurons", "synapse_bits", "fan_in_axons", "fan_out_axons")))
    tot = placement["totals"]
    t.add_row("total", str(tot["cores"]), str(tot["neurons"]), str(tot["synapse_bits"]), str(tot["fan_in_axons"]), str(tot["fan_out_axons"]), style="bold")
    return t


def host_nodes_table(placement: dict) -> Table:
    """Every node off the neurocores: where it runs, its rows and work, and why."""
    t = Table(title="Host nodes", title_justify="left")
    for col in ("node", "kind", "runs on", "rows", "operations / step", "why"):
        t.add_column(col, justify="right" if col in ("rows", "operations / step") else "left")
    for h in placement["host_ops"]:
        t.add_row(h["node"], h["kind"], _runs_on(h), _fmt(h.get("rows")), _fmt(h.get("ops_per_step")), h["why"])
    return t


def products_table(entries: list[dict]) -> Table:
    """Every spike product: where it runs and why, and what it takes on either side, also as a
    share of one chip's cores or of its processors over one step (passes/products.py)."""
    t = Table(title="Spike products", title_justify="left")
    numeric = ("coincidence neurons", "cores at least", "share of chip cores", "operations / step", "share of chip processors")
    for col in ("product", "runs on") + numeric + ("why",):
        t.add_column(col, justify="right" if col in numeric else "left", overflow="fold")
    for e in entries:
        share = e.get("share_of_chip_processors")
        cores = (_fmt(e["terms"]), _fmt(e["cores_at_least"]), f"{e['share_of_chip_cores']:.3g}") if e["coincidence_form"] else ("-",) * 3
        t.add_row(e["node"], e["runs_on"], *cores, _fmt(e["ops_per_step"]), "-" if share is None else f"{share:.3g}", e["why"])
    return t


def _starts(net) -> str:
    delays = net.delays()
    starts = {name: net.node(name).start for name in delays if hasattr(net.node(name), "start")}
    if not any(starts.values()):
        return "every population starts at step 0"
    if all(start == delays[name] for name, start in starts.items()):
        return "each population starts when its last input arrives (--start aligned)"
    return f"populations start at steps {min(starts.values())}..{max(starts.values())}"


def artifact_summary(art: Artifact) -> Table:
    r, p = art.report, art.placement
    t = Table(title=f"Artifact {art.path}", title_justify="left", show_header=False)
    t.add_column("what")
    t.add_column("value")
    rows = [
        ("target", f"{art.target.name} ({art.target.chip}, {'Loihi2HwCfg' if art.target.mode == 'hw' else 'Loihi2SimCfg'})"),
        ("input", f"{r['input']['name']} {r['input']['shape']}, {r['input']['encoding']} encoding, payload 2^-{r['input']['payload_frac_bits']}"),
        ("populations / neurons", f"{r['populations']} / {r['neurons']}"),
        ("synapse blocks / synapses", f"{r['synapse_blocks']} / {r['synapses']}"),
        ("latency", f"{r['latency_steps']} steps (input to readout); {_starts(art.net)}"),
        ("cores / chips", f"{p['totals']['cores']} / {p['totals']['chips']} (lower bound {p['lower_bound_cores']} cores)"),
        ("host ops", _host_ops(p)),
        ("spike products", _products(art.net.meta.get("products", []))),
        ("synapses on cores", f"{r['operations']['fraction_on_cores']:.0%}"),
        ("spike traffic per step", _traffic(r)),
        ("synaptic failure", _failures(art.net)),
        ("energy (ANN-rate estimate)", _energy_estimate(r)),
    ]
    for k, v in rows:
        t.add_row(k, v)
    return t


def _host_ops(placement: dict) -> str:
    """How many host nodes run where (each one, and why: host_nodes_table), and what the chips'
    processors take per step."""
    where: dict[str, int] = {}
    for h in placement["host_ops"]:
        key = "the chips' processors" if h.get("runs_on") == "chip processors" else "the host"
        where[key] = where.get(key, 0) + 1
    text = ", ".join(f"{n} on {key}" for key, n in where.items()) or "-"
    proc = placement.get("processors", {})
    if "step_time_s" not in proc:
        return text
    return (f"{text}; {proc['ops_per_step']:.4g} operations per step, the busiest chip ({proc['busiest_chip']}) "
            f"{proc['busiest_chip_ops']:.4g}: {proc['step_time_s'] * 1e6:.3g} us per step (estimate)")


def _products(entries: list[dict]) -> str:
    where: dict[str, int] = {}
    for e in entries:
        where[e["runs_on"]] = where.get(e["runs_on"], 0) + 1
    return ", ".join(f"{n} on {site}" for site, n in where.items()) or "-"


def _runs_on(entry: dict) -> str:
    if entry.get("runs_on") == "chip processors":
        return f"processors ({len(entry['chips'])} chip{'s' if len(entry['chips']) != 1 else ''})"
    return "host"


def _traffic(report: dict) -> str:
    t = report.get("spike_traffic_per_step")
    if not t:
        return "-"
    return f"{t['inter_core']:.4g} messages between cores ({t['inter_chip']:.4g} between chips or to the host), {t['local']:.4g} local; weighted by {t['weighted_by']}"


def _mask_sites(net: Network) -> dict[str, tuple[float, list[str]]]:
    """Each mask: its failure probability and where it acts (synapse blocks, product operands)."""
    masks: dict[str, tuple[float, list[str]]] = {}
    for b in net.synapses():
        if b.failure_group:
            masks.setdefault(b.failure_group, (b.failure, []))[1].append(b.name)
    for p in net.populations():
        for side in ("a", "b"):
            if getattr(p, f"failure_group_{side}", ""):
                masks.setdefault(getattr(p, f"failure_group_{side}"), (getattr(p, f"failure_{side}"), []))[1].append(f"{p.name} (operand {side})")
    return masks


def masks_table(net: Network) -> Table | None:
    """Every random spike mask: the name `--mask-ratio` matches, its ratio, where it acts."""
    masks = _mask_sites(net)
    if not masks:
        return None
    t = Table(title=f"Random spike masks ({len(masks)}; each draws its own random stream)", title_justify="left")
    for col in ("mask", "ratio", "acts on"):
        t.add_column(col, justify="right" if col == "ratio" else "left")
    for name, (p, sites) in sorted(masks.items()):
        t.add_row(name, f"{p:g}", ", ".join(sites) if len(sites) <= 2 else f"{sites[0]} and {len(sites) - 1} more")
    return t


def _failures(net: Network) -> str:
    groups = {name: p for name, (p, _) in _mask_sites(net).items()}
    if not groups:
        return "-"
    mode = next((b.failure_mode for b in net.synapses() if b.failure_group), "spike")
    by_ratio: dict[float, int] = {}
    for p in groups.values():
        by_ratio[p] = by_ratio.get(p, 0) + 1
    return f"{len(groups)} masks, per {mode}: " + ", ".join(f"{n} at p = {p:g}" for p, n in sorted(by_ratio.items()))


def _energy_estimate(report: dict) -> str:
    e = report.get("estimated_energy_per_step")
    if not e:
        return report.get("energy_note", "-")
    return (f"{e['dynamic_energy_j'] * 1e9:.1f} nJ dynamic + {e['static_energy_j'] * 1e9:.1f} nJ static per step "
            f"({e['power_w'] * 1e3:.2f} mW at {e['step_time_s'] * 1e3:g} ms per step); `run` measures it")


def run_table(summary: dict) -> Table:
    """Spikes, synaptic events and energy per population, means per sample."""
    t = Table(title=f"{summary['backend']}: {summary['samples']} samples x {summary['steps']} steps (means per sample)", title_justify="left")
    energy = summary.get("energy", {}).get("per_population", {})
    for col in ("population", "spikes", "synaptic events in", "energy (µJ)"):
        t.add_column(col, justify="left" if col == "population" else "right")
    names = list(summary["spikes"]) + [n for n in energy if n not in summary["spikes"]]
    for name in names:
        spikes = f"{np.mean(summary['spikes'][name]):.1f}" if name in summary["spikes"] else "-"
        e = energy.get(name)
        t.add_row(name, spikes, f"{e['synaptic_events']:.0f}" if e else "-", f"{e['energy_j'] * 1e6:.3f}" if e else "-")
    total = summary.get("energy")
    t.add_row("total", f"{np.mean(summary['total_spikes']):.1f}", f"{np.mean(summary['synaptic_ops']):.0f}",
              f"{total['dynamic_energy_j'] * 1e6:.3f} (+ static {total['static_energy_j'] * 1e6:.1f})" if total else "-", style="bold")
    return t


def readout_line(summary: dict, latency: int) -> str:
    """Which steps the outputs (and accuracy) sum, so that nobody mistakes a fill for a loss."""
    start, end = summary["windows"]["readout"]
    if start == latency and start > 0:
        why = f"after the {latency}-step pipeline fill"
    elif start == 0 and latency > 0:
        why = f"from step 0, including the {latency}-step pipeline fill: --readout-start latency sums only after it"
    else:
        why = f"from --readout-start {start}; the pipeline fill is {latency} steps"
    return f"readout: summed steps {start}..{end - 1} ({end - start} steps) of {end}, {why}"


def energy_line(energy: dict) -> str:
    return (f"energy per inference {energy['energy_per_inference_j'] * 1e6:.2f} µJ (dynamic {energy['dynamic_energy_j'] * 1e6:.2f}, "
            f"static {energy['static_energy_j'] * 1e6:.2f}), power {energy['power_w'] * 1e3:.2f} mW at {energy['step_time_s'] * 1e3:g} ms per step; "
            f"MST paper's model: {energy['paper_power_alpha_w']:.4g} α W ({energy['spikes_delivered']:.0f} spikes past the masks)")


def compare_table(cmp: dict) -> Table:
    t = Table(title="Spike counts, simulator vs Lava (summed over samples)", title_justify="left")
    for col in ("population", "neurons", "sim", "lava", "identical"):
        t.add_column(col, justify="left" if col == "population" else "right")
    for name, p in cmp["populations"].items():
        t.add_row(name, str(p["neurons"]), str(sum(p["sim"])), str(sum(p["lava"])), "yes" if p["identical"] else "[red]NO[/red]")
    t.add_row("readout", "-", "-", "-", "yes" if cmp["readout_identical"] else "[red]NO[/red]")
    ops = cmp["synaptic_ops"]
    t.add_row("synaptic events", "-", str(sum(ops["sim"])), str(sum(ops["lava"])), "yes" if cmp.get("traffic_identical", True) else "[red]NO[/red]")
    return t


def sweep_table(result: dict) -> Table:
    """Per mask ratio and T: accuracy over the seeds (pooled, with its 95 % interval), agreement
    with the ANN, synaptic events and energy per inference."""
    t = Table(title=f"sweep: {result['samples']} samples x {len(result['seeds'])} seeds per cell (readout after the {result['latency']}-step fill)",
              title_justify="left")
    for col in ("mask ratio", "T", "steps run", "accuracy (95 % CI)", "std over seeds", "agreement with ANN", "synaptic events", "energy (µJ)"):
        t.add_column(col, justify="left" if col == "mask ratio" else "right")
    for r in result["summary"]:
        t.add_row("model's" if r["mask_ratio"] is None else f"{r['mask_ratio']:g}", str(r["steps"]), str(r["run_steps"]),
                  f"{100 * r['accuracy']:.2f} % ({100 * r['accuracy_low']:.2f}-{100 * r['accuracy_high']:.2f})",
                  f"{100 * r['accuracy_seed_std']:.2f}", f"{100 * r['ann_agreement']:.2f} %", f"{r['synaptic_events']:.4g}",
                  f"{r['energy_per_inference_j'] * 1e6:.4g}")
    return t
