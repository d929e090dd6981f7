"""The life of Lava's OS processes: run a network for some steps, stop it, and after an error or
an interrupt end every process it started. Lava 0.10 keeps what this needs in private attributes
of its runtime (its messaging infrastructure's actors and shared-memory manager); they are read
here and nowhere else."""

from __future__ import annotations

import multiprocessing
import time
import warnings


def hardware_available() -> bool:
    """True when Lava's Loihi extension (lava-loihi, Intel's proprietary package) is present."""
    try:
        from lava.utils.loihi import is_installed
    except ImportError:
        return False
    return bool(is_installed())


def run_steps(anchor, steps: int, run_cfg) -> None:
    """Runs the network `anchor` (any of its processes) belongs to for `steps` steps."""
    from lava.magma.core.run_conditions import RunSteps

    with warnings.catch_warnings():
        # Lava's model discovery tries to import every sibling module as a top-level name
        # and warns when that fails; the models it needs are found regardless.
        warnings.filterwarnings("ignore", message="Cannot import module", category=UserWarning)
        anchor.run(condition=RunSteps(num_steps=steps), run_cfg=run_cfg)


def stop(anchor) -> None:
    """Ends Lava's OS processes; also after a failed or interrupted first run, when a runtime
    exists although no step completed."""
    if anchor.runtime is not None:
        anchor.stop()


def _infrastructure(anchor):
    return getattr(anchor.runtime, "_messaging_infrastructure", None)


def process_errors(anchor) -> list[str]:
    """Tracebacks of the exceptions raised inside Lava's OS processes (process models), which
    lava-nc 0.10.0 logs at INFO level only."""
    actors = getattr(_infrastructure(anchor), "_actors", [])
    return [actor.exception[1] for actor in actors if getattr(actor, "exception", None)]


def abort(anchor, grace_s: float = 5.0) -> None:
    """Ends Lava's OS processes after an error or an interrupt, without Lava's stop: the
    interrupt may have cut a message between the runtime and a process in half, and then that
    stop raises or waits forever. The shared memory of the channels is released, then every
    process still running, including one started before the runtime registered it, is
    terminated and reaped. The runtime is then marked stopped: Lava's processes stop their
    runtime when garbage collected, and a stop that sends into the released channels crashes
    the interpreter."""
    infrastructure = _infrastructure(anchor)
    _end(list(getattr(infrastructure, "_actors", [])), grace_s)
    manager = getattr(infrastructure, "_smm", None)
    if manager is not None:
        manager.shutdown()
    _end(multiprocessing.active_children(), grace_s)
    if anchor.runtime is not None:
        anchor.runtime._is_running = anchor.runtime._is_started = False


def _end(processes: list, grace_s: float) -> None:
    """Terminate, then kill what is left after `grace_s`. Polls is_alive (which reaps) rather
    than join: Lava's processes override join with one that blocks."""
    alive = [p for p in processes if _running(p)]
    for p in alive:
        p.terminate()
    deadline = time.monotonic() + grace_s
    while any(_running(p) for p in alive) and time.monotonic() < deadline:
        time.sleep(0.05)
    for p in alive:
        if _running(p):
            p.kill()


def _running(process) -> bool:
    try:
        return process.is_alive()
    except ValueError:  # closed: Lava closes the processes it joined after an error
        return False
