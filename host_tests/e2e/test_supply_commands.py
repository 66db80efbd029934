"""The supply's head-end commands beyond the prepaid scenario (host_tests/e2e/test_supply.py), on the BL0942 Pico:
a signed calendar change that the TOU registers and the tariff's TOU rates follow from the next reading, a calendar
refused by name, the terminal cover taken off (tamper event 251), and a credit reset that no earlier token can
undo."""

from __future__ import annotations

import json
import time

from host_tests import supply_scenario as S


def _file(emu, name: str, obj: dict):
    p = emu.state.parent / name
    p.write_text(json.dumps(obj))
    return p


def test_calendar_change_cover_tamper_and_credit_reset(start_emulator):
    emu = start_emulator("rpi_pico_bl0942", speed="1")
    emu.wait_boots(1)
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    s = S.start_day(emu, day, dict(S.SETTINGS, tariff={"flat": 1000, "tou": {"2": 3000}}))  # 17:00 local
    assert s.ota("meter", "calendar", "--json") == {"tz_offset_min": 330, "tou": [["00:00", 1]], "tou_weekend": None,
                                                    "billing_day": 1}
    assert s.status()["credit"]["rate"] == 1000

    out = s.signed("meter", "calendar", "--set", _file(emu, "bad.json", {"tou": [["06:00", 1], ["16:00", 2]]}),
                   expect=14)
    assert "settings refused: calendar: bad value for tou" in out, out
    assert s.ota("meter", "calendar", "--json")["tou"] == [["00:00", 1]], "a refused calendar changes nothing"

    evening = {"tou": [["00:00", 1], ["16:00", 2], ["23:00", 1]], "billing_day": 15}
    assert s.signed("meter", "calendar", "--set", _file(emu, "cal.json", evening), "--json") == dict(
        evening, tz_offset_min=330, tou_weekend=None)
    s.run_until(S.utc(day, "17:01"))  # a few readings later
    read = s.ota("meter", "read", "--json")
    assert read["zone"] == 2, read
    assert s.status()["credit"]["rate"] == 3000
    # the billing reset on demand (an MD reset): a billing row stamped now, the demand restarted, event 425
    billed = s.signed("meter", "bill", "--json")
    assert billed["billed"] and billed["pf"] is not None, billed
    rows = s.ota("meter", "profile", "--billing", "--json")["rows"]
    assert [r["rtc"] for r in rows] == [billed["billed"]] and rows[0]["max_demand_w"] == billed["md_w"], rows
    assert [e["code"] for e in s.events()].count(425) == 1
    # the calendar's own event; the credit (0 at the start, 2 kW drawn outside the window) may be cut in the same
    # second, so its 301/402 can come after it: the test looks for the settings events, not the last event
    assert [(e["code"], e["detail"]) for e in s.events() if e["code"] in (410, 411)][-2:] == [
        (411, "calendar: bad value for tou"), (410, "calendar")]

    # the terminal cover taken off for 10 minutes of device time (a tamper event), however fast the run goes and
    # however busy the host: still off after a fast run to 17:05, back on by 17:12
    emu.ctl("press", "cover", "--for", "600")
    s.run_until(S.utc(day, "17:05"))
    assert 0 < next(iter(emu.status()["held_s"].values())) < 600
    assert s.status()["cover"] == {"open": True, "openings": 1}
    s.run_until(S.utc(day, "17:12"))
    assert emu.status()["held_s"] == {}
    st = s.status()
    assert st["cover"] == {"open": False, "openings": 1}, st
    ring = s.events()
    assert [(e["code"], e["detail"]) for e in ring if e["code"] == 251] == [(251, "cover opened")]
    # the opening is also in IS 15959's non-rollover log (firmware/app/event_logs.py), which no later event pushes out
    tamper = s.ota("meter", "events", "--log", "non-rollover", "--json")
    assert {k: tamper[k] for k in ("log", "total", "depth")} == {"log": "non-rollover", "total": 1, "depth": 10}
    assert [{k: e[k] for k in ("seq", "code", "event", "rtc")} for e in tamper["events"]] == [
        {k: e[k] for k in ("seq", "code", "event", "rtc")} for e in ring if e["code"] == 251], tamper
    (opened,) = tamper["events"]  # with the supply at the opening's reading (IS 15959's snapshot columns)
    assert 100 < opened["voltage"] < 300 and opened["current"] >= 0 and -1 <= opened["pf"] <= 1, opened
    assert opened["import_wh"] >= 0, opened

    # a credit reset repairs a damaged record: on this healthy one it needs --force (refused before it is spent)
    out = s.signed("meter", "credit-reset", "--balance", 5000, "--top-tid", 10, expect=14)
    assert "the credit record is not damaged" in out, out
    r = s.signed("meter", "credit-reset", "--balance", 5000, "--top-tid", 10, "--force", "--json")
    assert r == {"balance": 5000, "top_tid": 10}
    out = s.signed("meter", "topup", "--amount", 100, "--tid", 10, expect=14)  # issued before the reset
    assert "token refused" in out, out
    before = s.status()["credit"]["balance"]
    s.tid = 10
    after = s.topup(100)["balance"]  # token 11
    assert before < after <= before + 100, (before, after)
    # a later reset to a lower id cannot re-open token 11: the window never moves back
    r = s.signed("meter", "credit-reset", "--balance", 1, "--top-tid", 1, "--force", "--json")
    assert r == {"balance": 1, "top_tid": 11}
    out = s.signed("meter", "topup", "--amount", 100, "--tid", 11, expect=14)
    assert "token-replayed" in out, out
    ring = s.events()
    resets = [e["detail"] for e in ring if e["code"] == 413]
    assert resets[-1].startswith("5") and resets[-1].endswith("-> 1, tokens to 11 spent, forced"), resets
    # the control log holds the relay's events, as the ring does while it still has them all (64 events); the meter
    # runs on between the reads (a balance of 1 is soon spent and the relay opens), so the log read between two
    # reads of the ring holds at least the first's relay events and at most the second's
    control = s.ota("meter", "events", "--log", "control", "--json")
    later = s.events()
    logged = [e["seq"] for e in control["events"]]
    first, last = ([e["seq"] for e in r if 301 <= e["code"] <= 350] for r in (ring, later))
    assert len(later) < 64 and logged[:len(first)] == first and last[:len(logged)] == logged, (control, ring, later)
    assert control["total"] == len(control["events"]) and control["depth"] == 50
