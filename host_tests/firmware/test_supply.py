"""The supply (app/supply.py) and its SMP group 66 (app/supply_group.py): the prepaid rules at each reading, the
button, the load limit, and signed commands and top-up tokens, including the attacks on tokens."""
from test_disconnect import RelayModel

import cbor
import fwtest
from app import (
    credit,
    disconnect,
    dsp,
    events,
    meter_settings,
    metering,
    registers,
    supply,
    supply_group,
    supply_settings,
    tick,
)
from loader import journal, mode, smp, store, trust

KWH = credit.MJ_PER_KWH
ENV = {}


def env(name):
    if not ENV:
        ENV.update(cbor.loads(fwtest.fixture("supply.cbor")))
    return ENV[name]


class Hal(RelayModel):
    def __init__(self):
        super().__init__()
        self.button = None
        self.cover = None  # the cover switch's interrupt handler
        self.cover_level = False  # True: the cover is off

    def on_button(self, handler):
        self.button = handler
        return True

    def cover_open(self):
        return self.cover_level

    def on_cover(self, handler):
        self.cover = handler
        return True


class Ctx:
    meter_id = "m-1"
    mode = mode.LOCKED
    started_ms = 0

    def __init__(self):
        self.hal = Hal()
        self.server = smp.Server()
        self.server.op = smp.OP_WRITE  # handlers called directly stand for a write request (reads: their own test)
        self.before_reset = []


class Persist:
    status = "ok"


class Meter:
    """What the supply takes from the metering task: its start-up state (registers, persistence status, calendar,
    start-up events) and one tick (app/tick.py) per reading."""

    def __init__(self):
        self.regs = registers.Registers()
        self.tick = tick.Tick(dsp.Reading(), self.regs)
        self.persist = Persist()
        self.on_save = []
        self.cfg = dict(meter_settings.DEFAULTS)
        self.set_calendar(self.cfg)
        self.log = None

    set_calendar = metering.Metering.set_calendar  # the metering task's own

    def attach(self, log):
        self.log = log

    def run(self, sup, seconds, watts, local, t0_ms=0, rtc=1800000000):
        """`seconds` readings at `watts`, at local time `local` ((year, month, day, weekday, minute) as app/tick.py
        has it) or None, the clock then unknown."""
        t = self.tick
        for k in range(seconds):
            t.reading.p = float(watts)
            self.regs.add(registers.IMPORT, int(watts * 1000))
            t.ms = t0_ms + k * 1000
            t.uptime_s = t.ms // 1000
            t.local = local
            t.rtc = None if local is None else rtc + k
            sup.on_reading(t)


def at(day, hour, minute=0):
    """Local time in a tick's form for 2026-12-`day` (a Tuesday when day is 1)."""
    return (2026, 12, day, day % 7, hour * 60 + minute)


def _setup(settings=True):
    fwtest.write(trust.PATH, fwtest.fixture("trust_supply.cbor"))
    ctx = Ctx()
    meter = Meter()
    rtc = []
    sup = supply.Supply(ctx, meter, set_rtc=rtc.append)
    grp = supply_group.SupplyGroup(ctx, sup)
    if settings:
        grp.settings({"settings": cbor.loads(cbor.loads(env("settings"))["body"])["args"]["settings"],
                      "envelope": env("settings")})
    return ctx, meter, sup, grp


def _run(body):
    """Run a test in a fresh meter folder; the supplies it made stop taking update events afterwards."""
    try:
        fwtest.in_workdir(body, "meter")
    finally:
        journal._sink[:] = []
        journal._pending[:] = []


def _refused(fn, req, rc):
    e = fwtest.raises(smp.SmpError, fn, req)
    assert e.group_rc == rc, (e.rc, e.group_rc)


