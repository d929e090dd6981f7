"""The command-line contract: build, run, compare, inspect; bad input -> one line, exit 2."""

import json
import re
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from neurocompile.compiler.artifact import load_artifact

from conftest import GRAPHS

MLP = GRAPHS / "digits_mlp.onnx"
X = GRAPHS / "digits_test_x.npy"


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "neurocompile.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def assert_bad_input(proc, *words):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def mlp_artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "mlp.ncx"
    proc = cli("build", MLP, "--target", "loihi2-sim", "-o", out)
    assert proc.returncode == 0, proc.stderr
    return out


def test_build_defaults_next_to_the_model(tmp_path):
    model = tmp_path / "net.onnx"
    model.write_bytes(MLP.read_bytes())
    proc = cli("build", model)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "net.ncx" / "manifest.json").is_file()


def test_run_json_summary_and_result_file(mlp_artifact, tmp_path):
    out = tmp_path / "r.npz"
    proc = cli("run", mlp_artifact, "--input", X, "--steps", 32, "--backend", "sim", "--labels", GRAPHS / "digits_test_y.npy", "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    latency = load_artifact(mlp_artifact).net.latency()
    # By default the readout sums the 32 steps after the pipeline fill, and says so.
    assert latency > 0 and s["readout_start"] == latency and s["steps"] == latency + 32
    assert s["windows"] == {"before_readout": [0, latency], "readout": [latency, latency + 32]}
    assert s["samples"] == 360 and s["accuracy"] > 0.97
    energy = s["energy"]
    assert energy["energy_per_inference_j"] == pytest.approx(energy["dynamic_energy_j"] + energy["static_energy_j"])
    assert set(energy["per_population"]) >= {"net.net.3", "net.net.6"}
    assert set(s["spikes"]) == {"net.net.3", "net.net.6"}
    with np.load(out, allow_pickle=False) as r:
        assert r["output"].shape == (360, 10)
        assert r["spikes/net.net.3"].shape == (360,)
        np.testing.assert_array_equal(r["total_spikes"], r["spikes/net.net.3"] + r["spikes/net.net.6"])
        assert (r["synaptic_ops"] > 0).all()


@pytest.mark.lava
def test_compare_reports_identical_spikes(mlp_artifact):
    proc = cli("compare", mlp_artifact, "--input", X, "--steps", 16, "--samples", 2, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cmp = json.loads(proc.stdout)
    assert cmp["identical"] and cmp["first_divergence"] is None


def test_inspect_shows_the_energy_estimate_of_a_calibrated_build(tmp_path):
    out = tmp_path / "mlp.ncx"
    assert cli("build", MLP, "--calibrate", X, "-o", out).returncode == 0
    proc = cli("inspect", out)
    assert proc.returncode == 0, proc.stderr
    assert "nJ dynamic" in proc.stdout and "nJ / step" in proc.stdout


def test_inspect_artifact_and_model(mlp_artifact):
    proc = cli("inspect", mlp_artifact)
    assert proc.returncode == 0, proc.stderr
    for word in ("Populations", "Synapse blocks", "Placement", "net.net.3", "qcfs L=8", "lower bound", "build with --calibrate for an estimate"):
        assert word in proc.stdout
    proc = cli("inspect", MLP)
    assert proc.returncode == 0 and "net.net.6" in proc.stdout


def test_inspect_says_when_populations_start(mlp_artifact, tmp_path):
    from rich.console import Console

    from neurocompile.cli.views import artifact_summary
    from neurocompile.compiler.artifact import load_artifact

    zero = tmp_path / "zero.ncx"
    assert cli("build", MLP, "--start", "zero", "-o", zero).returncode == 0
    for path, says in ((mlp_artifact, "each population starts when its last input arrives (--start aligned)"),
                       (zero, "every population starts at step 0")):
        console = Console(width=300, record=True)
        console.print(artifact_summary(load_artifact(path)))
        assert says in console.export_text()


# --- bad input: each case is one line on stderr, exit code 2, and no artifact left behind


def _model(path, nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8), path)
    return path


def _vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _qcfs_model(path, up: float, ratio: float | None = None):
    """x -> MatMul -> QCFS(up) [-> mask(ratio) -> MatMul]."""
    consts = {"up": up, "L": 8.0, "half": 0.5, "zero": 0.0, "one": 1.0, "r": 0.0 if ratio is None else ratio}
    inits = [onnx.numpy_helper.from_array(np.array(v, np.float32), k) for k, v in consts.items()]
    inits.append(onnx.numpy_helper.from_array(np.ones((4, 4), np.float32), "w"))
    ops = [("MatMul", ["x", "w"], "h"), ("Div", ["h", "up"], "d"), ("Mul", ["d", "L"], "m"), ("Add", ["m", "half"], "a"), ("Floor", ["a"], "f"),
           ("Div", ["f", "L"], "q"), ("Clip", ["q", "zero", "one"], "c"), ("Mul", ["c", "up"], "s")]
    nodes = [helper.make_node(op, ins, [out], name=f"act/{op}_{k}") for k, (op, ins, out) in enumerate(ops)]
    out = "s"
    if ratio is not None:
        nodes += [helper.make_node("RandomUniformLike", ["s"], ["u"], name="mask/RandomUniformLike"), helper.make_node("Greater", ["u", "r"], ["k"], name="mask/Greater"),
                  helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT), helper.make_node("Mul", ["s", "kf"], ["sm"]), helper.make_node("MatMul", ["sm", "w"], ["y"])]
        out = "y"
    return _model(path, nodes, [_vi("x", [1, 4])], [_vi(out, [1, 4])], inits)


