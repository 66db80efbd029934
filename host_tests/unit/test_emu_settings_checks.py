"""Every numeric `ctl set` key, scenario value and control request field refuses NaN, the infinities and numbers out
of range by name (`speed=inf` was accepted and wedged the board); a `ctl set` with one bad value changes nothing;
requests of the wrong shape are refused without ending the emulator's loop."""

from __future__ import annotations

import pytest

from emulator import grid
from emulator.errors import ControlError
from emulator.meter import Meter
from emulator.statedir import StateDir

NON_FINITE = ["nan", "inf", "-inf", "1e309", "NaN", "-Infinity", float("nan"), float("inf"), 10**400]
# each numeric key with a template putting the number where the key takes one
NUMERIC = {
    "speed": "{}", "rtc.drift_ppm": "{}", "rtc.lost": "{}", "power.restore_delay": "{}", "wire.error_rate": "{}",
    "wire.drop_rate": "{}", "adc.26": "{}", "grid.voltage": "{}", "grid.frequency": "{}", "grid.drift_hz": "{}",
    "grid.drift_period_s": "{}", "grid.harmonics": "3:{}", "grid.harmonics ": "3:0.05:{}", "grid.sag": "{}:2",
    "grid.sag ": "0.7:{}", "load.current": "{}", "load.pf": "{}", "load.steps": "{}:60", "load.steps ": "5:{}",
    "bl0942.error_rate": "{}",
    "link.down_kbps": "{}", "link.up_kbps": "{}", "link.loss": "{}", "link.dup": "{}", "link.reorder": "{}",
    "link.idle_s": "{}", "link.nat": "{}", "link.rtt_s": "{}:1", "link.rtt_s ": "0.5:{}", "link.reconnect_s": "{}:15",
    "link.reconnect_s ": "2:{}",
}
OUT_OF_RANGE = {"speed": ["0", "-1", "2e6"], "rtc.drift_ppm": ["20000"], "power.restore_delay": ["-1", "1e6"],
                "wire.error_rate": ["1.5"], "adc.26": ["11"], "grid.voltage": ["601", "-1"],
                "grid.frequency": ["39"], "load.current": ["1001"], "load.pf": ["-0.1"],
                "bl0942.error_rate": ["2"], "link.loss": ["1.5", "-0.1"], "link.down_kbps": ["100001"],
                "link.idle_s": ["-1", "90000"], "link.nat": ["0", "86401"], "link.rtt_s": ["0:121", "-1:1"],
                "link.reconnect_s": ["2:200"]}


@pytest.fixture
def meter(tmp_path):
    """A Meter that is not running (no VM): its settings' checks need none."""
    return Meter("esp32_devkitc", StateDir(tmp_path / "m"))


@pytest.mark.parametrize("raw", NON_FINITE, ids=lambda v: "10**400" if v == 10**400 else repr(v))
@pytest.mark.parametrize("key", list(NUMERIC))
def test_every_numeric_setting_refuses_non_finite_numbers_by_name(meter, key, raw):
    value = raw if not isinstance(raw, str) or NUMERIC[key] == "{}" else NUMERIC[key].format(raw)
    with pytest.raises(ControlError) as e:
        meter._check_one(key.strip(), value)
    msg = str(e.value)
    assert msg.startswith(key.strip() + ": "), msg
    assert len(msg) < 200, msg  # a 400-digit number is cut short


@pytest.mark.parametrize(("key", "raw"), [(k, v) for k, vs in OUT_OF_RANGE.items() for v in vs])
def test_numbers_out_of_range_are_refused_with_the_range(meter, key, raw):
    with pytest.raises(ControlError, match=rf"^{key}: .*(outside|expected)"):
        meter._check_one(key, raw)


@pytest.mark.parametrize(("key", "raw", "what"), [
    ("link.profile", "nb3-great", "expected one of nb1-edge, nb1-good, nb2-good, none"),
    ("link.rtt_s", "1.5:0.5", "LO must not be above HI"),
    ("link.rtt_s", "1", "expected LO:HI seconds"),
    ("link.reconnect_s", "2:3:4", "expected LO:HI seconds"),
    ("link.nat", "sometimes", "got 'sometimes'; or 'on' \\(30 s\\) or 'off'"),
    ("link.jitter", "1", "unknown key"),
])
def test_link_settings_refuse_bad_values_by_name(meter, key, raw, what):
    with pytest.raises(ControlError, match=rf"^{key}: .*{what}|unknown key '{key}'"):
        meter._check_one(key, raw)


