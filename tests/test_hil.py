"""Hardware in the loop: the harness runs the device side (Loihi 2, or the Lava stand-in) and
the simulator and finds where they first disagree; its report records provenance."""

import copy
import json
import subprocess
import sys

import numpy as np
import pytest

from neurocompile.cli.hil import hardware_status, hil_check
from neurocompile.compiler import BuildOptions, build
from neurocompile.compiler.artifact import load_artifact
from snn_models.mst import MaskedSpikingTransformer, export_onnx

from conftest import GRAPHS


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    path, _ = build(GRAPHS / "digits_mlp.onnx", tmp_path_factory.mktemp("hil") / "mlp.ncx", BuildOptions())
    return load_artifact(path)


@pytest.mark.lava
def test_a_planted_fault_is_reported_where_it_starts(mlp):
    # The device side gets one neuron of the second layer with a much larger bias: it fires
    # early, and the first divergence must name that population and neuron.
    faulty = copy.deepcopy(mlp.net)
    pop = faulty.node("net.net.6")
    pop.bias_mant = pop.bias_mant.copy()
    pop.bias_mant[5] = np.iinfo(np.int16).max >> 3
    x = np.load(GRAPHS / "digits_test_x.npy")[:1]
    report = hil_check(mlp, x, 12, 0, device_net=faulty)
    assert not report["identical"]
    first = report["first_divergence"]
    assert (first["population"], first["neuron"], first["sample"]) == ("net.net.6", 5, 0)
    assert first["sim"] == 0 and first["lava"] == 1
    assert report["on_hardware"] is False and report["device"].startswith("loihi2-sim")


@pytest.mark.lava
def test_hil_passes_on_the_standin_for_a_masked_mst(tmp_path):
    # A small MST with random spike masking on q, k, attention and the MLP (synaptic failures
    # on), one image, every population at every step against the simulator. (The shipped digits
    # MST runs under Lava in test_mst_compile; `neurocompile hil` on it takes about a minute.)
    import torch

    torch.manual_seed(0)
    model = MaskedSpikingTransformer(img_size=8, patch_size=2, in_chans=1, num_classes=4, embed_dim=8, depths=(2,), num_heads=(2,),
                                     window_size=2, mlp_ratio=2, levels=8, attn_mask_ratio=0.5, mlp_mask_ratio=0.5).eval()
    export_onnx(model, tmp_path / "rsm.onnx", 8, 1)
    art = tmp_path / "rsm.ncx"
    assert build(tmp_path / "rsm.onnx", art, BuildOptions())[1]["warnings"] == []
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).uniform(0, 1, (1, 1, 8, 8)))
    report = tmp_path / "hil.json"
    proc = subprocess.run([sys.executable, "-m", "neurocompile.cli", "hil", str(art), "--input", str(x), "--steps", "16", "--report", str(report)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(report.read_text())
    assert doc["identical"] and doc["traffic_identical"]
    prov = doc["provenance"]
    assert prov["versions"]["lava-nc"] == "0.10.0" and prov["steps"] == 16 and prov["seed"] == 0
    assert set(prov["artifact_files_sha256"]) == {"graph.json", "params.npz", "placement.json", "report.json"}
    assert any(b.failure > 0 for b in load_artifact(art).net.synapses())


@pytest.mark.hil
def test_on_loihi2_hardware(mlp):
    ok, missing = hardware_status()
    if not ok:
        pytest.skip(missing)
    report = hil_check(mlp, np.load(GRAPHS / "digits_test_x.npy")[:2], 16, 0)
    assert report["on_hardware"] and report["identical"], report["divergence"]
