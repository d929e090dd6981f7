"""The step from which each population takes input (docs/semantics.md, "Start").

A synapse hop costs a step, so a population whose inputs come by paths of different lengths (a
residual sum: the skip is short, the block long) or that carries a bias hears only part of its
input during the pipeline's fill. Integrating that part leaves its membrane off by what the
missing terms would have contributed (a negative bias alone runs up a debt of steps x bias) and
the error reaches the readout after the fill, where it is summed. `aligned` starts each
population at the step its last input path arrives (the longest path from the input, as
`Network.delays` counts it), so every population integrates complete inputs from its first step,
as the float network does: on the digits MST it removes most of the SNN's disagreements with its
ANN at T = 16 to 32 steps after the fill (README, "Fidelity"). `zero` starts every population at
step 0, as networks ran before.
"""

from __future__ import annotations

from typing import Callable

from ..ir.graph import Network
from ..ir.nodes import STARTS


def _aligned(net: Network) -> dict[str, int]:
    return net.delays()


def _zero(net: Network) -> dict[str, int]:
    return {}


START_RULES: dict[str, Callable[[Network], dict[str, int]]] = {"aligned": _aligned, "zero": _zero}
assert set(START_RULES) == set(STARTS)


def assign_starts(net: Network, rule: str) -> list[str]:
    """Sets `start` on every population that has one; returns the names it changed."""
    starts = START_RULES[rule](net)
    changed = []
    for pop in net.populations():
        if hasattr(pop, "start"):
            start = int(starts.get(pop.name, 0))
            if pop.start != start:
                pop.start = start
                changed.append(pop.name)
    return changed
