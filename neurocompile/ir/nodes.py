"""IR node types: tensor-level objects, never single neurons.

Every node is a small dataclass with identity semantics (`eq=False`): plain data, as NIR's nodes
are. Float fields describe the converted network as the ANN sees it (ir/interpret.py evaluates
them); the quantize pass fills the integer fields that the backends execute. The integer dynamics
are defined in docs/semantics.md.

Values: an IF spike carries the value `threshold`; an input element carries its analog value
(`current` encoding: graded payload x * 2^payload_frac_bits) or 1.0 per spike (`rate` encoding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..errors import NeurocompileError
from .kernels import Kernel

ACTIVATIONS = ("qcfs", "clip", "relu")
ENCODINGS = ("current", "rate")
PRODUCT_FORMS = ("coincidence", "telescoping")  # docs/semantics.md, "Products"
FAILURE_MODES = ("spike", "synapse")  # what a mask drops: a presynaptic spike, or a synaptic event
STARTS = ("aligned", "zero")  # the step each population takes input from: docs/semantics.md, "Start"


def size(shape: tuple[int, ...]) -> int:
    n = math.prod(shape)  # not np.prod: read per population and step, where its call costs 50x more
    if not isinstance(n, (int, np.integer)):
        raise NeurocompileError(f"shape {list(shape)} is not made of integers")
    return int(n)


class Population:
    """What every population has: a name, a tensor shape, and so a number of neurons.
    `on_host` populations run off the neurocores (input encoding, host ops); `graded` ones emit
    integer payloads instead of binary spikes, bounded in magnitude by `payload_bound`.
    Populations with a `start` field (IF, host ops, products, relays) take no input and emit
    nothing before that step (docs/semantics.md, "Start")."""

    name: str
    shape: tuple[int, ...]
    on_host: ClassVar[bool] = False
    graded: ClassVar[bool] = False
    payload_bound: int | None = None

    @property
    def size(self) -> int:
        return size(self.shape)

    def max_payload(self) -> int:
        return self.payload_bound if self.graded else 1


@dataclass(eq=False)
class InputPopulation(Population):
    """The network input. `current`: the same graded value every step (direct current
    encoding, the MST convention); `rate`: Bernoulli spikes with probability clip(x, 0, 1)."""

    kind: ClassVar[str] = "input"
    on_host: ClassVar[bool] = True
    name: str
    shape: tuple[int, ...]
    encoding: str = "current"
    payload_frac_bits: int | None = None  # set by quantize: payload = round(x * 2^frac)
    payload_bound: int | None = None
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
    then v -= threshold. In ANN mode the population applies `activation` instead (QCFS with
    `levels` steps, clip at the threshold, or ReLU)."""

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
    start: int = 0  # the first step it takes input (passes/schedule.py)
    origin: str = ""

    def value_per_unit(self) -> float:
        return float(self.threshold)


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

    graded: ClassVar[bool] = True


@dataclass(eq=False)
class Relay(Population):
    """Graded pass-through neurons on the cores: each step a neuron emits its input current
    (plus bias) as a graded payload, shifted right by `out_shift` (floor), and keeps nothing.
    Lowering inserts them where composing a linear chain into one block would give its target
    neurons more fan-in axons than a core has (a sum of many residual terms seen through a
    dense layer), and, with `build --relay-sums N`, at every sum of N or more populations (the
    residual stream, relayed once per block): the sum is formed once, by the relay, and the
    layer reads the relay. One unit of payload is worth 2^out_shift / scale."""

    kind: ClassVar[str] = "relay"
    name: str
    shape: tuple[int, ...]
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # Quantized (filled by the quantize pass)
    scale: float | None = None  # input units per activation unit
    bias_mant: np.ndarray | None = None
    bias_exp: int | None = None
    out_shift: int | None = None
    payload_bound: int | None = None
    start: int = 0  # the first step it takes input (passes/schedule.py)
    origin: str = ""

    graded: ClassVar[bool] = True

    def value_per_unit(self) -> float:
        return 2.0**self.out_shift / self.scale


@dataclass(eq=False)
class Coincidence(Relay):
    """Coincidence neurons: a spike product of two spike tensors put on the cores
    (passes/products.py). Neuron (..., m, n, k) reads one spike of each operand, A[..., m, k]
    and B[..., k, n], through two unit-weight blocks, and as a relay with `out_shift` 1 emits
    `(a + b) >> 1`: 1 when both spiked in the same step. A relay population behind it sums the
    K coincidences of each (..., m, n) and shifts them as the product did. In ANN mode a
    coincidence neuron's value is the product of its two inputs' values (interpret.py), so the
    pair computes A @ B as the product node did."""

    kind: ClassVar[str] = "coincidence"


