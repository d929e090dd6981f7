"""Hardware targets, described as data in chip files (TOML) and validated on load.

The chip files ship inside the package (`neurocompile/chips/`, which the source tree's top-level
`targets/` points to), read through importlib.resources so that an installed wheel finds them.
`--target loihi2-sim` names the chip file loihi2.toml and the mode `sim` (Lava on the CPU,
Loihi2SimCfg); `--target loihi2` is the same chip run through Loihi2HwCfg. A path to a .toml file
is accepted too and runs in `sim` mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import tomli

from .errors import NeurocompileError
from .numerics import Numerics

CHIPS = resources.files("neurocompile") / "chips"

# (type, minimum, maximum) for every key a target must define. Kept as data so that the
# validator, the docs and the loader never drift apart.
SCHEMA: dict[str, dict[str, tuple[type, float, float]]] = {
    "numerics": {
        "weight_mantissa_bits": (int, 2, 16),
        "weight_shift_min": (int, -32, 32),
        "weight_shift_max": (int, -32, 32),
        "membrane_bits": (int, 8, 32),
        "threshold_units": (int, 2, 2**31 - 1),
        "threshold_mantissa_bits": (int, 1, 32),
        "threshold_shift": (int, 0, 16),
        "bias_mantissa_bits": (int, 2, 32),
        "bias_exp_max": (int, 0, 31),
        "input_payload_bits": (int, 2, 24),
        "current_bits": (int, 8, 32),
        "graded_payload_bits": (int, 2, 32),
    },
    "core": {
        "neurons": (int, 1, 2**24),
        "synapse_memory_bits": (int, 64, 2**40),
        "fan_in_axons": (int, 1, 2**24),
        "fan_out_axons": (int, 1, 2**24),
        "synapse_index_bits": (int, 1, 32),
        "synapse_header_bits": (int, 0, 1024),
        "synapses_per_axon_block": (int, 1, 2**16),
        "synapse_word_bits": (int, 1, 1024),
    },
    "chip": {"cores": (int, 1, 2**16), "embedded_cpus": (int, 0, 1024), "embedded_cpu_ops_per_s": (float, 0.0, 1e15),
             "embedded_cpu_latency_s": (float, 0.0, 1.0)},
    "system": {"chips": (int, 1, 2**20)},
    "energy": {
        "synaptic_op_j": (float, 0.0, 1e-6),
        "neuron_update_j": (float, 0.0, 1e-6),
        "spike_intra_chip_j": (float, 0.0, 1e-6),
        "spike_inter_chip_j": (float, 0.0, 1e-6),
        "static_power_per_core_w": (float, 0.0, 10.0),
        "step_time_s": (float, 1e-9, 10.0),
    },
}

# Keys a chip file may leave out: Numerics gives their defaults; without processor figures, host
# ops run on the system's host (partition/processors.py).
OPTIONAL = {("numerics", "graded_payload_bits"), ("chip", "embedded_cpu_ops_per_s"), ("chip", "embedded_cpu_latency_s")}

# Keys whose value is one of a few words, each optional: (section, key) -> the words, the first the default.
CHOICES = {("system", "host_ops"): ("chip", "host")}

RUN_MODES = ("sim", "hw")


@dataclass(frozen=True)
class Target:
    """A validated chip description plus the mode it runs in."""

    name: str  # as given on the command line, e.g. "loihi2-sim"
    chip: str  # the chip's own name, e.g. "loihi2"
    mode: str  # "sim" (Loihi2SimCfg) or "hw" (Loihi2HwCfg)
    spec: dict[str, Any]  # the validated TOML content

    @property
    def numerics(self) -> Numerics:
        return Numerics.from_table(self.spec["numerics"])

    @property
    def core(self) -> dict[str, int]:
        return self.spec["core"]

    @property
    def energy(self) -> dict[str, float]:
        return self.spec["energy"]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "chip": self.chip, "mode": self.mode, "spec": self.spec}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Target":
        spec = validate_spec(data["spec"], where="artifact target")
        return cls(name=data["name"], chip=data["chip"], mode=data["mode"], spec=spec)


def _chip_file(chip: str):
    return CHIPS / f"{chip}.toml"


def chips() -> list[str]:
    """The chip files shipped with the package."""
    return sorted(p.name[: -len(".toml")] for p in CHIPS.iterdir() if p.name.endswith(".toml"))


def available_targets() -> list[str]:
    return [n for c in chips() for n in (c, f"{c}-sim")]


def load_target(name_or_path: str) -> Target:
    """Resolves `loihi2`, `loihi2-sim` or a path to a .toml file into a validated Target."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise NeurocompileError(f"target file {name_or_path} does not exist")
        spec = _read_toml(path)
        return Target(name=str(path), chip=spec["name"], mode="sim", spec=spec)
    chip, mode = (name_or_path[: -len("-sim")], "sim") if name_or_path.endswith("-sim") else (name_or_path, "hw")
    file = _chip_file(chip)
    if not file.is_file():
        raise NeurocompileError(
            f"unknown target '{name_or_path}'; available: {', '.join(available_targets())} or a path to a .toml file"
        )
    spec = _read_toml(file)
    return Target(name=name_or_path, chip=spec["name"], mode=mode, spec=spec)


