"""Synaptic failure from random spike masking: the build-time ratio overrides and failure mode.

The frontend puts each mask's ratio on the blocks and product operands that carry the masked
spikes (its `group`). `--mask-ratio` overrides ratios, for every mask (`0.5`) or per group
(`attn=0.75,mlp=0.5`: a key selects the masks whose name contains it), so that one exported model
can be studied at many ratios. The mode says what fails: a presynaptic spike for all its targets
at once (`spike`, the MST's semantics), or each synapse on its own (`synapse`).
"""

from __future__ import annotations

from ..errors import NeurocompileError
from ..ir.graph import Network
from ..ir.nodes import FAILURE_MODES, Product


def parse_mask_ratios(spec: str | None) -> dict[str, float]:
    """'0.5' -> {'': 0.5} (every mask); 'attn=0.75,mlp=0.5' -> {'attn': 0.75, 'mlp': 0.5}."""
    if spec is None or not spec.strip():
        return {}
    ratios: dict[str, float] = {}
    for item in spec.split(","):
        key, _, value = item.rpartition("=")
        try:
            ratio = float(value)
        except ValueError:
            raise NeurocompileError(f"--mask-ratio '{item.strip()}' is not RATIO or GROUP=RATIO") from None
        if not 0.0 <= ratio < 1.0:
            raise NeurocompileError(f"--mask-ratio {item.strip()}: ratio {ratio:g} is outside [0, 1)")
        ratios[key.strip()] = ratio
    return ratios


def _sites(net: Network):
    """(group, setter) for every place a mask acts: blocks, and each masked product operand."""
    for block in net.synapses():
        if block.failure_group:
            yield block.failure_group, lambda p, b=block: setattr(b, "failure", p)
    for pop in net.populations():
        if isinstance(pop, Product):
            for side in ("a", "b"):
                group = getattr(pop, f"failure_group_{side}")
                if group:
                    yield group, lambda p, node=pop, s=side: setattr(node, f"failure_{s}", p)


def mask_groups(net: Network) -> list[str]:
    return sorted({group for group, _ in _sites(net)})


def set_failures(net: Network, ratios: dict[str, float], mode: str) -> dict[str, float]:
    """Sets the ratio of every mask a key of `ratios` selects, and the failure mode of every
    block; returns the masks whose ratio it set, with their ratio."""
    if mode not in FAILURE_MODES:
        raise NeurocompileError(f"failure mode '{mode}' is not one of {', '.join(FAILURE_MODES)}")
    groups = mask_groups(net)
    for key in ratios:
        if not any(key in g for g in groups):
            have = ", ".join(groups) if groups else "none (the model has no RandomUniformLike/Bernoulli masks)"
            what = f"key '{key}'" if key else f"{ratios[key]:g}"
            raise NeurocompileError(f"--mask-ratio {what} matches no mask of the model; its masks: {have}")
    changed = {}
    for group, set_ratio in _sites(net):
        # The most specific key wins: 'attn.q_mask=0.5' over 'attn=0.75' over a bare ratio.
        keys = [k for k in ratios if k in group]
        if keys:
            changed[group] = ratios[max(keys, key=len)]
            set_ratio(changed[group])
    for block in net.synapses():
        block.failure_mode = mode
    return changed