def bad_models(tmp):
    w = onnx.numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    nan = onnx.numpy_helper.from_array(np.full((4, 4), np.nan, np.float32), "w")
    inf = onnx.numpy_helper.from_array(np.where(np.eye(4) > 0, np.inf, 1.0).astype(np.float32), "w")
    return {
        "not-onnx": ((tmp / "a.onnx").write_text("hello, I am a text file") and tmp / "a.onnx", ["not an onnx model"]),
        "truncated": ((tmp / "b.onnx").write_bytes(MLP.read_bytes()[:3000]) and tmp / "b.onnx", ["truncated"]),
        "missing": (tmp / "nope.onnx", ["does not exist"]),
        "unsupported-op": (_model(tmp / "c.onnx", [helper.make_node("MaxPool", ["x"], ["y"], name="pool1", kernel_shape=[2, 2], strides=[2, 2])], [_vi("x", [1, 1, 4, 4])], [_vi("y", [1, 1, 2, 2])]), ["pool1", "MaxPool", "supported ops"]),
        "dynamic-shape": (_model(tmp / "d.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"])], [_vi("x", [1, "tokens", 4])], [_vi("y", [1, "tokens", 4])], [w]), ["dynamic", "tokens"]),
        "old-opset": (_model(tmp / "e.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"])], [_vi("x", [1, 4])], [_vi("y", [1, 4])], [w], opset=11), ["opset 11"]),
        "nan-weights": (_model(tmp / "f.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"])], [_vi("x", [1, 4])], [_vi("y", [1, 4])], [nan]), ["nan"]),
        "inf-weights": (_model(tmp / "g.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"])], [_vi("x", [1, 4])], [_vi("y", [1, 4])], [inf]), ["inf"]),
        "zero-threshold": (_qcfs_model(tmp / "h.onnx", 0.0), ["QCFS", "up = 0", "positive"]),
        "negative-threshold": (_qcfs_model(tmp / "i.onnx", -1.0), ["QCFS", "up = -1", "positive"]),
        "mask-ratio-above-1": (_qcfs_model(tmp / "j.onnx", 1.0, 1.5), ["mask/Greater", "mask ratio 1.5", "outside [0, 1)"]),
        "mask-ratio-negative": (_qcfs_model(tmp / "k.onnx", 1.0, -0.5), ["mask/Greater", "mask ratio -0.5", "outside [0, 1)"]),
        "relu-uncalibrated": (GRAPHS / "digits_mlp_relu.onnx", ["--calibrate"]),
    }


@pytest.mark.parametrize("case", ["not-onnx", "truncated", "missing", "unsupported-op", "dynamic-shape", "old-opset", "nan-weights", "inf-weights",
                                  "zero-threshold", "negative-threshold", "mask-ratio-above-1", "mask-ratio-negative", "relu-uncalibrated"])
