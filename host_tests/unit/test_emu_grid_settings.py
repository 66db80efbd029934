"""The host side of the emulator's grid and load model: `ctl set` keys and scenario files (emulator/grid.py)."""

from __future__ import annotations

import json

import pytest

from emulator import grid
from emulator.errors import ControlError
from meterkit.boards import load_board


def test_defaults_follow_the_board():
    d = grid.defaults(load_board("rpi_pico_bl0942"))
    assert d["grid.voltage"] == 230.0 and d["grid.frequency"] == 50.0 and d["load.current"] == 0.0
    assert set(grid.SETTABLE) <= set(d)


@pytest.mark.parametrize("key,raw,value", [
    ("grid.voltage", "253", 253.0),
    ("grid.harmonics", "3:0.05,5:0.03:30", [[3, 0.05, 0.0], [5, 0.03, 30.0]]),
    ("grid.harmonics", "none", []),
    ("grid.harmonics", [[5, 0.02], [3, 0.1, 10]], [[3, 0.1, 10.0], [5, 0.02, 0.0]]),
    ("grid.sag", "0.7:2", [0.7, 2.0]),
    ("grid.sag", "1.15:5", [1.15, 5.0]),
    ("grid.sag", [0.5, 1], [0.5, 1.0]),
    ("grid.sag", "none", None),
    ("load.type", "inductive", "inductive"),
    ("load.export", "1", 1),
    ("load.export", False, 0),
    ("load.steps", "5:60,0.5:60", [[5.0, 60.0], [0.5, 60.0]]),
    ("load.pf", 0.5, 0.5),
    ("bl0942.error_rate", "0.001", 0.001),
])
def test_values_parse_to_their_canonical_form(key, raw, value):
    assert grid.parse(key, raw) == value


@pytest.mark.parametrize("key,raw,words", [
    ("grid.voltage", "abc", ["grid.voltage", "number"]),
    ("grid.voltage", 900, ["grid.voltage", "outside"]),
    ("grid.frequency", 10, ["grid.frequency", "outside"]),
    ("grid.harmonics", "1:0.1", ["grid.harmonics", "2..50"]),
    ("grid.harmonics", "3:0.9", ["grid.harmonics", "outside"]),
    ("grid.harmonics", "3", ["grid.harmonics", "ORDER:FRACTION"]),
    ("grid.sag", "0.7", ["grid.sag", "FACTOR:SECONDS"]),
    ("load.type", "motor", ["load.type", "resistive", "rectifier"]),
    ("load.pf", 1.5, ["load.pf", "outside"]),
    ("load.export", "maybe", ["load.export", "0 (import) or 1 (export)"]),
    ("load.steps", "5", ["load.steps", "AMPS:SECONDS"]),
    ("load.steps", "5:0", ["load.steps", "outside"]),
    ("bl0942.error_rate", 2, ["bl0942.error_rate", "outside"]),
])
def test_bad_values_name_the_key_and_what_is_allowed(key, raw, words):
    with pytest.raises(ControlError) as e:
        grid.parse(key, raw)
    for w in words:
        assert w in str(e.value)


def test_scenario_files_parse_and_bad_ones_name_the_problem(tmp_path):
    good = {"steps": [{"at": 0, "set": {"load.current": 5, "load.type": "inductive", "load.pf": 0.8}},
                      {"at": 1.5, "set": {"grid.sag": "0.7:2", "load.export": 1}}], "repeat": False}
    sc = grid.parse_scenario(good)
    assert sc["steps"][1] == [1500000, {"grid.sag": [0.7, 2.0], "load.export": 1}] and sc["period_us"] is None
    bad = [
        ({"steps": []}, "steps"),
        ({"steps": [{"at": -1, "set": {"load.current": 1}}]}, "steps[0].at"),
        ({"steps": [{"at": 0, "set": {"load.amps": 1}}]}, "steps[0].set.load.amps: unknown key"),
        ({"steps": [{"at": 0, "set": {"load.current": "lots"}}]}, "load.current: expected a number"),
        ({"steps": [{"at": 2, "set": {"load.current": 1}}, {"at": 1, "set": {"load.current": 2}}]}, "decrease"),
        ({"steps": [{"at": 0, "set": {"load.current": 1}}], "repeat": True}, "period: required"),
        ({"steps": [{"at": 5, "set": {"load.current": 1}}], "period": 4}, "period"),
        ({"steps": [{"at": 0, "set": {"load.current": 1}}], "loop": True}, "loop: unknown key"),
        ([1, 2], "top level"),
    ]
    for data, words in bad:
        with pytest.raises(ControlError) as e:
            grid.parse_scenario(data, "day.json")
        assert str(e.value).startswith("day.json: ") and words in str(e.value), (data, str(e.value))
    f = tmp_path / "broken.json"
    f.write_text("{ nope")
    with pytest.raises(ControlError, match="invalid JSON at line 1"):
        grid.load_scenario(f)
    f.write_text(json.dumps(good))
    assert grid.load_scenario(f) == sc


def test_meter_settable_keys_include_the_grid_and_load():
    from emulator.meter import Meter

    for key in ("grid.voltage", "grid.harmonics", "grid.sag", "load.type", "load.steps", "bl0942.error_rate",
                "adc.<gpio>", "speed"):
        assert key in Meter.SETTABLE
