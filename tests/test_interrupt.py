"""A Lava run that is interrupted (Ctrl-C) or terminated stops its processes: none of the OS processes Lava starts
outlives the command (Linux: descendants are read from /proc)."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import GRAPHS

pytestmark = [pytest.mark.lava, pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process trees from /proc (Linux)")]


def descendants(pid: int) -> set[int]:
    parent = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended while we read
            parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, p in parent.items() if p in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


def default_signals():
    # A shell starts background jobs with SIGINT ignored, and children inherit that; a user's
    # Ctrl-C reaches a process with the default handler.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# An interrupt can land while the runtime and a process exchange a message; Lava's own stop then
# raises or waits forever. Several moments after the processes start make that likely.
@pytest.mark.parametrize("sig,code,word,delay", [
    (signal.SIGINT, 130, "interrupted", 0.0), (signal.SIGINT, 130, "interrupted", 1.0), (signal.SIGINT, 130, "interrupted", 2.0),
    (signal.SIGTERM, 143, "terminated", 1.0),
])
def test_an_interrupted_lava_run_leaves_no_process_behind(tmp_path, sig, code, word, delay):
    artifact = tmp_path / "mlp.ncx"
    cli = [sys.executable, "-m", "neurocompile.cli"]
    subprocess.run([*cli, "build", GRAPHS / "digits_mlp.onnx", "--target", "loihi2-sim", "-o", artifact], check=True, capture_output=True)
    run = subprocess.Popen([*cli, "run", artifact, "--input", GRAPHS / "digits_test_x.npy", "--samples", "50", "--steps", "400",
                            "--backend", "lava"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)
    try:
        # Wait until Lava has started all its OS processes (the same set twice in a row): an
        # interrupt that lands inside a fork is copied into the child, a narrow window this
        # test leaves out.
        deadline = time.monotonic() + 120
        started, previous = set(), None
        while time.monotonic() < deadline and run.poll() is None and (len(started) < 3 or started != previous):
            time.sleep(0.5)
            previous, started = started, descendants(run.pid)
        assert len(started) >= 3, f"the Lava run did not start its processes: {run.stderr.read() if run.poll() is not None else 'still running'}"
        time.sleep(delay)
        started |= descendants(run.pid)
        run.send_signal(sig)
        _, stderr = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == code, stderr
    assert word in stderr and "Traceback" not in stderr, stderr
    deadline = time.monotonic() + 10
    while alive(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(started), f"processes left running after the interrupt: {sorted(alive(started))}"
