"""Evaluation on Ray workers: the same bits as one process, also when a worker dies mid-chunk."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import ray
from ray import cloudpickle

from neurocompile.data import InputSet
from neurocompile.evaluation.distributed import RayExecutor, connect, run_chunk
from neurocompile.evaluation.stream import RunConfig, evaluate

from conftest import GRAPHS

# The tasks below are defined here: the workers get them by value, not by importing this module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def cluster():
    """One local cluster of two workers for the module (starting one costs seconds), started as
    `--workers 2` starts it; the evaluations below join it as `--ray-address` would."""
    cpus, started = connect(2, None)
    assert cpus == 2 and started
    assert connect(2, None) == (2, False)  # a second call joins, does not start another
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def masked_mst(artifacts):
    return artifacts("digits_mst_rsm")


@pytest.fixture(scope="module")
def mst_inputs(tmp_path_factory):
    path = tmp_path_factory.mktemp("ray") / "x.npy"
    np.save(path, np.load(GRAPHS / "digits_mst_test_x.npy")[:12])
    return InputSet(path, [1, 16, 16])


def config_for(art, batch_size: int) -> RunConfig:
    latency = art.net.latency()
    return RunConfig("sim", latency + 6, 3, latency, batch_size=batch_size)


def assert_same_record(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.fixture(scope="module")
def local_record(masked_mst, mst_inputs):
    return evaluate(masked_mst, mst_inputs, config_for(masked_mst, 12))


def test_two_workers_give_the_bits_of_one_process(cluster, masked_mst, mst_inputs, local_record):
    local = local_record
    spread = evaluate(masked_mst, mst_inputs, config_for(masked_mst, 3), RayExecutor(workers=2))
    assert_same_record(local, spread)
    assert ray.is_initialized()  # a cluster the caller started stays up


def dying_once(marker: str):
    """run_chunk, except that the first try of the chunk starting at sample 3 kills its worker."""
    def task(files, config, x, start):
        if start == 3 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return run_chunk(files, config, x, start)
    return task


def test_a_dead_workers_chunk_is_retried_and_counted_once(cluster, masked_mst, mst_inputs, local_record, tmp_path):
    marker = tmp_path / "killed"
    seen = []
    spread = evaluate(masked_mst, mst_inputs, config_for(masked_mst, 3), RayExecutor(workers=2, task=dying_once(str(marker))),
                      result_path=tmp_path / "r.npz", progress=seen.append)
    assert marker.exists()  # the worker did die
    assert_same_record(local_record, spread)
    assert seen[-1] == 12 and sorted(seen) == seen


@pytest.mark.lava
def test_lava_on_two_workers_gives_the_bits_of_one_process(cluster, artifacts, tmp_path):
    art = artifacts("digits_mlp")
    np.save(tmp_path / "x.npy", np.load(GRAPHS / "digits_test_x.npy")[:2])
    inputs = InputSet(tmp_path / "x.npy", [1, 8, 8])
    config = RunConfig("lava", art.net.latency() + 4, 0, art.net.latency(), batch_size=1)
    spread = evaluate(art, inputs, config, RayExecutor(workers=2))
    sim = evaluate(art, inputs, RunConfig("sim", config.steps, 0, config.readout_start))
    assert_same_record(sim, spread)  # Lava on the workers, spike for spike the simulator's


def test_the_ray_example_on_an_existing_cluster_equals_one_process(cluster, tmp_path):
    """examples/evaluate_digits_on_ray.py on a slice, on the module's cluster: `run --ray-address
    ADDR --report` through the command line, equal bit for bit to one process."""
    from evaluate_digits_on_ray import main

    from neurocompile.compiler.artifact import load_artifact

    main(["--samples", "16", "--steps", "4", "--ray-address", ray.get_runtime_context().gcs_address, "--out", str(tmp_path)])
    art = load_artifact(tmp_path / "digits_mst.ncx")
    latency = art.net.latency()
    evaluate(art, InputSet(tmp_path / "digits_x.npy", [1, 16, 16]), RunConfig("sim", latency + 4, 0, latency), result_path=tmp_path / "one.npz")
    assert (tmp_path / "result.npz").read_bytes() == (tmp_path / "one.npz").read_bytes()
    for name in ("summary.json", "rates.png", "raster.png", "rates.json", "raster.npz"):
        assert (tmp_path / "report" / name).is_file()
