"""The package installs from its wheel: targets ship as package data, nothing is read from the
source tree. The wheel goes into a fresh virtual environment that borrows the dependencies the
test environment already has (no download) and compiles a shipped model from outside the tree."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from conftest import GRAPHS, ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtual environment with only the wheel installed; returns its bin folder."""
    root = tmp_path_factory.mktemp("wheel")
    wheels = root / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True, cwd=root)
    (wheel,) = wheels.glob("neurocompile-*.whl")
    env = root / "env"
    venv.create(env, with_pip=False)
    bin_dir = env / "bin"
    target = subprocess.run([bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            check=True, capture_output=True, text=True).stdout.strip()
    # The dependencies: this environment's site-packages, appended after the new environment's
    # own (so the wheel's neurocompile, not the source tree's editable one, is found first).
    Path(target, "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--target", target, str(wheel)],
                   check=True, capture_output=True, cwd=root)
    return bin_dir


PROBE = """
import importlib.metadata, importlib.util, json
import neurocompile, neurocompile.targets as targets
(script,) = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "neurocompile"]
print(json.dumps({"file": neurocompile.__file__, "chips": targets.chips(), "entry": script.value,
                  "examples": importlib.util.find_spec("snn_models") is not None}))
"""


def test_the_wheel_holds_the_chip_files_and_the_command_but_no_example_code(installed):
    out = json.loads(subprocess.run([installed / "python", "-c", PROBE], check=True, capture_output=True, text=True, cwd=installed).stdout)
    assert not out["file"].startswith(str(ROOT)), out["file"]
    assert out["chips"] == ["loihi1", "loihi2", "loihi2-halapoint"]
    assert out["entry"] == "neurocompile.cli:main"
    assert out["examples"] is False


def test_the_installed_command_compiles_a_shipped_model_outside_the_source_tree(installed, tmp_path):
    artifact = tmp_path / "mlp.ncx"
    proc = subprocess.run([installed / "python", "-m", "neurocompile.cli", "build", GRAPHS / "digits_mlp.onnx", "--target", "loihi2-halapoint",
                           "-o", artifact], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (artifact / "manifest.json").is_file()
    run = subprocess.run([installed / "python", "-m", "neurocompile.cli", "run", artifact, "--input", GRAPHS / "digits_test_x.npy",
                          "--samples", "8", "--steps", "16", "--json"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert len(json.loads(run.stdout)["predictions"]) == 8
