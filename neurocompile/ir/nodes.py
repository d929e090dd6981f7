"""IR node types: tensor-level objects, never single neurons.

Every node is a small dataclass with identity semantics (`eq=False`). Float fields describe the
converted network as the ANN sees it; the quantize pass fills the integer fields that the
simulator and the Lava processes execute. The integer dynamics are defined in docs/semantics.md.

Values: an IF spike carries the value `threshold`; an input element carries its analog value
(`current` encoding: graded payload x * 2^payload_frac_bits) or 1.0 per spike (`rate` encoding).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .kernels import Kernel

ACTIVATIONS = ("qcfs", "clip", "relu")
ENCODINGS = ("current", "rate")


def size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


class Population:
    """What every population has: a name, a tensor shape, and so a number of neurons."""

    name: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return size(self.shape)


@dataclass(eq=False)
class InputPopulation(Population):
    """The network input. `current`: the same graded value every step (direct current
    encoding, the MST convention); `rate`: Bernoulli spikes with probability clip(x, 0, 1)."""

    kind: ClassVar[str] = "input"
    name: str
    shape: tuple[int, ...]
    encoding: str = "current"
    payload_frac_bits: int | None = None  # set by quantize: payload = round(x * 2^frac)
    origin: str = ""

    @property
    def graded(self) -> bool:
        return self.encoding == "current"

    def value_per_unit(self) -> float:
        """Activation value carried by one unit of output payload."""
        if self.encoding == "rate":
            return 1.0
        return 2.0 ** -self.payload_frac_bits


@dataclass(eq=False)
class IFPopulation(Population):
    """Integrate-and-fire neurons with reset by subtraction (a QCFS activation, converted).

    v(0) = v_init_frac * threshold; each step v += input + bias; spike when v >= threshold;
    then v -= threshold. In ANN mode the population applies `activation` instead."""

    kind: ClassVar[str] = "if"
    name: str
    shape: tuple[int, ...]
    threshold: float  # NaN until calibrated (ReLU networks)
    activation: str = "qcfs"  # qcfs | clip | relu
    levels: int = 0  # QCFS quantization levels L
    v_init_frac: float = 0.5
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0))  # float, flat [n]
    # Quantized (filled by the quantize pass)
    scale: float | None = None  # membrane units per activation unit
    threshold_int: int | None = None
    v_init_int: int | None = None
    bias_mant: np.ndarray | None = None
    bias_exp: int | None = None
    origin: str = ""

    @property
    def graded(self) -> bool:
        return False

    def value_per_unit(self) -> float:
        return float(self.threshold)

    def ann(self, x: np.ndarray) -> np.ndarray:
        """The ANN activation this population converts."""
        if self.activation == "relu":
            return np.maximum(x, 0.0)
        if self.activation == "clip":
            return np.clip(x, 0.0, self.threshold)
        up, L = self.threshold, self.levels
        return up * np.clip(np.floor(x / up * L + 0.5) / L, 0.0, 1.0)


@dataclass(eq=False)
class Readout(Population):
    """Accumulates its input current (plus bias) every step, never spikes: the network output,
    summed over the steps. `output = acc / scale`."""

    kind: ClassVar[str] = "readout"
    name: str
    shape: tuple[int, ...]
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: float | None = None
    bias_mant: np.ndarray | None = None
    bias_exp: int | None = None
    origin: str = ""

    @property
    def graded(self) -> bool:
        return True

    def ann(self, x: np.ndarray) -> np.ndarray:
        return x


@dataclass(eq=False)
class SynapseBlock:
    """Weighted connections from one population to another, delivered one step late.

    current[target] = gather(kernel(gather(spikes[source] * value, in_index)), out_index)
    `in_index` ([*view_shape], flat source indices) and `out_index` ([*target_shape], flat kernel
    output indices) are index maps left by layout ops; -1 reads zero; None means identity.
    Before lowering, `chain` holds the raw sequence of linear ops from the frontend."""

    kind: ClassVar[str] = "synapse"
    name: str
    view_shape: tuple[int, ...]
    kernel: Kernel | None = None
    in_index: np.ndarray | None = None
    out_index: np.ndarray | None = None
    chain: Any = None  # frontend LinearChain, consumed by the lower pass
    # Quantized (filled by the quantize pass)
    w_mant: np.ndarray | None = None
    w_shift: int | None = None
    acc_bound: int | None = None  # max |sum of w_mant * payload| at one output: exactness bound
    origin: str = ""


NODE_TYPES = {cls.kind: cls for cls in (InputPopulation, IFPopulation, Readout, SynapseBlock)}
