"""Spike products on the cores (`build --products-on cores`, passes/products.py): coincidence
neurons and a relay of their sums emit, two steps later, exactly what the product emits, masked
operands included; the ANN is unchanged; graded and telescoping products stay on processors and
say why; both backends agree bit for bit."""

import numpy as np
import pytest
from conftest import target_with
from onnx import helper
from onnx_builders import ATTENTION_TOKENS as TOKENS, ATTENTION_WIDTH as WIDTH, save_spike_model, spike_projections

from neurocompile.backends.lava.run import core_slices
from neurocompile.cli.runs import compare_results, run_backend
from neurocompile.compiler import BuildOptions, build
from neurocompile.compiler.artifact import load_artifact
from neurocompile.compiler.pipeline import Build, run_passes
from neurocompile.errors import NeurocompileError
from neurocompile.frontend import onnx_to_ir
from neurocompile.ir.interpret import evaluate
from neurocompile.ir.nodes import Product
from neurocompile.targets import load_target


@pytest.fixture(scope="module")
def product_model(tmp_path_factory):
    """x -> QCFS(x Wq), QCFS(x Wk) -> q k^T, read out directly: the readout sums the product."""
    nodes, inits = spike_projections("qk", np.random.default_rng(4), mean=0.2)
    nodes += [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]), helper.make_node("MatMul", ["q", "kt"], ["y"])]
    return save_spike_model(tmp_path_factory.mktemp("product") / "product.onnx", nodes, inits, [1, TOKENS, TOKENS])


class _Built:
    """What run_backend reads of an artifact."""

    def __init__(self, model, options: BuildOptions, masks: dict[str, float], target=None):
        net, target = onnx_to_ir(model), target or load_target(options.target)
        prod = next(p for p in net.populations() if isinstance(p, Product))
        for side, p in masks.items():
            setattr(prod, f"failure_{side}", p)
            setattr(prod, f"failure_group_{side}", f"mask_{side}")
        build = run_passes(Build(net, target, options), verify=True)
        self.net, self.target, self.placement = net, target, build.placement


@pytest.mark.parametrize("masks", [{}, {"a": 0.4, "b": 0.25}])
def test_coincidence_neurons_emit_the_product_exactly_two_steps_later(product_model, masks):
    on_processors = _Built(product_model, BuildOptions(), masks)
    on_cores = _Built(product_model, BuildOptions(products_on="cores"), masks)
    assert [p.kind for p in on_cores.net.populations()].count("coincidence") == 1
    assert on_cores.net.latency() == on_processors.net.latency() + 2
    x = np.random.default_rng(5).normal(0.5, 1, (3, TOKENS, WIDTH))
    for steps in (3, 9, 20):  # the readout sums every step's product: equal sums at every length
        ref = run_backend(on_processors, x, steps, "sim", 0, readout_start=0).readout_int
        got = run_backend(on_cores, x, steps + 2, "sim", 0, readout_start=0).readout_int
        np.testing.assert_array_equal(got, ref)
    assert np.abs(ref).max() > 0
    if masks:  # the masks drop spikes: otherwise the same products
        unmasked = run_backend(_Built(product_model, BuildOptions(), {}), x, 20, "sim", 0, readout_start=0).readout_int
        assert not np.array_equal(unmasked, ref)


def test_each_product_says_where_it_runs_why_and_what_either_place_costs(attention_model, tmp_path):
    path, report = build(attention_model, tmp_path / "a.ncx", BuildOptions(products_on="cores"))
    art = load_artifact(path)
    entries = {e["node"]: e for e in art.net.meta["products"]}
    assert entries["qk"]["runs_on"] == "cores" and entries["qk"]["coincidence_neurons"] == "qk.terms"
    assert entries["qk"]["terms"] == TOKENS * TOKENS * WIDTH == art.net.node("qk.terms").size
    assert entries["av"]["runs_on"] == "processors" and "attn is graded" in entries["av"]["why"]
    assert {"qk.terms", "qk"} <= {s["population"] for c in art.placement["cores"] for s in c["slices"]}
    assert "qk" not in {h["node"] for h in art.placement["host_ops"]}
    telescoping = build(attention_model, tmp_path / "t.ncx", BuildOptions(products_on="cores", product_form="telescoping"))[0]
    assert all(e["runs_on"] == "processors" and "telescoping" in e["why"] for e in load_artifact(telescoping).net.meta["products"])


