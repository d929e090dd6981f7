"""Backends that execute a compiled network: ANN mode (float reference), the bit-accurate
simulator, and Lava."""
