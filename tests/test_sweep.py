"""`neurocompile sweep`, and the pictures of runs, sweeps and placements: a sweep's cells are the
`run`s of its artifacts; every plot is a valid PNG that draws the numbers of the JSON beside it."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from neurocompile.compiler.artifact import load_artifact
from neurocompile.evaluation.sweep import parse_seeds
from neurocompile.errors import NeurocompileError
from neurocompile.reports import plots
from neurocompile.reports.placement import write_placement_plots

from conftest import GRAPHS, target_with
from test_failures import _masked_model


def cli(*args):
    return subprocess.run([sys.executable, "-m", "neurocompile.cli", *map(str, args)], capture_output=True, text=True)


def assert_png(path):
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 200
        im.verify()


@pytest.fixture
def drawn(monkeypatch):
    """The figures that reach plots.save, by file name."""
    figures = {}
    save = plots.save

    def capture(fig, path):
        figures[path.name] = fig
        return save(fig, path)

    monkeypatch.setattr(plots, "save", capture)
    return figures


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    model = _masked_model(folder / "masked.onnx")
    rng = np.random.default_rng(0)
    np.save(folder / "x.npy", rng.random((30, 6), dtype=np.float32))
    np.save(folder / "y.npy", rng.integers(0, 4, 30))
    proc = cli("sweep", model, "--input", folder / "x.npy", "--labels", folder / "y.npy", "--steps", "4,12", "--mask-ratio", "0,0.5",
               "--seeds", "0-1", "--report", folder / "report", "--json")
    assert proc.returncode == 0, proc.stderr
    return folder, json.loads(proc.stdout)


def test_sweep_cells_are_the_runs_of_their_artifacts(swept):
    folder, result = swept
    assert len(result["rows"]) == 2 * 2 * 2 and len(result["summary"]) == 4
    assert json.loads((folder / "report" / "sweep.json").read_text()) == result
    cell = next(r for r in result["rows"] if r["mask_ratio"] == 0.5 and r["steps"] == 12 and r["seed"] == 1)
    proc = cli("run", folder / "report" / "artifacts" / "mask-0.5.ncx", "--input", folder / "x.npy", "--labels", folder / "y.npy",
               "--steps", 12, "--seed", 1, "--json")
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    assert cell["accuracy"] == run["accuracy"] and cell["hits"] == run["scores"]["accuracy"]["hits"]
    assert cell["ann_agreement"] == run["scores"]["ann_agreement"]["value"]
    assert cell["synaptic_events"] == run["energy"]["synaptic_events"] and cell["energy_per_inference_j"] == run["energy"]["energy_per_inference_j"]
    # Masks cut synaptic events; with no mask, the seed changes nothing (the input is analog).
    rows = {(r["mask_ratio"], r["steps"], r["seed"]): r for r in result["rows"]}
    assert rows[0.5, 12, 0]["synaptic_events"] < rows[0.0, 12, 0]["synaptic_events"]
    assert rows[0.0, 12, 0] == {**rows[0.0, 12, 1], "seed": 0}
    with open(folder / "report" / "sweep.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(result["rows"])
    assert all(float(t["accuracy"]) == r["accuracy"] and int(t["seed"]) == r["seed"] for t, r in zip(table, result["rows"]))


def test_sweep_plots_draw_the_numbers_of_sweep_json(swept, drawn, tmp_path):
    from neurocompile.reports.sweep import write_sweep_report

    folder, result = swept
    for name in ("accuracy_vs_steps.png", "events_vs_accuracy.png"):
        assert_png(folder / "report" / name)
    write_sweep_report(tmp_path, result)
    assert (tmp_path / "accuracy_vs_steps.png").read_bytes() == (folder / "report" / "accuracy_vs_steps.png").read_bytes()  # deterministic
    acc, ev = drawn["accuracy_vs_steps.png"].axes[0], drawn["events_vs_accuracy.png"].axes[0]

    def line(ax, label):
        (found,) = [ln for ln in ax.lines if ln.get_label() == label]
        return found

    for ratio in (0.0, 0.5):
        mine = sorted((r for r in result["summary"] if r["mask_ratio"] == ratio), key=lambda r: r["steps"])  # T and run length rise together
        accuracy = [100 * r["accuracy"] for r in mine]
        np.testing.assert_array_equal(line(acc, f"accuracy, mask ratio {ratio:g}").get_xdata(), [r["run_steps"] for r in mine])
        np.testing.assert_allclose(line(acc, f"accuracy, mask ratio {ratio:g}").get_ydata(), accuracy)
        np.testing.assert_allclose(line(acc, f"agreement with ANN, mask ratio {ratio:g}").get_ydata(), [100 * r["ann_agreement"] for r in mine])
        np.testing.assert_allclose(line(ev, f"mask ratio {ratio:g}").get_xdata(), [r["synaptic_events"] for r in mine])
        np.testing.assert_allclose(line(ev, f"mask ratio {ratio:g}").get_ydata(), accuracy)
    (latency,) = [ln for ln in acc.lines if ln.get_label().startswith("pipeline latency")]
    assert list(latency.get_xdata()) == [result["latency"]] * 2
    for fig in drawn.values():
        ax = fig.axes[0]
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None


def test_run_report_plots_rates_and_a_raster(swept, drawn, tmp_path):
    from neurocompile.data import InputSet
    from neurocompile.evaluation.stream import RunConfig, evaluate
    from neurocompile.reports.run import write_run_report

    folder, _ = swept
    art = load_artifact(folder / "report" / "artifacts" / "mask-0.5.ncx")
    inputs, latency = InputSet(folder / "x.npy", [6]), art.net.latency()
    config = RunConfig("sim", latency + 12, 0, latency)
    record = evaluate(art, inputs, config)
    write_run_report(tmp_path, art, inputs, config, {"samples": len(inputs)}, record)
    for name in ("rates.png", "raster.png"):
        assert_png(tmp_path / name)
    points = json.loads((tmp_path / "rates.json").read_text())
    spiking = [p for p in art.net.populations() if type(p).__name__ == "IFPopulation"]
    assert [p["name"] for p in points] == [p.name for p in spiking]
    for point, pop in zip(points, spiking):  # spikes per neuron and step once the input has reached it
        live = config.steps - art.net.delays()[pop.name]
        assert point["snn_rate"] == pytest.approx(record[f"spikes/{pop.name}"].sum() / (len(inputs) * pop.size * live))
    np.testing.assert_allclose(drawn["rates.png"].axes[0].collections[0].get_offsets(), [[p["ann_rate"], p["snn_rate"]] for p in points])
    with np.load(tmp_path / "raster.npz") as z:
        rasters = {k: z[k] for k in z.files}
    assert set(rasters) <= {p.name for p in spiking} and all(r.shape[0] == config.steps for r in rasters.values())
    for coll, (name, r) in zip(drawn["raster.png"].axes[0].collections, rasters.items()):
        assert coll.get_label() == name and len(coll.get_offsets()) == int(r.sum())
    chosen = spiking[-1].name
    write_run_report(tmp_path / "chosen", art, inputs, config, {}, record, [chosen])
    with np.load(tmp_path / "chosen" / "raster.npz") as z:
        assert z.files == [chosen]
    proc = cli("run", folder / "report" / "artifacts" / "mask-0.5.ncx", "--input", folder / "x.npy", "--steps", 4, "--report", tmp_path / "r",
               "--raster", f"{chosen},nope")
    assert proc.returncode == 2 and "'nope'" in proc.stderr and not (tmp_path / "r").exists()


def test_inspect_plots_the_placement(drawn, tmp_path):
    """The digits MST on chips of 16 cores: five chips, and spikes that cross between them."""
    from neurocompile.compiler import BuildOptions, build
    from neurocompile.partition.traffic import spike_traffic

    target_with(tmp_path, cores=16)
    path, _ = build(GRAPHS / "digits_mst.onnx", tmp_path / "d.ncx", BuildOptions(target=str(tmp_path / "cores16.toml")))
    proc = cli("inspect", path, "--plot", tmp_path / "plots")
    assert proc.returncode == 0, proc.stderr
    for name in ("cores_per_chip.png", "chip_traffic.png"):
        assert_png(tmp_path / "plots" / name)
    art = load_artifact(path)
    write_placement_plots(tmp_path / "again", art)
    data = json.loads((tmp_path / "plots" / "placement_plots.json").read_text())
    assert data == json.loads((tmp_path / "again" / "placement_plots.json").read_text())
    cores = np.array(data["cores"])
    assert len(data["chips"]) > 1 and cores.sum() == pytest.approx(len(art.placement["cores"]))
    bars = [p.get_height() for p in drawn["cores_per_chip.png"].axes[0].patches]
    np.testing.assert_allclose(bars, cores.ravel())
    messages = np.array(data["traffic"]["messages"])
    np.testing.assert_allclose(drawn["chip_traffic.png"].axes[0].images[0].get_array(), messages)
    # Every message leaves its core: the matrix holds the placement's inter-core messages, and
    # off its diagonal (with the host column) those that leave their chip.
    traffic = spike_traffic(art.net, art.target, art.placement)
    assert art.report["spike_traffic_per_step"] == traffic  # the build's figures, counted while placing
    assert messages.sum() == pytest.approx(traffic["inter_core"])
    assert messages.sum() - np.trace(messages[:, :-1]) == pytest.approx(traffic["inter_chip"]) and traffic["inter_chip"] > 0


def test_seed_lists_and_ranges():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4] and parse_seeds("1,5,9") == [1, 5, 9] and parse_seeds("0-2,7,1") == [0, 1, 2, 7]
    for bad in ("4-0", "a", "", "-1", f"0-{2**32}", "0-20000"):
        with pytest.raises(NeurocompileError, match="--seeds"):
            parse_seeds(bad)