def test_bad_model(tmp_path, case):
    model, words = bad_models(tmp_path)[case]
    out = tmp_path / "out" / "m.ncx"
    assert_bad_input(cli("build", model, "-o", out), *words)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_bad_target_and_flags(tmp_path):
    assert_bad_input(cli("build", MLP, "--target", "spinnaker", "-o", tmp_path / "m.ncx"), "unknown target")
    assert_bad_input(cli("build", MLP, "--encoding", "morse", "-o", tmp_path / "m.ncx"), "encoding")
    assert_bad_input(cli("build", MLP, "--product", "outer", "-o", tmp_path / "m.ncx"), "--product", "'outer' is not one of", "telescoping")
    assert_bad_input(cli("build", MLP, "--mask-ratio", "0.5", "-o", tmp_path / "m.ncx"), "--mask-ratio 0.5 matches no mask")
    assert_bad_input(cli("build", MLP, "--mask-ratio", "attn=1", "-o", tmp_path / "m.ncx"), "outside [0, 1)")
    assert_bad_input(cli("build", MLP, "--failure-mode", "quantal", "-o", tmp_path / "m.ncx"), "--failure-mode", "'quantal' is not one of")
    assert not (tmp_path / "m.ncx").exists()


def test_bad_run_inputs(mlp_artifact, tmp_path):
    wrong_shape = tmp_path / "w.npy"
    np.save(wrong_shape, np.zeros((3, 64), np.float32))
    assert_bad_input(cli("run", mlp_artifact, "--input", wrong_shape, "--steps", 4), "shape [3, 64]", "[batch, 1, 8, 8]")
    strings = tmp_path / "s.npy"
    np.save(strings, np.array([["a"] * 8] * 8))
    assert_bad_input(cli("run", mlp_artifact, "--input", strings, "--steps", 4), "dtype")
    assert_bad_input(cli("run", mlp_artifact, "--input", tmp_path / "none.npy", "--steps", 4), "does not exist")
    assert_bad_input(cli("run", mlp_artifact, "--input", X, "--steps", 0), "steps")
    assert_bad_input(cli("run", mlp_artifact, "--input", X, "--steps", 4, "--backend", "gpu"), "backend")
    assert_bad_input(cli("run", mlp_artifact, "--input", X, "--steps", 4, "--readout-start", "soon"), "--readout-start", "'soon'")
    assert_bad_input(cli("run", tmp_path / "missing.ncx", "--input", X, "--steps", 4), "does not exist")


def test_hardware_target_without_a_board_says_what_is_missing(tmp_path):
    out = tmp_path / "hw.ncx"
    assert cli("build", MLP, "--target", "loihi2", "-o", out).returncode == 0
    assert_bad_input(cli("run", out, "--input", X, "--steps", 4, "--samples", 1, "--backend", "lava"), "lava-loihi", "loihi2-sim")


@pytest.mark.lava
def test_compare_exits_1_on_a_divergence(mlp_artifact, monkeypatch, capsys):
    # In-process, with the comparison made to disagree: the exit code must reach the shell
    # (typer returns, rather than raises, the code of an Exit in non-standalone mode).
    import neurocompile.cli as cli_module
    import neurocompile.cli.runs as runs

    real = runs.compare_results

    def disagree(a, b):
        cmp = real(a, b)
        return {**cmp, "identical": False, "divergence_text": "planted"}

    monkeypatch.setattr(runs, "compare_results", disagree)
    monkeypatch.setattr(sys, "argv", ["neurocompile", "compare", str(mlp_artifact), "--input", str(X), "--steps", "4", "--samples", "1"])
    with pytest.raises(SystemExit) as exit_:
        cli_module.main()
    assert exit_.value.code == 1
    assert "first divergence" in capsys.readouterr().out


def test_readout_start_counts_steps_before_the_summed_ones(mlp_artifact):
    from neurocompile.cli.views import readout_line

    s = json.loads(cli("run", mlp_artifact, "--input", X, "--samples", 3, "--steps", 4, "--readout-start", 5, "--json").stdout)
    assert s["steps"] == 9 and s["windows"] == {"before_readout": [0, 5], "readout": [5, 9]}
    everything = {"windows": {"before_readout": [0, 0], "readout": [0, 4]}}
    assert readout_line(everything, 2) == "readout: summed steps 0..3 (4 steps) of 4, from step 0, including the 2-step pipeline fill: --readout-start latency sums only after it"
    assert "after the 5-step pipeline fill" in readout_line(s, 5)