def test_link_settings_good_values(meter):
    assert meter._check_one("link.profile", "nb1-edge") == "nb1-edge"
    assert meter._check_one("link.rtt_s", "0.5:1.5") == [0.5, 1.5]
    assert meter._check_one("link.nat", "on") == 30 and meter._check_one("link.nat", "off") is None
    assert meter._check_one("link.loss", "0.2") == 0.2 and meter._check_one("link.idle_s", "20") == 20


def test_ctl_modem_refuses_an_unknown_action(meter):
    replies = _Replies()
    meter._on_control({"verb": "modem", "action": "explode"}, replies)
    assert replies == [{"ok": False, "error": "modem action: expected one of remove, insert, wedge, deny, allow, "
                                              "got 'explode'"}]


def test_good_values_pass():
    assert grid.finite("k", "2.5", 0, 5) == 2.5
    from emulator.world import parse_speed

    assert parse_speed("max") == "max" and parse_speed("100") == 100.0 and parse_speed(0.5) == 0.5


@pytest.mark.parametrize("raw", ["inf", "nan", "1e309"])
def test_speed_inf_names_speed_and_what_it_allows(raw):
    from emulator.world import parse_speed

    with pytest.raises(ControlError, match=r"^speed: .* is not a finite number; expected 0.001..1000000, or 'max'$"):
        parse_speed(raw)


class _Replies(list):
    def __call__(self, rep: dict) -> None:
        self.append(rep)


def test_a_set_with_one_bad_value_changes_nothing(meter, tmp_path):
    meter.state.path.mkdir(parents=True)
    meter.meta = {"grid": grid.defaults(meter.board), "rtc": {"drift_ppm": 0.0, "valid": True}}
    before = dict(meter.meta["grid"])
    replies = _Replies()
    meter._on_control({"verb": "set", "values": {"grid.voltage": "240", "speed": "inf"}}, replies)
    assert replies == [{"ok": False, "error": "speed: 'inf' is not a finite number; expected 0.001..1000000, or 'max'"}]
    assert meter.meta["grid"] == before and meter.speed == 1.0


@pytest.mark.parametrize("req", [
    {"verb": "set", "values": [1, 2]},
    {"verb": "set", "values": {"speed": None}},
    {"verb": "time", "advance": "inf"},
    {"verb": "time", "advance": 1e300},
    {"verb": "time", "advance": [1]},
    {"verb": "power-cut", "off": "soon"},
    {"verb": "power-cut", "off": float("nan")},
    {"verb": "power-cut", "at_write": "3"},
    {"verb": "power-cut", "at_write": 3, "torn": -1},
    {"verb": "run", "for": "nan"},
    {"verb": "run", "for": float("inf")},
    {"verb": "run", "until": 10**30},
    {"verb": "run", "until": "2026"},
    {"verb": "run", "for": 5, "speed": "inf"},
    {"verb": "press", "for": "abc"},
    {"verb": "press", "for": float("nan")},
    {"verb": "reset", "ctrl_c_after_ms": float("nan")},
    {"verb": "scenario", "scenario": {"steps": [{"at": 0, "set": {"load.current": 1}}], "period": float("inf")}},
    {"verb": 5},
    {"verb": None},
], ids=repr)
def test_a_request_of_the_wrong_shape_is_refused_and_the_loop_goes_on(meter, req):
    """What the control channel may receive from another client: a refusal, never an exception in the loop."""
    meter.state.path.mkdir(parents=True)
    meter.meta = {"grid": grid.defaults(meter.board), "rtc": {"drift_ppm": 0.0, "valid": True}, "world_ns": 0,
                  "scenario": None}
    replies = _Replies()
    meter._on_control(req, replies)
    assert len(replies) == 1 and replies[0]["ok"] is False and replies[0]["error"], replies
