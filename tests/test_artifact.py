"""The artifact contract: shape, determinism, hashes checked on load, atomic writes, no pickle."""

import hashlib
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from neurocompile.compiler import BuildOptions, build, compile_network
import neurocompile.compiler.artifact as artifact_module
from neurocompile.compiler.artifact import load_artifact
from neurocompile.errors import NeurocompileError
from neurocompile.ir.interpret import evaluate
from neurocompile.targets import load_target

from conftest import GRAPHS, ROOT

CHECK = ROOT.parent / "shared" / "tools" / "check-artifact"


def digest(path):
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(path.iterdir())}


def test_same_inputs_give_identical_bytes(tmp_path):
    a, _ = build(GRAPHS / "digits_cnn.onnx", tmp_path / "a.ncx", BuildOptions(seed=3))
    b, _ = build(GRAPHS / "digits_cnn.onnx", tmp_path / "b.ncx", BuildOptions(seed=3))
    assert digest(a) == digest(b)
    c, _ = build(GRAPHS / "digits_cnn.onnx", tmp_path / "c.ncx", BuildOptions(seed=4))
    assert digest(a)["params.npz"] == digest(c)["params.npz"] and digest(a)["manifest.json"] != digest(c)["manifest.json"]


@pytest.mark.skipif(not CHECK.is_file(), reason="the shared check-artifact tool is not beside this checkout")
def test_conforms_to_the_contract(tmp_path):
    path, _ = build(GRAPHS / "digits_mlp.onnx", tmp_path / "m.ncx", BuildOptions())
    proc = subprocess.run([sys.executable, str(CHECK), str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_round_trip_keeps_the_network(tmp_path):
    target = load_target("loihi2-sim")
    net, _, _ = compile_network(GRAPHS / "digits_cnn.onnx", target, BuildOptions())
    path, _ = build(GRAPHS / "digits_cnn.onnx", tmp_path / "c.ncx", BuildOptions())
    loaded = load_artifact(path).net
    x = np.load(GRAPHS / "digits_test_x.npy")[:8]
    for quantized in (False, True):
        a = evaluate(net, x, quantized)["post"]
        b = evaluate(loaded, x, quantized)["post"]
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])


