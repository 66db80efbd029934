"""boot_records' oracles can fail: a mode reader that takes a damaged file for development, a settings reader that
lets an exception out, one that falls back without its event, and a record reader that raises on a damaged record
are each a finding; the real firmware passes the same inputs."""

from __future__ import annotations

import json

import pytest

from meter_fuzz import oracle, targets

T = targets.load("boot_records")
probe = T.probe
from app import calibration, metering, supply_settings  # noqa: E402  (on the path once the target is loaded)
from loader import mode  # noqa: E402

IDX = {path: k for k, (path, _) in enumerate(probe.FILES)}


@pytest.fixture(autouse=True, scope="module")
def _template():
    probe.setup()


def _raw(path: str, body: bytes) -> bytes:
    return bytes((IDX[path], 0)) + body


def _run(data: bytes) -> oracle.Verdict:
    return oracle.execute(T, data, slow_ms=None)


MODE_DAMAGED = _raw("meter/mode.json", b'{"mode": "develop')
SUPPLY_BAD = _raw("meter/supply.json", b'{"control_mode": 5.0}')
CALIBRATION_BAD = _raw("meter/calibration.json", b'{"kind": "calibration", "v": 1, "data": {"frontend": "adc", '
                                                  b'"constants": {"v_gain": "400"}}}')


def test_the_real_start_up_passes_these_inputs():
    for data in (MODE_DAMAGED, SUPPLY_BAD, CALIBRATION_BAD, _raw("meter/mode.json", b'{"mode": "development"}')):
        v = _run(data)
        assert v.kind == "ok", v.summary()


def test_a_damaged_mode_file_read_as_development_is_a_violation(monkeypatch):
    monkeypatch.setattr(mode, "current", lambda: mode.DEVELOPMENT)
    v = _run(MODE_DAMAGED)
    assert v.kind == "violation" and "read as development" in v.message
    v = _run(SUPPLY_BAD)  # and any other file's damage turning a locked meter into a development one
    assert v.kind == "violation" and "locked meter" in v.message


def test_a_reader_that_lets_an_exception_out_is_a_finding(monkeypatch):
    def fragile():
        raw = json.loads(open(supply_settings.PATH).read())
        return supply_settings.parse(raw), None  # no fallback: SettingsError escapes

    monkeypatch.setattr(supply_settings, "load", fragile)
    v = _run(SUPPLY_BAD)
    assert v.kind == "exception" and v.error == "SettingsError"


def test_a_fallback_without_its_event_is_a_violation(monkeypatch):
    real = metering.Metering.note
    monkeypatch.setattr(metering.Metering, "note", lambda self, code, detail: None)
    v = _run(_raw("meter/config.json", b'{"persist_interval_s": true}'))
    monkeypatch.setattr(metering.Metering, "note", real)
    assert v.kind == "violation" and "without event" in v.message


def test_a_record_reader_that_raises_on_a_bad_constant_is_a_finding(monkeypatch):
    def trusting(board):
        base = calibration.defaults(board)
        _, rec = calibration.store.read_record(calibration.PATH, calibration.KIND, calibration.VERSION)
        for k, v in rec["constants"].items():
            base[k] = float(v) * 1.0 if k in base else base.get(k)
        return base, "calibrated"

    monkeypatch.setattr(calibration, "load", trusting)
    v = _run(_raw("meter/calibration.json", b'{"kind": "calibration", "v": 1, "data": {"frontend": "adc", '
                                            b'"constants": {"v_gain": "x"}}}'))
    assert v.kind == "exception" and v.error == "ValueError"


def test_the_template_board_is_the_real_board_file_and_the_machine_stand_in_does_not_stay():
    import sys

    from meterkit.boards import load_board
    from meterkit.layout import device_board

    real = device_board(load_board("esp32_devkitc"))
    for doc in ("name", "notes"):  # prose the probe leaves out (board.load reads neither)
        real.pop(doc, None)
    real["adc"].pop("nonlinearity", None)
    assert probe.BOARD == real
    assert _run(SUPPLY_BAD).kind == "ok" and getattr(sys.modules.get("machine"), "__name__", "") != "_Machine"


def test_the_other_slot_s_manifest_never_stops_the_start_and_its_facts_are_checked(monkeypatch):
    import cbor2

    from loader import update

    real = cbor2.loads(probe._template["slots/b/manifest.cbor"])
    # corrupt, a format that only equals 1, not a map, a number for a version, nested deep
    for body in (b"\xff\x00", cbor2.dumps(dict(real, format=True)), cbor2.dumps([real]),
                 cbor2.dumps(dict(real, version=9)), b"\x81" * 5000):
        v = _run(_raw("slots/b/manifest.cbor", body))
        assert v.kind == "ok", v.summary()
    bad = {"a": ("1.0.0", b"", True), "b": (9, b"", 1)}
    monkeypatch.setattr(update, "slots_facts", lambda active, manifest: bad)
    v = _run(_raw("slots/b/manifest.cbor", cbor2.dumps(real)))
    assert v.kind == "violation" and "slot b's facts" in v.message
