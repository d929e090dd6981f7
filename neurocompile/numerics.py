"""The target's fixed point as one typed object: every bit width and integer limit that the
passes, the simulator, the Lava process models and the energy model use comes from here.

Built from a target's `[numerics]` table (targets.py validates its ranges). Widths are signed
two's complement unless a field says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


def signed_max(bits: int) -> int:
    """The largest value of a signed integer of `bits` bits."""
    return 2 ** (bits - 1) - 1


@dataclass(frozen=True)
class Numerics:
    weight_mantissa_bits: int  # signed synaptic weight mantissa; one shift per synapse block
    weight_shift_min: int
    weight_shift_max: int
    membrane_bits: int  # IF membrane, saturating
    threshold_units: int  # the membrane value every threshold maps to
    threshold_mantissa_bits: int  # threshold = mantissa << threshold_shift
    threshold_shift: int
    bias_mantissa_bits: int  # bias = mantissa << exponent
    bias_exp_max: int
    input_payload_bits: int  # graded input spikes (current encoding)
    current_bits: int  # per-step synaptic input to one neuron, bounded at compile time
    # Graded spikes of relays, host ops and products. Loihi 2 carries up to 24 bits; a target
    # file may state its own (it is optional there, so older artifacts read unchanged).
    graded_payload_bits: int = 24

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> "Numerics":
        """From a validated `[numerics]` table; keys it does not name take their defaults."""
        return cls(**{f.name: table[f.name] for f in fields(cls) if f.name in table})

    @property
    def weight_mantissa_max(self) -> int:
        return signed_max(self.weight_mantissa_bits)

    @property
    def bias_mantissa_max(self) -> int:
        return signed_max(self.bias_mantissa_bits)

    @property
    def membrane_max(self) -> int:
        return signed_max(self.membrane_bits)

    @property
    def current_max(self) -> int:
        return signed_max(self.current_bits)

    @property
    def input_payload_max(self) -> int:
        return signed_max(self.input_payload_bits)

    @property
    def graded_payload_max(self) -> int:
        return signed_max(self.graded_payload_bits)