def test_params_load_without_pickle_and_have_fixed_timestamps(tmp_path):
    path, _ = build(GRAPHS / "digits_mlp.onnx", tmp_path / "m.ncx", BuildOptions())
    with np.load(path / "params.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    with zipfile.ZipFile(path / "params.npz") as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


@pytest.mark.parametrize("victim", ["graph.json", "params.npz", "placement.json", "report.json"])
def test_tampered_artifact_is_refused(tmp_path, victim):
    path, _ = build(GRAPHS / "digits_mlp.onnx", tmp_path / "m.ncx", BuildOptions())
    data = bytearray((path / victim).read_bytes())
    data[len(data) // 2] ^= 0x01
    (path / victim).write_bytes(bytes(data))
    with pytest.raises(NeurocompileError, match=f"{victim}.*sha256"):
        load_artifact(path)


def test_failed_build_leaves_nothing_behind(tmp_path):
    out = tmp_path / "relu.ncx"
    with pytest.raises(NeurocompileError, match="--calibrate"):
        build(GRAPHS / "digits_mlp_relu.onnx", out, BuildOptions())
    assert list(tmp_path.iterdir()) == []


def test_rebuild_replaces_an_artifact_but_not_other_directories(tmp_path):
    out = tmp_path / "m.ncx"
    build(GRAPHS / "digits_mlp.onnx", out, BuildOptions(seed=1))
    build(GRAPHS / "digits_mlp.onnx", out, BuildOptions(seed=2))
    assert load_artifact(out).manifest["options"]["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ncx"]
    precious = tmp_path / "data"
    precious.mkdir()
    (precious / "keep.txt").write_text("x")
    with pytest.raises(NeurocompileError, match="not an artifact"):
        build(GRAPHS / "digits_mlp.onnx", precious, BuildOptions())
    assert (precious / "keep.txt").read_text() == "x"


def test_replacing_an_artifact_never_leaves_the_path_empty(tmp_path, monkeypatch):
    """The new artifact takes the old one's place in one step: a failure of any rename
    (or a signal) cannot leave -o without an artifact."""
    out = tmp_path / "m.ncx"
    build(GRAPHS / "digits_mlp.onnx", out, BuildOptions(seed=1))
    assert artifact_module.exchange(tmp_path / "m.ncx", tmp_path / "m.ncx")  # this platform can exchange

    renames = []

    def rename_that_fails_second(src, dst):  # moving the old artifact aside works, moving the new one in fails
        renames.append(dst)
        if len(renames) == 2:
            raise OSError(5, "injected failure", str(dst))
        real_rename(src, dst)

    real_rename = artifact_module.os.rename
    monkeypatch.setattr(artifact_module.os, "rename", rename_that_fails_second)
    build(GRAPHS / "digits_mlp.onnx", out, BuildOptions(seed=2))
    assert load_artifact(out).manifest["options"]["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ncx"]


def test_concurrent_builds_to_one_path_both_succeed(tmp_path):
    out = tmp_path / "m.ncx"
    cmd = [sys.executable, "-m", "neurocompile.cli", "build", str(GRAPHS / "digits_mlp.onnx"), "-o", str(out)]
    procs = [subprocess.Popen(cmd + ["--seed", str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in range(4)]
    for p in procs:
        _, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
    assert load_artifact(out).manifest["options"]["seed"] in range(4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ncx"]


def _edited(path, name, edit):
    """The artifact with one file edited and its manifest hash recomputed: what a careless or
    hostile hand can produce, which the hashes alone cannot catch."""
    import json

    data = json.loads((path / name).read_text())
    edit(data)
    (path / name).write_text(json.dumps(data))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"][name] = hashlib.sha256((path / name).read_bytes()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))


def _node(doc, kind):
    return next(n for n in doc["nodes"] if n["kind"] == kind)


EDITS = {
    "negative threshold": ("graph.json", lambda d: _node(d, "if").update(threshold_int=-5), "threshold_int = -5"),
    "absurd weight shift": ("graph.json", lambda d: _node(d, "synapse").update(w_shift=99), "w_shift = 99"),
    "absurd bias exponent": ("graph.json", lambda d: _node(d, "if").update(bias_exp=40), "bias_exp = 40"),
    "NaN scale": ("graph.json", lambda d: _node(d, "if").update(scale=float("nan")), "scale"),
    "unknown target mode": ("graph.json", lambda d: d["target"].update(mode="warp"), "target mode 'warp'"),
    "failure probability 1": ("graph.json", lambda d: _node(d, "synapse").update(failure=1.0), "failure = 1.0"),
    "no nodes": ("graph.json", lambda d: d.pop("nodes"), "lacks 'nodes'"),
    "report as a list": ("report.json", lambda d: d.clear() or None, None),
    "placement over a core's limit": ("placement.json", lambda d: d["cores"][0].update(neurons=10**9), "placement.json"),
    "placement without cores": ("placement.json", lambda d: d.pop("cores"), "placement.json"),
    "unknown population placed": ("placement.json", lambda d: d["cores"][0]["slices"][0].update(population="ghost"), "ghost"),
}


@pytest.mark.parametrize("case", EDITS)
def test_an_edited_and_rehashed_artifact_is_refused_in_one_line(tmp_path, case):
    path, _ = build(GRAPHS / "digits_mlp.onnx", tmp_path / "m.ncx", BuildOptions())
    name, edit, words = EDITS[case]
    if case == "report as a list":
        (path / name).write_text("[]")
        _edited(path, name, lambda d: None)
        words = "report.json"
    else:
        _edited(path, name, edit)
    with pytest.raises(NeurocompileError, match=None) as e:
        load_artifact(path)
    message = str(e.value)
    assert "\n" not in message and words in message and str(path) in message, message


def test_inspect_recomputes_what_the_placement_claims(tmp_path):
    path, _ = build(GRAPHS / "digits_mlp.onnx", tmp_path / "m.ncx", BuildOptions())
    _edited(path, "placement.json", lambda d: d["cores"][0].update(neurons=1))  # a plausible lie: within every limit
    load_artifact(path)  # the stated figures fit the cores
    with pytest.raises(NeurocompileError, match="says neurons = 1, recomputed"):
        load_artifact(path, recompute_placement=True)
    proc = subprocess.run([sys.executable, "-m", "neurocompile.cli", "inspect", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "recomputed" in proc.stderr and "Traceback" not in proc.stderr


def test_ctrl_c_while_an_archive_is_written_takes_effect_once_it_is_written():
    """An interrupt inside zipfile's opening of a member would surface as an internal error
    (its close raises over the KeyboardInterrupt): archives are written with Ctrl-C deferred.
    The signal arrives in the middle of writing an array, in a process of its own (whose main
    thread takes it): the array is written, then the interrupt is raised."""
    code = (
        "import os, signal\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal's Ctrl-C finds it, even if started in the background\n"
        "import numpy as np\n"
        "from neurocompile.compiler import artifact\n"
        "write_array = np.lib.format.write_array\n"
        "def interrupted_write(*args, **kw):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    write_array(*args, **kw)\n"
        "    print('array written', flush=True)\n"
        "np.lib.format.write_array = interrupted_write\n"
        "try:\n"
        "    artifact.npz_bytes({'a': np.arange(3)})\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines() == ["array written", "interrupted"], (done.stdout, done.stderr)
