"""Dataset-scale evaluation: chunked, streamed, resumable; accuracy with its interval. Whatever the
chunking, shards, interruptions, the record of every sample is the same bits."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from scipy.stats import norm

from neurocompile.compiler import BuildOptions, build
from neurocompile.compiler.artifact import load_artifact
from neurocompile.data import InputSet
from neurocompile.errors import NeurocompileError
from neurocompile.evaluation.metrics import proportion
from neurocompile.evaluation.stream import LocalExecutor, RunConfig, evaluate
from neurocompile.evaluation.store import missing
from neurocompile.ir.nodes import IFPopulation

from conftest import GRAPHS
from onnx_builders import make_model, node, rand
from test_interrupt import default_signals

MST_X = GRAPHS / "digits_mst_test_x.npy"
SHAPE = [1, 16, 16]


@pytest.fixture(scope="module")
def masked_mst(artifacts):
    """The shipped digits MST with random spike masking: random draws shape the spikes."""
    return artifacts("digits_mst_rsm")


def config_for(art, extra: int = 6, **kw) -> RunConfig:
    latency = art.net.latency()
    return RunConfig("sim", latency + extra, 0, latency, **kw)


def assert_same_record(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_chunks_and_shards_do_not_change_any_sample(masked_mst, tmp_path):
    x = np.load(MST_X)[:18]
    np.save(tmp_path / "x.npy", x)
    whole = evaluate(masked_mst, InputSet(tmp_path / "x.npy", SHAPE), config_for(masked_mst, batch_size=18))
    shards = tmp_path / "shards"
    shards.mkdir()
    for k, (lo, hi) in enumerate([(0, 7), (7, 8), (8, 18)]):
        np.save(shards / f"part-{k}.npy", x[lo:hi])
    chunked = evaluate(masked_mst, InputSet(shards, SHAPE), config_for(masked_mst, batch_size=4))
    assert_same_record(whole, chunked)
    assert whole["output"].shape == (18, 10) and whole["ann_prediction"].shape == (18,)
    spiking = [p.name for p in masked_mst.net.populations() if isinstance(p, IFPopulation)]
    assert spiking and all(whole[f"spikes/{name}"].shape == (18,) for name in spiking)
    assert int(whole["total_spikes"].sum()) > 0 and int(whole["synaptic_ops"].sum()) > 0


def test_a_config_no_backend_runs_is_refused_before_anything_starts(masked_mst, tmp_path):
    np.save(tmp_path / "x.npy", np.load(MST_X)[:2])
    inputs = InputSet(tmp_path / "x.npy", SHAPE)
    with pytest.raises(NeurocompileError, match="fixed point only"):
        evaluate(masked_mst, inputs, config_for(masked_mst, precision="float"), result_path=tmp_path / "r.npz")
    with pytest.raises(NeurocompileError, match="readout starts at step"):
        evaluate(masked_mst, inputs, RunConfig("sim", 4, 0, 4), result_path=tmp_path / "r.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]  # no partial results begun


def test_missing_ranges_cover_exactly_what_is_not_done():
    assert missing([], 10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert missing([(0, 4), (8, 10)], 10, 4) == [(4, 8)]
    assert missing([(2, 3), (5, 9)], 10, 2) == [(0, 2), (3, 5), (9, 10)]
    assert missing([(0, 10)], 10, 3) == []


class Interrupting(LocalExecutor):
    """Stops the run (as Ctrl-C does) after `after` chunks."""

    def __init__(self, after: int):
        self.after = after

    def map(self, *args):
        for k, item in enumerate(super().map(*args)):
            if k == self.after:
                raise KeyboardInterrupt
            yield item


def test_resume_finishes_with_the_bytes_of_an_uninterrupted_run(masked_mst, tmp_path):
    x = np.load(MST_X)[:10]
    np.save(tmp_path / "x.npy", x)
    inputs = InputSet(tmp_path / "x.npy", SHAPE)
    evaluate(masked_mst, inputs, config_for(masked_mst, batch_size=10), result_path=tmp_path / "once.npz")
    with pytest.raises(KeyboardInterrupt):
        evaluate(masked_mst, inputs, config_for(masked_mst, batch_size=3), Interrupting(2), result_path=tmp_path / "r.npz")
    partial = tmp_path / "r.npz.partial"
    assert len(list(partial.glob("chunk-*.npz"))) == 2 and not (tmp_path / "r.npz").exists()
    with pytest.raises(NeurocompileError, match="--resume"):
        evaluate(masked_mst, inputs, config_for(masked_mst), result_path=tmp_path / "r.npz")
    with pytest.raises(NeurocompileError, match="config differ"):
        evaluate(masked_mst, inputs, config_for(masked_mst, extra=7), result_path=tmp_path / "r.npz", resume=True)
    # Resumed in other chunks: the samples already done are not run again.
    seen = []
    evaluate(masked_mst, inputs, config_for(masked_mst, batch_size=2), result_path=tmp_path / "r.npz", resume=True, progress=seen.append)
    assert seen[0] == 6 and seen[-1] == 10
    assert (tmp_path / "r.npz").read_bytes() == (tmp_path / "once.npz").read_bytes()
    assert not partial.exists()


def cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "neurocompile.cli", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval")
    build(GRAPHS / "digits_mlp.onnx", folder / "mlp.ncx", BuildOptions())
    x = np.load(GRAPHS / "digits_test_x.npy")
    np.save(folder / "x.npy", np.tile(x, (2, 1, 1, 1)).astype(np.float32))  # 720 samples
    np.save(folder / "y.npy", np.tile(np.load(GRAPHS / "digits_test_y.npy"), 2))
    return folder


def test_resume_after_sigint_equals_an_uninterrupted_run(mlp, tmp_path):
    run = ("run", mlp / "mlp.ncx", "--input", mlp / "x.npy", "--labels", mlp / "y.npy", "--steps", 16, "--batch-size", 5, "--json")
    interrupted = cli(*run, "--out", tmp_path / "r.npz", preexec_fn=default_signals)  # as a terminal's Ctrl-C finds it
    partial = tmp_path / "r.npz.partial"
    deadline = time.time() + 60
    while not list(partial.glob("chunk-*.npz")) and time.time() < deadline and interrupted.poll() is None:
        time.sleep(0.02)
    interrupted.send_signal(signal.SIGINT)
    _, stderr = interrupted.communicate(timeout=60)
    assert interrupted.returncode == 130, stderr
    done = len(list(partial.glob("chunk-*.npz")))
    assert 0 < done < 144 and not (tmp_path / "r.npz").exists()
    stdout, stderr = cli(*run, "--out", tmp_path / "r.npz", "--resume").communicate(timeout=120)
    art = load_artifact(mlp / "mlp.ncx")
    latency = art.net.latency()
    evaluate(art, InputSet(mlp / "x.npy", [1, 8, 8]), RunConfig("sim", latency + 16, 0, latency), result_path=tmp_path / "once.npz")
    assert (tmp_path / "r.npz").read_bytes() == (tmp_path / "once.npz").read_bytes(), stderr
    s = json.loads(stdout)
    assert s["samples"] == 720
    acc = s["scores"]["accuracy"]
    assert acc["samples"] == 720 and acc["low"] < acc["value"] < acc["high"] and acc["value"] == s["accuracy"]
    assert 0.9 < s["scores"]["ann_agreement"]["value"] <= 1.0


MEMORY_PROBE = """
import resource, sys
from neurocompile.cli import main
args = sys.argv[1:]
for name in ("small", "big"):  # the peak after the small run, then after the big one
    sys.argv = ["neurocompile", *(a.replace("NAME", name) for a in args)]
    try:
        main()
    except SystemExit as e:
        assert e.code == 0, e.code
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB
"""


def test_a_large_input_streams_with_flat_memory(tmp_path):
    """A 31 MiB input file (2,048 samples of 4,000 floats) run after one of 3.9 MiB in the same
    process: the peak resident memory grows by far less than the file (loading it whole as
    float64 would add 94 MiB)."""
    n_in = 4000
    make_model(tmp_path / "wide.onnx", [node("MatMul", ["x", "W"], ["y"])], [1, n_in], {"W": rand((n_in, 10), scale=0.01)})
    build(tmp_path / "wide.onnx", tmp_path / "wide.ncx", BuildOptions())
    big = np.random.default_rng(0).random((2048, n_in), dtype=np.float32)
    np.save(tmp_path / "big.npy", big)
    np.save(tmp_path / "small.npy", big[:256])
    del big
    args = ("run", tmp_path / "wide.ncx", "--input", tmp_path / "NAME.npy", "--steps", 2, "--batch-size", 64, "--no-ann", "--out", tmp_path / "NAME.npz", "--json")
    proc = subprocess.run([sys.executable, "-c", MEMORY_PROBE, *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    small, big = (int(line) / 1024 for line in proc.stdout.splitlines() if line.isdigit())  # MiB, between the runs' JSON
    assert big - small < 16, (small, big)
    with np.load(tmp_path / "big.npz") as r:
        assert r["output"].shape == (2048, 10) and "ann_output" not in r.files


def test_accuracy_interval_is_wilsons():
    z = norm.ppf(0.975)
    for k, n in [(0, 10), (10, 10), (7, 10), (950, 1000)]:
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        got = proportion(np.arange(n) < k)
        assert got["value"] == p and got["hits"] == k and got["samples"] == n
        assert got["low"] == pytest.approx(max(0.0, centre - half), abs=1e-9) and got["high"] == pytest.approx(min(1.0, centre + half), abs=1e-9)
