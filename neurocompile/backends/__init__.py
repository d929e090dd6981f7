"""Backends that execute a compiled network: the bit-accurate simulator, Lava processes, and the
float per-step reference (the MST paper's evaluation)."""