def test_auto_takes_the_smaller_share_of_a_chip(attention_model, tmp_path):
    def placed(target):
        return {e["node"]: e for e in _Built(attention_model, BuildOptions(), {}, target).net.meta["products"]}

    default = placed(load_target("loihi2"))  # 2 of 128 cores against 128 of 600,000 operations a step
    assert default["qk"]["runs_on"] == "processors" and default["qk"]["why"] == "auto: processors 0.000213 of a chip <= cores 0.0156"
    slow = placed(target_with(tmp_path, embedded_cpu_ops_per_s=1e4))  # 128 operations of 60 a step
    assert slow["qk"]["runs_on"] == "cores" and slow["qk"]["share_of_chip_processors"] > slow["qk"]["share_of_chip_cores"]
    assert slow["av"]["runs_on"] == "processors"  # graded: no form on cores, whatever the costs
    none = placed(target_with(tmp_path, embedded_cpus=0))
    assert none["qk"]["runs_on"] == "processors" and "no chip processors" in none["qk"]["why"]


def test_the_command_line_builds_them_and_inspect_lists_them(attention_model, tmp_path):
    from test_cli import cli

    built = cli("build", attention_model, "-o", tmp_path / "a.ncx", "--products-on", "cores")
    assert built.returncode == 0, built.stderr
    shown = cli("inspect", tmp_path / "a.ncx")
    assert shown.returncode == 0 and "Spike products" in shown.stdout and "1 on cores, 1 on processors" in shown.stdout
    wrong = cli("build", attention_model, "-o", tmp_path / "b.ncx", "--products-on", "chip")
    assert wrong.returncode == 2 and "--products-on" in wrong.stderr and not (tmp_path / "b.ncx").exists()
    with pytest.raises(NeurocompileError, match="products on 'chip'"):
        BuildOptions(products_on="chip").check()


def test_the_ann_is_the_same_with_products_on_cores(attention_model, tmp_path):
    x = np.random.default_rng(6).normal(0, 1, (4, TOKENS, WIDTH))
    nets = [load_artifact(build(attention_model, tmp_path / f"{site}.ncx", BuildOptions(products_on=site))[0]).net for site in ("processors", "cores")]
    outs = [evaluate(net, x, quantized=q)["post"][net.readout.name] for q in (False, True) for net in nets]
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[2], outs[3])


def test_simulated_output_follows_the_ann_with_products_on_cores(attention_model, tmp_path):
    art = load_artifact(build(attention_model, tmp_path / "a.ncx", BuildOptions(products_on="cores"))[0])
    x = np.random.default_rng(3).normal(0, 1, (20, TOKENS, WIDTH))
    steps, latency = 256, art.net.latency()
    out = run_backend(art, x, steps, "sim", 0, readout_start="latency").output.reshape(20, -1) / (steps - latency)
    ann = evaluate(art.net, x)["post"][art.net.readout.name]
    assert np.corrcoef(out.ravel(), ann.ravel())[0, 1] > 0.9


@pytest.mark.lava
def test_backends_bit_identical_with_products_on_cores(attention_model, tmp_path):
    """Lava as whole populations, and per core on cores of 40 neurons, where the coincidence
    neurons take four cores."""
    art = load_artifact(build(attention_model, tmp_path / "a.ncx", BuildOptions(products_on="cores"))[0])
    small = _Built(attention_model, BuildOptions(products_on="cores"), {}, target_with(tmp_path, neurons=40))
    assert len(core_slices(small.placement)["qk.terms"]) == 4
    x = np.random.default_rng(2).normal(0, 1, (2, TOKENS, WIDTH))
    for built, per_core in ((art, False), (small, True)):
        sim = run_backend(built, x, 14, "sim", 0, record=True, readout_start=0)
        lava = run_backend(built, x, 14, "lava", 0, record=True, readout_start=0, per_core=per_core)
        cmp = compare_results(sim, lava)
        assert cmp["identical"], cmp["divergence_text"] or cmp
        assert np.array_equal(sim.synaptic_ops, lava.synaptic_ops)
        assert np.abs(sim.readout_int).max() > 0
