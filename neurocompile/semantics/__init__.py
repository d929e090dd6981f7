"""The integer semantics of docs/semantics.md that no single backend owns: counter-based random
numbers, input encoding, synaptic failure, host ops and spike products. Every backend (the
simulator, the Lava process models, the float reference where it applies) calls these functions
rather than its own copy, so that they agree bit for bit."""
