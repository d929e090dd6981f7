"""The Lava backend. Lava is imported only when this backend runs (it is slow to import, and
every process it runs is an OS process)."""

import multiprocessing
import sys


def let_lava_choose_fork() -> None:
    """Lava fixes multiprocessing's start method to fork when first imported, and its import
    fails if a start method was fixed before. numba's thread pool fixes the platform default
    (fork, on Linux) when the CPU simulator first runs in parallel, as `compare` does before
    Lava runs; that default is then released, for Lava to set to the same."""
    if "lava.magma.runtime.message_infrastructure.multiprocessing" not in sys.modules and multiprocessing.get_start_method(allow_none=True) == "fork":
        multiprocessing.set_start_method(None, force=True)
