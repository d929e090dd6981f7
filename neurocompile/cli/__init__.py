"""The command line (`neurocompile`): build, inspect, run, compare, hil. What it runs is in the
stages before it; this package holds the commands, running an artifact on a backend (runs.py),
hardware in the loop (hil.py) and the tables it prints (views.py)."""

from .commands import app, main

__all__ = ["app", "main"]