def _read_toml(path) -> dict[str, Any]:
    return validate_spec(_read_raw(path, ()), where=str(path))


EXTENDS_DEPTH_MAX = 32  # a system of a chip of a family: a few levels; far more is a mistake


def _read_raw(path, seen: tuple[str, ...]) -> dict[str, Any]:
    """The file's tables; `extends = "CHIP"` (a shipped chip file, or a path relative to this
    file) starts from that file's tables and overrides them key by key, so that a system
    built of a known chip states only what differs. `path` is a Path or a package resource."""
    try:
        with path.open("rb") as f:
            raw = tomli.load(f)
    except tomli.TOMLDecodeError as e:
        raise NeurocompileError(f"target file {path} is not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise NeurocompileError(f"target file {path} is not UTF-8 text (byte {e.start}); TOML files are UTF-8") from None
    except OSError as e:
        raise NeurocompileError(f"target file {path} cannot be read: {e.strerror or e}") from None
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw
    if len(seen) >= EXTENDS_DEPTH_MAX:
        raise NeurocompileError(f"{path}: its extends chain is more than {EXTENDS_DEPTH_MAX} files deep")
    if str(base_name).endswith(".toml"):
        if not isinstance(path, Path):
            raise NeurocompileError(f"{path}: a shipped chip file extends only other chips, not '{base_name}'")
        base = path.parent / base_name
    else:
        base = _chip_file(base_name)
    if not base.is_file():
        raise NeurocompileError(f"{path}: extends '{base_name}', which is neither a chip ({', '.join(chips())}) nor a file")
    key = str(base.resolve()) if isinstance(base, Path) else f"chip:{base_name}"
    if key in seen:
        raise NeurocompileError(f"{path}: extends '{base_name}' in a cycle")
    here = str(path.resolve()) if isinstance(path, Path) else f"chip:{path.name[: -len('.toml')]}"
    merged = _read_raw(base, seen + (here,))
    for key, value in raw.items():
        merged[key] = {**merged[key], **value} if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def validate_spec(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """Checks every key of SCHEMA: present, of the right type, within its range."""
    if not isinstance(raw.get("name"), str) or not raw["name"]:
        raise NeurocompileError(f"{where}: 'name' must be a non-empty string")
    for section, keys in SCHEMA.items():
        table = raw.get(section)
        if not isinstance(table, dict):
            raise NeurocompileError(f"{where}: missing table [{section}]")
        for key, (kind, lo, hi) in keys.items():
            if key not in table:
                if (section, key) in OPTIONAL:
                    continue
                raise NeurocompileError(f"{where}: missing {section}.{key}")
            value = table[key]
            ok_type = isinstance(value, int) and not isinstance(value, bool) if kind is int else (
                isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            )
            if not ok_type:
                raise NeurocompileError(f"{where}: {section}.{key} must be {kind.__name__}, got {value!r}")
            if not lo <= value <= hi:
                raise NeurocompileError(f"{where}: {section}.{key} = {value} is outside the sane range [{lo}, {hi}]")
    for (section, key), words in CHOICES.items():
        value = raw[section].get(key, words[0])
        if value not in words:
            raise NeurocompileError(f"{where}: {section}.{key} = {value!r} is not one of {', '.join(repr(w) for w in words)}")
    num = raw["numerics"]
    if num["weight_shift_min"] > num["weight_shift_max"]:
        raise NeurocompileError(f"{where}: numerics.weight_shift_min exceeds numerics.weight_shift_max")
    theta_max = (2 ** num["threshold_mantissa_bits"] - 1) << num["threshold_shift"]
    if num["threshold_units"] >= 2 ** (num["membrane_bits"] - 1) or num["threshold_units"] > theta_max:
        raise NeurocompileError(
            f"{where}: numerics.threshold_units = {num['threshold_units']} does not fit the membrane "
            f"({num['membrane_bits']} bits) and threshold ({num['threshold_mantissa_bits']}-bit mantissa) widths"
        )
    if num["threshold_units"] % (1 << num["threshold_shift"]):
        raise NeurocompileError(f"{where}: numerics.threshold_units must be a multiple of 2^threshold_shift")
    return raw