def test_bad_labels_and_result_paths_are_one_line_errors(mlp_artifact, tmp_path):
    from neurocompile.data import check_output_file, load_labels
    from neurocompile.errors import NeurocompileError

    cases = {
        "missing.npy": (None, "does not exist"),
        "short.npy": (np.arange(3), "3 labels for 4 inputs"),
        "matrix.npy": (np.zeros((4, 2), np.int64), "shape [4, 2]"),
        "fractions.npy": (np.array([0.5, 1, 2, 3]), "dtype float64"),
        "words.npy": (np.array(["a", "b", "c", "d"]), "dtype <U1"),
        "pickled.npy": (np.array([{}, {}, {}, {}], dtype=object), "not a readable .npy"),
    }
    for name, (labels, words) in cases.items():
        path = tmp_path / name
        if labels is not None:
            np.save(path, labels, allow_pickle=True)
        with pytest.raises(NeurocompileError, match=re.escape(words)):
            load_labels(path, 4)
    np.savez(tmp_path / "both.npz", y=np.arange(4))
    with pytest.raises(NeurocompileError, match=".npz archive"):
        load_labels(tmp_path / "both.npz", 4)
    np.save(tmp_path / "whole.npy", np.arange(4.0))  # whole-number floats are labels
    assert load_labels(tmp_path / "whole.npy", 4).tolist() == [0, 1, 2, 3]

    for out, words in ((tmp_path / "r.txt", ".npz"), (tmp_path / "no" / "such" / "r.npz", "does not exist"), (mlp_artifact / "r.npz", "inside the artifact")):
        with pytest.raises(NeurocompileError, match=re.escape(words)):
            check_output_file(out, ".npz")
    # The command line: one line, exit 2, before anything runs; nothing half-written.
    run = ("run", mlp_artifact, "--input", X, "--steps", 2, "--samples", 4)
    assert_bad_input(cli(*run, "--labels", tmp_path / "short.npy"), "3 labels for 4 inputs")
    assert_bad_input(cli(*run, "--out", tmp_path / "r.txt"), "r.txt", ".npz")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_environment_errors_exit_2_not_3(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_bad_input(cli("build", MLP, "-o", blocker / "m.ncx"), "file")  # a file where a folder should be
    assert_bad_input(cli("build", MLP, "-o", tmp_path / ("n" * 300 + ".ncx")), "name too long")


def _small_disk():
    """The child process may write files of at most 64 KiB: beyond, a write fails as on a full
    disk (EFBIG instead of ENOSPC; SIGXFSZ ignored so that the write returns the error)."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


def test_a_write_that_fails_midway_is_exit_2_and_leaves_nothing_half_written(mlp_artifact, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "neurocompile.cli", *map(str, args)], capture_output=True, text=True, preexec_fn=_small_disk)

    assert_bad_input(run("build", MLP, "-o", tmp_path / "m.ncx"), "File too large")  # params.npz alone is larger
    assert list(tmp_path.iterdir()) == []
    # The simulator's compiled loops are cached beside the package on first use; a first use
    # under the limit would fail on that cache (no file named), not on the result.
    warm = tmp_path / "warm.npz"
    assert cli("run", mlp_artifact, "--input", X, "--steps", 4, "--out", warm).returncode == 0
    warm.unlink()
    many = tmp_path / "x.npy"
    np.save(many, np.tile(np.load(X), (2, 1, 1, 1)))  # 720 samples: the result outgrows 64 KiB
    assert_bad_input(run("run", mlp_artifact, "--input", many, "--steps", 4, "--batch-size", 240, "--out", tmp_path / "r.npz"), "File too large", "r.npz")
    # Complete chunks stay for --resume (their sizes are whole files); no result, no temporary.
    partial = tmp_path / "r.npz.partial"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.npz.partial", "x.npy"]
    assert all(p.name == "run.json" or p.name.startswith("chunk-") for p in partial.iterdir())


def test_sizes_beyond_reason_are_refused_up_front(mlp_artifact, tmp_path):
    from neurocompile.cli.runs import run_backend
    from neurocompile.compiler import BuildOptions, build
    from neurocompile.compiler.artifact import load_artifact
    from neurocompile.errors import NeurocompileError

    with pytest.raises(NeurocompileError, match=re.escape("input range 1e+308 is above 2^63")):
        build(MLP, tmp_path / "m.ncx", BuildOptions(input_range=1e308))
    x = np.load(X)[:1]
    with pytest.raises(NeurocompileError, match="4294967295 steps"):
        run_backend(load_artifact(mlp_artifact), x, 10**12, "sim", 0)
    assert list(tmp_path.iterdir()) == []
    # Before either backend starts: the recording would need hundreds of GiB.
    assert_bad_input(cli("compare", mlp_artifact, "--input", X, "--samples", 1, "--steps", 10**9), "GiB", "available")


def test_a_chain_that_composes_into_too_many_synapses_is_refused_before_it_is_built(tmp_path):
    """x [20000] -> MatMul [20000, 2] -> MatMul [2, 20000]: two small weights whose product, one
    explicit synapse block, would hold 4e8 synapses (several GB). It is refused from a bound
    computed before the product, with a peak of traced memory far below the product's size."""
    import tracemalloc

    from neurocompile.errors import NeurocompileError
    from neurocompile.frontend import onnx_to_ir

    n = 20000
    rng = np.random.default_rng(0)
    w1 = onnx.numpy_helper.from_array(rng.normal(size=(n, 2)).astype(np.float32), "W1")
    w2 = onnx.numpy_helper.from_array(rng.normal(size=(2, n)).astype(np.float32), "W2")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W1"], ["h"]), helper.make_node("MatMul", ["h", "W2"], ["y"])], "g",
                              [_vi("x", [1, n])], [_vi("y", [1, n])], [w1, w2])
    path = tmp_path / "lowrank.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    tracemalloc.start()
    try:
        with pytest.raises(NeurocompileError, match="composes into up to 400000000 explicit synapses, above the limit"):
            onnx_to_ir(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, peak


def test_a_model_onnx_runtime_refuses_is_refused(tmp_path):
    """MatMul of a float input with an int8 weight: ONNX's type rules (and ONNX Runtime) reject it."""
    w = onnx.numpy_helper.from_array(np.ones((4, 3), np.int8), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g", [_vi("x", [1, 4])], [_vi("y", [1, 3])], [w])
    path = tmp_path / "int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert_bad_input(cli("build", path, "-o", tmp_path / "m.ncx"), "MatMul", "int8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["int8.onnx"]


def _declared(tmp_path, name, nodes, inits, in_shape=(1, 4), out_shape=(1, 4)):
    graph = helper.make_graph(nodes, name, [_vi("x", list(in_shape))], [_vi("y", list(out_shape))], inits)
    path = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_huge_declared_tensors_are_refused_before_allocation(tmp_path):
    from neurocompile.frontend import onnx_to_ir
    from neurocompile.errors import NeurocompileError

    const = onnx.numpy_helper.from_array
    cases = {
        "constant_of_shape": ([helper.make_node("ConstantOfShape", ["s"], ["c"]), helper.make_node("Add", ["x", "c"], ["y"])],
                              [const(np.array([10**5, 10**5], np.int64), "s")], (1, 4), (1, 4)),
        "range": ([helper.make_node("Range", ["a", "b", "d"], ["r"]), helper.make_node("Cast", ["r"], ["f"], to=1), helper.make_node("Add", ["x", "f"], ["y"])],
                  [const(np.array(v, np.int64), k) for k, v in (("a", 0), ("b", 10**12), ("d", 1))], (1, 4), (1, 4)),
        "expand": ([helper.make_node("Expand", ["x", "t"], ["y"])], [const(np.array([1, 10**5, 10**5], np.int64), "t")], (1, 1), (1, 10**5, 10**5)),
        "input": ([helper.make_node("Relu", ["x"], ["y"])], [], (1, 10**5, 10**5), (1, 10**5, 10**5)),
    }
    for name, (nodes, inits, in_shape, out_shape) in cases.items():
        with pytest.raises(NeurocompileError, match="the limit is") as e:
            onnx_to_ir(_declared(tmp_path, name, nodes, inits, in_shape, out_shape))
        assert "\n" not in str(e.value), name


def test_a_constant_that_becomes_infinite_is_named_where_it_enters(tmp_path):
    const = onnx.numpy_helper.from_array
    path = _declared(tmp_path, "inf", [helper.make_node("Div", ["one", "zero"], ["inf"], name="ratio"), helper.make_node("Mul", ["x", "inf"], ["y"])],
                     [const(np.array(1.0, np.float32), "one"), const(np.array(0.0, np.float32), "zero")])
    assert_bad_input(cli("build", path, "-o", tmp_path / "m.ncx"), "'ratio' (Div)", "NaN or inf")