def test_credit_runs_out_in_the_window_cut_after_it_top_up_reconnects_at_once():
    def body():
        ctx, meter, sup, grp = _setup()
        hw = ctx.hal
        assert grp.topup({"token": env("token1")})["balance"] == 10000
        meter.run(sup, 1, 0, at(1, 17))  # the first reading sets the credit's energy mark
        meter.run(sup, 600, 2900, at(1, 22))  # 2.9 kW for 10 minutes: 483 paise at 1000 paise/kWh
        meter.regs.add(registers.IMPORT, 23 * KWH // 2)  # and 11.5 kWh more: 10000 - 483 - 11500 = -1983
        meter.run(sup, 1, 0, at(1, 23))
        assert sup.store.ledger.balance == -1983 and hw.contact  # inside the 18:00-08:00 window: no cut
        assert [e[1] for e in sup.log.ring].count(events.CREDIT_ALERT) == 3
        meter.run(sup, 1, 0, at(2, 7, 59))
        assert hw.contact
        meter.run(sup, 1, 0, at(2, 8, 0))  # the window ends: cut at the first reading after it
        st = sup.status()
        assert not hw.contact and st["state"] == disconnect.READY and st["reason"] == "credit"
        assert st["credit"]["window"] is False and st["credit"]["time_left_s"] == 0
        r = grp.topup({"token": env("token2")})  # +1000 = -983: still beyond the 500 allowance
        assert not hw.contact and r["output"] is False
        r = grp.topup({"token": env("token3")})  # +600 = -383: within it, reconnected by this very command
        assert hw.contact and r["output"] is True and r["state"] == disconnect.CONNECTED
        assert sup.log.ring[-1][1] == events.LOAD_CONNECTED

    _run(body)


def test_token_attacks_are_refused_each_with_an_event_and_nothing_changes():
    def body():
        ctx, meter, sup, grp = _setup()
        assert grp.topup({"token": env("token2")})["balance"] == 1000
        cases = (("token2", "token-replayed"), ("token_foreign", "wrong-meter"), ("token_expired", "expired"),
                 ("token_wrong_role", "wrong-role"), ("token_stranger", "unknown-key"),
                 ("token_altered", "bad-signature"), ("token_wrong_cmd", "request-differs"))
        for name, why in cases:
            _refused(grp.topup, {"token": env(name)}, supply_group.RC_TOKEN_REFUSED)
            assert sup.last_refusal == why, (name, sup.last_refusal)
            assert sup.log.ring[-1][1] == events.TOKEN_REJECTED and sup.log.ring[-1][3] == why
        _refused(grp.topup, {}, supply_group.RC_TOKEN_REFUSED)
        assert sup.last_refusal == "no-envelope"
        assert sup.store.ledger.balance == 1000
        # entered out of order, both count; once tid 70 is in, tid 1 (69 below) is older than the 64-id window
        assert grp.topup({"token": env("token4")})["balance"] == 2000
        assert grp.topup({"token": env("token3")})["balance"] == 2600
        assert grp.topup({"token": env("token70")})["balance"] == 3100
        _refused(grp.topup, {"token": env("token1")}, supply_group.RC_TOKEN_REFUSED)
        assert sup.last_refusal == "token-too-old" and sup.store.ledger.balance == 3100
        # the record on flash says the same after a power cut
        again = supply.Supply(ctx, Meter(), set_rtc=lambda t: None)
        assert again.store.ledger.balance == 3100 and again.store.tokens.top == 70
        _refused(supply_group.SupplyGroup(ctx, again).topup, {"token": env("token4")}, supply_group.RC_TOKEN_REFUSED)

    _run(body)


def test_commands_need_the_command_key_and_name_their_refusals():
    def body():
        ctx, meter, sup, grp = _setup(settings=False)
        # no tariff yet: the meter keeps no credit and says so
        _refused(grp.topup, {"token": env("token1")}, supply_group.RC_NO_CREDIT)
        _refused(grp.relay, {"action": "disconnect"}, supply_group.RC_NOT_AUTHORISED)
        assert sup.last_refusal == "supply.relay: no-envelope" and ctx.hal.contact
        _refused(grp.relay, {"action": "reconnect", "envelope": env("relay_off")}, supply_group.RC_NOT_AUTHORISED)
        assert sup.last_refusal == "supply.relay: request-differs"
        _refused(grp.relay, {"action": "explode", "envelope": env("relay_off")}, supply_group.RC_BAD_REQUEST)
        r = grp.relay({"action": "disconnect", "envelope": env("relay_off")})
        assert r == {"transition": "b", "state": disconnect.DISCONNECTED, "output": False} and not ctx.hal.contact
        _refused(grp.relay, {"action": "disconnect", "envelope": env("relay_off")}, supply_group.RC_NOT_AUTHORISED)
        assert sup.last_refusal == "supply.relay: replayed"
        # mode 6: the remote reconnect makes it ready; the consumer's button closes it (e)
        assert grp.relay({"action": "reconnect", "envelope": env("relay_on")})["transition"] == "d"
        assert not ctx.hal.contact
        ctx.hal.button(None)
        meter.run(sup, 1, 0, None)
        assert ctx.hal.contact and sup.control.reason == "button" and sup.presses == 1
        # settings are checked whole: a bad one is refused by name and the old ones stay
        _refused(grp.settings, {"settings": {"tariff": {"flat": -1}}, "envelope": env("settings_bad")},
                 supply_group.RC_BAD_SETTINGS)
        assert sup.last_refusal == "bad rate for flat" and sup.prepaid is None
        assert store.read_json("meter/supply.json", None) is None
        # the clock: set by the signed command, its drift recorded
        r = grp.clock({"time": 1900000000, "envelope": env("clock")})
        assert r["clock"]["set_at"] == 1900000000 and r["clock"]["sets"] == 1 and isinstance(r["drift_s"], int)
        assert sup.log.ring[-1][1] == events.CLOCK_SET
        for _ in range(10):  # a burst: 1 + HELD_MAX events, the tenth counted on the ninth
            _refused(grp.relay, {"action": "disconnect"}, supply_group.RC_NOT_AUTHORISED)
        ev = grp.events({"since": 0, "limit": 100})  # at most EVENTS_PER_READ in one answer
        assert ev["seq"] == sup.log.seq == 19 and [e[0] for e in ev["events"]] == list(range(1, 17))
        tail = grp.events({"since": 17})["events"]
        assert [e[0] for e in tail] == [18, 19] and tail[-1][3] == "supply.relay: no-envelope +1"
        assert [e[1] for e in grp.events({"since": 0, "limit": 2})["events"]] == [events.POWER_RESTORE,
                                                                                 events.TOKEN_REJECTED]

    _run(body)


def test_button_takes_emergency_credit_and_the_load_limit_trips_restores_and_locks():
    def body():
        ctx, meter, sup, grp = _setup()
        hw = ctx.hal
        assert grp.topup({"token": env("token3")})["balance"] == 600
        meter.run(sup, 1, 0, at(2, 12))
        meter.regs.add(registers.IMPORT, 2 * KWH)  # -1400: cut (noon, outside the window)
        meter.run(sup, 1, 0, at(2, 12, 1))
        assert not hw.contact
        hw.button(None)  # the consumer takes the 3000 of emergency credit: 1600, reconnected at once
        meter.run(sup, 1, 0, at(2, 12, 2))
        assert hw.contact and sup.store.ledger.balance == 1600 and sup.store.ledger.emergency == 3000
        hw.button(None)  # only once until the next top-up; a press while connected does nothing in mode 6
        meter.run(sup, 1, 0, at(2, 12, 3))
        assert hw.contact and sup.store.ledger.balance == 1600
        # 3.5 kW over the 3 kW limit for 10 s trips (g); the lockout of 60 s ends with h
        meter.run(sup, 12, 3500, at(2, 12, 4), t0_ms=100000)
        assert not hw.contact and sup.control.reason == "load limit" and sup.log.ring[-1][1] == events.LOAD_DISCONNECTED
        meter.run(sup, 61, 0, at(2, 12, 5), t0_ms=112000)
        assert hw.contact
        # the second trip locks it off until the head-end's remote reconnect
        meter.run(sup, 12, 3500, at(2, 12, 6), t0_ms=200000)
        meter.run(sup, 200, 0, at(2, 12, 7), t0_ms=212000)
        assert not hw.contact and sup.status()["load_limit"]["locked"]
        assert grp.relay({"action": "disconnect", "envelope": env("relay_off")})["transition"] == "c"
        assert grp.relay({"action": "reconnect", "envelope": env("relay_on")})["transition"] == "d"
        hw.button(None)
        meter.run(sup, 1, 0, at(2, 12, 8), t0_ms=500000)
        assert hw.contact and not sup.status()["load_limit"]["locked"]

    _run(body)


def test_when_the_lockout_ends_with_the_credit_spent_credit_takes_the_hold_over():
    def body():
        ctx, meter, sup, grp = _setup()
        hw = ctx.hal
        assert grp.topup({"token": env("token3")})["balance"] == 600
        meter.run(sup, 1, 0, at(2, 12))
        meter.run(sup, 12, 3500, at(2, 12, 1), t0_ms=100000)  # over the 3 kW limit for 10 s: tripped (g)
        assert not hw.contact and sup.control.reason == "load limit"
        meter.regs.add(registers.IMPORT, 2 * KWH)  # and the credit runs out while the limit holds the supply off
        meter.run(sup, 1, 0, at(2, 12, 2), t0_ms=113000)
        assert sup.store.ledger.balance < -500 and sup.control.reason == "load limit"
        pulses = len(hw.pulses)
        meter.run(sup, 61, 0, at(2, 12, 3), t0_ms=114000)  # the lockout ends: credit keeps it off, nothing moves
        assert not hw.contact and len(hw.pulses) == pulses and sup.control.state == disconnect.READY
        assert sup.control.reason == "credit"
        again = disconnect.DisconnectControl(sup.relay)
        again.load()
        assert again.reason == "credit", "the hand-over is persisted"
        r = grp.topup({"token": env("token2")})  # within the allowance again: credit's own reconnect (h)
        assert hw.contact and r["output"] is True and sup.control.reason == "top-up"

    _run(body)


def test_the_time_unknown_never_cuts_for_credit_and_says_so():
    def body():
        ctx, meter, sup, grp = _setup()
        grp.topup({"token": env("token3")})
        meter.run(sup, 1, 0, None)
        meter.regs.add(registers.IMPORT, 5 * KWH)
        meter.run(sup, 5, 0, None)
        assert ctx.hal.contact and sup.store.ledger.balance == -4400
        assert [e[1] for e in sup.log.ring].count(events.CLOCK_UNKNOWN) == 1
        meter.run(sup, 1, 0, at(3, 10))
        assert not ctx.hal.contact

    _run(body)


def test_the_calendar_changes_only_by_a_signed_command_checked_whole():
    def body():
        ctx, meter, sup, grp = _setup(settings=False)
        assert grp.calendar({}) == {"calendar": {"tz_offset_min": 330, "tou": [["00:00", 1]], "tou_weekend": None,
                                                 "billing_day": 1}}
        new = cbor.loads(cbor.loads(env("calendar"))["body"])["args"]["calendar"]
        _refused(grp.calendar, {"calendar": new}, supply_group.RC_NOT_AUTHORISED)
        assert sup.last_refusal == "meter.calendar: no-envelope"
        for name, why in (("calendar_bad", "calendar: bad value for tou"),
                          ("calendar_unknown", "calendar: unknown field persist_interval_s")):
            req = {"calendar": cbor.loads(cbor.loads(env(name))["body"])["args"]["calendar"], "envelope": env(name)}
            _refused(grp.calendar, req, supply_group.RC_BAD_SETTINGS)
            assert sup.last_refusal == why and (sup.log.ring[-1][1], sup.log.ring[-1][3]) == (events.SETTINGS_INVALID, why)
        assert store.read_json(meter_settings.PATH, None) is None and meter.tou == [(0, 1)]
        r = grp.calendar({"calendar": new, "envelope": env("calendar")})
        assert r == {"calendar": {"tz_offset_min": 0, "tou": [["00:00", 1], ["18:00", 2], ["22:00", 1]],
                                  "tou_weekend": None, "billing_day": 1}}
        assert meter.tou == [(0, 1), (1080, 2), (1320, 1)] and meter.cfg["tz_offset_min"] == 0
        assert sup.log.ring[-1][1] == events.SETTINGS_CHANGED
        assert meter_settings.load() == (meter.cfg, None), "what the next boot reads"
        _refused(grp.calendar, {"calendar": new, "envelope": env("calendar")}, supply_group.RC_NOT_AUTHORISED)
        assert sup.last_refusal == "meter.calendar: replayed"

    _run(body)


def test_the_dlms_meter_readers_secret_is_set_and_cleared_only_by_a_signed_command():
    def body():
        import hashlib

        from app import dlms_secret

        ctx, meter, sup, grp = _setup(settings=False)
        assert grp.reader({}) == {"set": False}
        digest = cbor.loads(cbor.loads(env("reader"))["body"])["args"]["sha256"]
        assert digest == hashlib.sha256(b"m-1\x00meter reader 1").digest()  # salted with the meter's id
        _refused(grp.reader, {"sha256": digest}, supply_group.RC_NOT_AUTHORISED)
        assert sup.last_refusal == "dlms.reader: no-envelope" and not dlms_secret.is_set()
        for bad in (digest[:31], digest.hex(), 5, True, [digest], None):  # checked before the envelope is spent
            _refused(grp.reader, {"sha256": bad, "envelope": env("reader")}, supply_group.RC_BAD_REQUEST)
            assert sup.last_refusal == "dlms.reader: bad sha256"
        _refused(grp.reader, {"sha256": hashlib.sha256(b"another").digest(), "envelope": env("reader")},
                 supply_group.RC_NOT_AUTHORISED)  # not what was signed
        ctx.reader_tries = [2, 1, None]  # a guessing count under way: a new secret starts it again
        released = []
        ctx.server.releasers.append(lambda: released.append(1))  # a DLMS session in progress
        assert grp.reader({"sha256": digest, "envelope": env("reader")}) == {"set": True}
        assert dlms_secret.matches("m-1", b"meter reader 1") and not dlms_secret.matches("m-1", b"meter reader 2")
        assert not dlms_secret.matches("m-2", b"meter reader 1")  # the digest fits this meter only
        assert ctx.reader_tries == [0, 0, None] and store.read_bytes(dlms_secret.TRIES_PATH) == b"\x00\x00"
        assert released == [1]  # ended: a reader associated with the old secret connects again
        assert (sup.log.ring[-1][1], sup.log.ring[-1][3]) == (events.SETTINGS_CHANGED, "dlms reader secret set")
        _refused(grp.reader, {"sha256": digest, "envelope": env("reader")}, supply_group.RC_NOT_AUTHORISED)
        assert sup.last_refusal == "dlms.reader: replayed"
        assert grp.reader({"sha256": b"", "envelope": env("reader_clear")}) == {"set": False}
        assert not dlms_secret.matches("m-1", b"meter reader 1") and sup.log.ring[-1][3] == "dlms reader secret cleared"

    _run(body)


def test_the_dlms_utility_keys_are_set_over_the_console_only_by_a_signed_command():
    def body():
        from app import dlms_hls

        ctx, meter, sup, grp = _setup(settings=False)
        fwtest.write(dlms_hls.PATH, bytes(range(36)))  # other keys, 0x20212223 counters used: gone with them
        assert grp.keys({}) == {"set": True}
        args = cbor.loads(cbor.loads(env("keys"))["body"])["args"]
        ek, ak = args["ek"], args["ak"]
        _refused(grp.keys, {"ek": ek, "ak": ak}, supply_group.RC_NOT_AUTHORISED)
        assert sup.last_refusal == "dlms.keys: no-envelope"
        for bad_ek, bad_ak in ((ek[:15], ak), (ek, b""), (ek.hex(), ak), (5, ak), (True, ak), (None, ak)):
            _refused(grp.keys, {"ek": bad_ek, "ak": bad_ak, "envelope": env("keys")}, supply_group.RC_BAD_REQUEST)
            assert sup.last_refusal == "dlms.keys: bad keys"
        ctx.server.bufs = (512, 2)  # the request came over the modem's socket: keys in the clear there, refused
        _refused(grp.keys, {"ek": ek, "ak": ak, "envelope": env("keys")}, supply_group.RC_NOT_ALLOWED)
        assert sup.last_refusal == "dlms.keys: over the console only" and dlms_hls.keys()[0] == bytes(range(16))
        ctx.server.bufs = None
        _refused(grp.keys, {"ek": ak, "ak": ek, "envelope": env("keys")}, supply_group.RC_NOT_AUTHORISED)  # swapped
        released = []
        ctx.server.releasers.append(lambda: released.append(1))  # a DLMS session in progress
        assert grp.keys({"ek": ek, "ak": ak, "envelope": env("keys")}) == {"set": True}
        assert dlms_hls.keys() == (ek, ak, 0) and released == [1]  # another EK: its counter starts at 0
        assert (sup.log.ring[-1][1], sup.log.ring[-1][3]) == (events.SETTINGS_CHANGED, "dlms keys set")
        _refused(grp.keys, {"ek": ek, "ak": ak, "envelope": env("keys")}, supply_group.RC_NOT_AUTHORISED)
        assert sup.last_refusal == "dlms.keys: replayed"
        fwtest.write(dlms_hls.PATH, ek + ak + (500).to_bytes(4, "big"))  # 500 counters used since
        assert grp.keys({"ek": ek, "ak": ak, "envelope": env("keys_again")}) == {"set": True}
        assert dlms_hls.keys() == (ek, ak, 500)  # the same EK set again goes on with its counter, never back
        assert grp.keys({"ek": b"", "ak": b"", "envelope": env("keys_clear")}) == {"set": False}
        assert dlms_hls.keys() is None and sup.log.ring[-1][3] == "dlms keys cleared"

    _run(body)


def test_cover_openings_are_tamper_events_at_most_one_a_minute():
    def body():
        ctx, meter, sup, grp = _setup(settings=False)
        hal = ctx.hal
        first = sup.log.seq
        assert sup.status()["cover"] == {"open": False, "openings": 0}
        hal.cover_level = True
        meter.run(sup, 5, 0, None, t0_ms=1000)  # taken off, and left off: one event
        assert [(e[1], e[3]) for e in sup.log.since(first)] == [(events.COVER_OPEN, "cover opened")]
        hal.cover_level = False
        meter.run(sup, 1, 0, None, t0_ms=9000)
        for k in range(5):  # toggled five times, each opening shorter than a reading (the interrupt catches it)
            hal.cover(None)
            meter.run(sup, 1, 0, None, t0_ms=10000 + k * 1000)
        assert len(sup.log.since(first)) == 1, "held: at most one event a minute"
        meter.run(sup, 1, 0, None, t0_ms=61000)
        assert (sup.log.ring[-1][1], sup.log.ring[-1][3]) == (events.COVER_OPEN, "cover opened 5 times")
        assert sup.status()["cover"] == {"open": False, "openings": 6}
        # the tamper events are also in IS 15959's non-rollover log, read over SMP (group 66, command 5, "log": 5)
        tamper = grp.events({"log": 5})
        assert [e[1] for e in tamper["events"]] == [events.COVER_OPEN] * 2 and tamper["total"] == 2
        assert tamper["depth"] == 10 and tamper["log"] == 5 and tamper["seq"] == tamper["events"][-1][0]
        # each with the supply's figures at its reading: [seq, code, RTC s, V cV, I mA, PF thousandths, import mWh]
        assert [len(e) for e in tamper["events"]] == [7, 7]
        assert tamper["events"][-1][3:] == [int(round(meter.tick.reading.voltage * 100)),
                                            int(round(meter.tick.reading.current * 1000)),
                                            int(round(meter.tick.reading.pf * 1000)), meter.tick.regs.mwh(0)]
        assert grp.events({"log": 5, "since": tamper["seq"]})["events"] == []
        assert [e[1] for e in grp.events({"log": 2})["events"]] == [events.POWER_RESTORE]
        for bad in (7, -1, True, 5.0, "5", None):
            if bad is not None:
                e = fwtest.raises(smp.SmpError, grp.events, {"log": bad})
                assert e.rc == smp.EINVAL, bad
        # a meter that powers up with its cover off says so at once
        hal.cover_level = True
        again = supply.Supply(ctx, Meter(), set_rtc=lambda t: None)
        assert (again.log.ring[-1][1], again.log.ring[-1][3]) == (events.COVER_OPEN, "open at power-up")
        assert again.status()["cover"] == {"open": True, "openings": 1}
        assert [e[1] for e in again.log.compartments("entries", 5)] == [events.COVER_OPEN] * 3 and again.log.compartments("read", 5)[1] == 3

    _run(body)


def test_update_events_before_and_after_the_app_started_reach_the_ring():
    def body():
        journal._pending[:] = []
        journal.event("rollback", "slot b was not confirmed")  # the loader, at this boot, before the app
        journal.event("command", "supply.relay")  # not an update of the app: stays in the update log only
        ctx, meter, sup, grp = _setup(settings=False)
        assert [(e[1], e[3]) for e in sup.log.ring if e[1] > 420] == [(events.ROLLED_BACK, "slot b was not confirmed")]
        journal.event("installed", "1.2.0 into slot b")
        journal.event("confirmed", "slot b 1.2.0")
        assert [e[1] for e in sup.log.ring[-2:]] == [events.APP_INSTALLED, events.APP_CONFIRMED]
        assert [e["event"] for e in store.read_json(journal.EVENTS)][-2:] == ["installed", "confirmed"]

    _run(body)


def test_a_power_failure_is_dated_only_by_a_believable_register_save_time():
    def body():
        import os

        cause = supply._cause
        supply._cause = lambda: "power on"
        fwtest.write(trust.PATH, fwtest.fixture("trust_supply.cbor"))
        try:
            for at, dated in ((1800000000, True), (1 << 63, False), ((1 << 64) - 1, False), (-5, False)):
                if store.exists(events.PATH):
                    os.remove(events.PATH)
                meter = Meter()
                meter.regs.extra["at"] = at  # a register record with a valid CRC and this save time (meter-fuzz)
                sup = supply.Supply(Ctx(), meter, set_rtc=lambda t: None)  # raised struct.error on CPython
                fail = [e for e in sup.log.ring if e[1] == events.POWER_FAIL]
                assert len(fail) == 1 and fail[0][3] == ("last saved reading" if dated else "time unknown"), (at, fail)
                assert (fail[0][2] == at) == dated, (at, fail)
        finally:
            supply._cause = cause

    _run(body)


def test_a_read_request_never_writes_even_with_a_signed_value():
    # found by meter-fuzz smp_dispatch: 66/3 and 66/8 took one handler for both ops, so a READ carrying the field
    # (and a valid envelope) wrote it; SMP says a read changes nothing (and the server retries a read on MemoryError)
    def body():
        ctx, meter, sup, grp = _setup(settings=False)
        grp.register(ctx.server)
        new = cbor.loads(cbor.loads(env("calendar"))["body"])["args"]["calendar"]
        for cmd, req in ((3, {"settings": cbor.loads(cbor.loads(env("settings"))["body"])["args"]["settings"],
                              "envelope": env("settings")}),
                         (8, {"calendar": new, "envelope": env("calendar")})):
            b = cbor.dumps(req)
            rsp = ctx.server.handle(smp.header(1, smp.OP_READ, len(b), supply_group.GROUP_SUPPLY, 0, cmd) + b)
            assert rsp[0] & 7 == smp.OP_READ_RSP and "rc" not in cbor.loads(rsp[8:])
        assert store.read_json(supply_settings.PATH, None) is None and sup.control.mode == disconnect.DEFAULT_MODE
        assert store.read_json(meter_settings.PATH, None) is None and meter.tou == [(0, 1)]
        b = cbor.dumps({"calendar": new, "envelope": env("calendar")})  # the same as a write: applied
        rsp = ctx.server.handle(smp.header(1, smp.OP_WRITE, len(b), supply_group.GROUP_SUPPLY, 0, 8) + b)
        assert "rc" not in cbor.loads(rsp[8:]) and meter.tou != [(0, 1)]

    _run(body)