@dataclass(eq=False)
class SynapseBlock:
    """Weighted connections from one population to another, delivered one step late.

    current[target] = gather(kernel(gather(spikes[source] * value, in_index)), out_index)
    `in_index` ([*view_shape], flat source indices) and `out_index` ([*target_shape], flat kernel
    output indices) are index maps left by layout ops; -1 reads zero; None means identity."""

    kind: ClassVar[str] = "synapse"
    name: str
    view_shape: tuple[int, ...]
    kernel: Kernel | None = None
    in_index: np.ndarray | None = None
    out_index: np.ndarray | None = None
    # Random spike masking as synaptic failure (docs/semantics.md, "Synaptic failure").
    failure: float = 0.0  # probability that a spike (mode "spike") or a synaptic event ("synapse") fails
    failure_group: str = ""  # the mask; per-spike draws come from its stream, shared by its consumers
    failure_mode: str = "spike"
    # Quantized (filled by the quantize pass)
    w_mant: np.ndarray | None = None
    w_shift: int | None = None
    acc_bound: int | None = None  # max |sum of w_mant * payload| at one output: exactness bound
    origin: str = ""


@dataclass(eq=False)
class HostOp(Population):
    """A function with no neuron form (softmax, layer norm over the last axis), run on the host
    each step. Its input is the sum of its synapse blocks' currents plus bias, as a neuron's; its
    output a graded payload in units of 2^-out_frac, computed by semantics/hostops.py."""

    kind: ClassVar[str] = "host"
    on_host: ClassVar[bool] = True
    name: str
    shape: tuple[int, ...]
    op: str = "softmax"  # softmax | layernorm
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0))
    epsilon: float = 1e-5
    gamma: np.ndarray = field(default_factory=lambda: np.zeros(0))  # layer norm scale, [last axis]
    beta: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # Quantized (filled by the quantize pass)
    scale: float | None = None  # input units per activation unit, as a neuron's membrane scale
    bias_mant: np.ndarray | None = None
    bias_exp: int | None = None
    out_frac: int | None = None
    exp_k: int | None = None  # softmax: log2(e) / scale in Q28
    eps_int: int | None = None  # layer norm: epsilon in input units squared
    gamma_q: np.ndarray | None = None  # layer norm: gamma and beta in units of 2^-gb_frac
    beta_q: np.ndarray | None = None
    gb_frac: int | None = None
    payload_bound: int | None = None
    start: int = 0  # the first step it takes input (passes/schedule.py)
    origin: str = ""

    graded: ClassVar[bool] = True

    def value_per_unit(self) -> float:
        return 2.0 ** -self.out_frac


@dataclass(eq=False)
class Product(Population):
    """The matrix product of two operands' outputs of the same step: out = A @ B over the last
    two axes of the views a_shape [..., M, K] and b_shape [..., K, N] (index maps a_index,
    b_index into the operands; None: the operand as it is). Emits the exact integer product as a
    graded payload, shifted right by out_shift; one unit is worth (value of an A unit) x (value of
    a B unit) x 2^out_shift. `form` is one of PRODUCT_FORMS."""

    kind: ClassVar[str] = "product"
    on_host: ClassVar[bool] = True
    name: str
    shape: tuple[int, ...]
    a_shape: tuple[int, ...] = ()
    b_shape: tuple[int, ...] = ()
    a_index: np.ndarray | None = None
    b_index: np.ndarray | None = None
    unit_value: float | None = None  # set by quantize: value_per_unit(A) * value_per_unit(B)
    out_shift: int = 0  # the payload is the product >> out_shift (floor), set by quantize
    payload_bound: int | None = None
    form: str = "coincidence"
    # Masked operands: each spike of operand a (b) fails with this probability, drawn from the
    # stream of its mask (FAILURE_MODES' "spike" semantics).
    failure_a: float = 0.0
    failure_group_a: str = ""
    failure_b: float = 0.0
    failure_group_b: str = ""
    start: int = 0  # the first step it reads its operands (passes/schedule.py)
    origin: str = ""

    graded: ClassVar[bool] = True

    def value_per_unit(self) -> float:
        return self.unit_value * 2.0**self.out_shift


NODE_TYPES = {cls.kind: cls for cls in (InputPopulation, IFPopulation, Readout, HostOp, Product, Relay, Coincidence, SynapseBlock)}
