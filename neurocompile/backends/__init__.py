"""Backends that execute a compiled network: the bit-accurate simulator, Lava processes, and the
float per-step reference (the MST paper's evaluation). Each is imported only when it runs (torch
and Lava are slow to import)."""

DEVICES = ("cpu", "cuda")  # where the simulator runs
