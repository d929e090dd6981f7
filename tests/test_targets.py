"""Targets are data: loaded by name or path, validated with messages naming the key."""

import pytest

from neurocompile.errors import NeurocompileError
from neurocompile.targets import CHIPS, load_target


def test_names_select_chip_and_run_mode():
    sim, hw = load_target("loihi2-sim"), load_target("loihi2")
    assert (sim.chip, sim.mode) == ("loihi2", "sim") and (hw.chip, hw.mode) == ("loihi2", "hw")
    assert load_target("loihi1-sim").core["neurons"] == 1024
    assert sim.numerics.membrane_max == 2**23 - 1


def test_unverified_values_are_marked_as_assumptions():
    spec = load_target("loihi2").spec
    for key in spec["assumptions"]:
        section, name = key.split(".")
        assert name in spec[section], key


def test_path_is_accepted(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text((CHIPS / "loihi2.toml").read_text())
    assert load_target(str(path)).chip == "loihi2"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.replace("neurons = 8192", ""), "missing core.neurons"),
        (lambda s: s.replace("neurons = 8192", "neurons = -5"), "core.neurons = -5"),
        (lambda s: s.replace("neurons = 8192", 'neurons = "many"'), "core.neurons must be int"),
        (lambda s: s.replace("fan_in_axons = 4096", "fan_in_axons = 99999999999"), "fan_in_axons"),
        (lambda s: s.replace("threshold_units = 32768", "threshold_units = 9000000"), "threshold_units"),
        (lambda s: s.replace("[energy]", "[energy\n"), "not valid TOML"),
        (lambda s: s.replace("[chip]", "[chips]"), "missing table [chip]"),
    ],
)
def test_bad_target_files_are_named(tmp_path, edit, message):
    path = tmp_path / "bad.toml"
    path.write_text(edit((CHIPS / "loihi2.toml").read_text()))
    with pytest.raises(NeurocompileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_target(str(path))


def test_unknown_target_lists_the_known_ones():
    with pytest.raises(NeurocompileError, match="loihi2-sim"):
        load_target("truenorth")


def test_a_system_extends_its_chip_and_states_only_what_differs():
    chip, system = load_target("loihi2").spec, load_target("loihi2-halapoint").spec
    assert system["system"]["chips"] == 1152 and chip["system"]["chips"] == 8
    for section in ("numerics", "core", "chip", "energy"):
        assert system[section] == chip[section], section
    assert system["assumptions"] == chip["assumptions"] and system["name"] == "loihi2-halapoint"


@pytest.mark.parametrize("extends, message", [("nochip", "neither a chip"), ("self.toml", "cycle")])
def test_a_bad_extends_is_refused_with_its_name(tmp_path, extends, message):
    path = tmp_path / "self.toml"
    path.write_text(f'extends = "{extends}"\nname = "x"\n')
    with pytest.raises(NeurocompileError, match=message):
        load_target(str(path))


def test_unreadable_target_files_and_endless_chains_are_one_line_errors(tmp_path):
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(NeurocompileError, match="not UTF-8"):
        load_target(str(latin))
    for k in range(1500):  # each file extends the next; the last extends a real chip
        (tmp_path / f"c{k}.toml").write_text(f'extends = "c{k + 1}.toml"\n')
    (tmp_path / "c1500.toml").write_text('extends = "loihi2"\n')
    with pytest.raises(NeurocompileError, match="more than 32 files deep"):
        load_target(str(tmp_path / "c0.toml"))
