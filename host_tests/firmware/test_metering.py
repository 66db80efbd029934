"""The metering task (app/metering.py) with the supply listening: one tick per reading with one RTC read, metering's
events in the app's ring, and a full heap that skips an interval instead of ending the app."""
import time

from test_supply import Ctx, _run

import fwtest
from app import events, metering, registers, supply
from loader import journal, store, wallclock

BOARD = {
    "mcu": {"family": "rp2040"},
    "adc": {"bits": 12, "vref": 3.3},
    "frontend": {"type": "adc", "period_ms": 1000},
    "calibration": {"v_gain": 250.0, "i_gain": 60.0, "phase_deg": 0.0},
    "metering": {"nominal_voltage": 230.0, "nominal_frequency": 50.0, "ib_amps": 5.0, "imax_amps": 60.0},
}
RTC0 = 1800000000  # 2027-01-15 08:00 UTC


class MeterCtx(Ctx):
    board = BOARD


class Front:
    """A front end whose next reading the test sets: 230 V at `watts`, PF 1."""

    kind = "adc"
    pulses = None

    def __init__(self):
        self.errors = {}
        self.watts = 0.0

    def set_constants(self, consts):
        pass

    def fill(self, r):
        r.voltage = 230.0
        r.current = self.watts / 230.0
        r.p = r.s = self.watts
        r.q = 0.0
        r.pf = 1.0

    def take_energy(self, r, dt_ms):
        return int(r.p * dt_ms + 0.5)


class Rtc:
    """wallclock.rtc_now counting its reads (every app module reads the RTC through it)."""

    def __init__(self):
        self.reads = 0
        self.real = wallclock.rtc_now

    def __call__(self):
        self.reads += 1
        return RTC0 + self.reads

    def __enter__(self):
        wallclock.rtc_now = self
        return self

    def __exit__(self, *exc):
        wallclock.rtc_now = self.real


def _meter(front):
    """A metering task on `front` with the supply listening, as app/main.py builds them (prepaid: a flat tariff)."""
    fwtest.write("meter/supply.json", b'{"tariff": {"flat": 1000}}')
    ctx = MeterCtx()
    m = metering.Metering(ctx, frontend=front)
    sup = supply.Supply(ctx, m, set_rtc=lambda t: None)
    m.listeners.append(sup.on_reading)
    return m, sup


def _read(m, front, k, watts=1000.0):
    front.watts = watts
    front.fill(m.reading)
    m.measure_ms = time.ticks_ms()
    m.account(k * 1000)


def _memory_events(log):
    return [e[3] for e in log.ring if e[1] == events.OUT_OF_MEMORY]


def test_a_reading_reads_the_rtc_once_for_metering_and_every_listener():
    def body():
        with Rtc() as rtc:
            front = Front()
            m, sup = _meter(front)
            assert sup.prepaid.topup(1, 10000) is None  # credit: no alerts (an event reads the RTC to date itself)
            for k in range(5):
                before = rtc.reads
                _read(m, front, k)
                assert rtc.reads - before == 1, "RTC reads in reading %d: %d" % (k, rtc.reads - before)
            t = m.tick
            assert t.rtc == RTC0 + rtc.reads and t.ms == 4000 and t.zone == 1 and t.reading is m.reading
            # 08:00:05 UTC + 5:30 = 13:30 local on Friday 2027-01-15, the one shape every listener reads
            assert t.local == (2027, 1, 15, 4, 13 * 60 + 30)
            assert m.regs.total_mj(registers.IMPORT) == 4 * 1000 * 1000
            assert sup.store.import_mj == 4 * 1000 * 1000, "the supply charged up to this reading's registers"

    _run(body)


def test_metering_s_events_go_to_the_app_s_ring_not_the_loader_s_log():
    def body():
        fwtest.write(registers.FILES[0], b"torn")
        fwtest.write(registers.FILES[1], b"also torn")
        fwtest.write("meter/config.json", b'{"md_period_s": 901, "relay_pulse_ms": 50}')
        front = Front()
        m, sup = _meter(front)
        codes = [e[1] for e in sup.log.ring]
        assert codes.index(events.REGISTERS_LOST) > codes.index(events.POWER_RESTORE)
        assert [e[3] for e in sup.log.ring if e[1] == events.SETTINGS_INVALID] == ["metering: bad value for md_period_s"]
        # a calibration step that fails, then one that succeeds
        m.start_calibration("gain", 230.0, 5.0, 1.0, 3)
        for k in range(3):
            _read(m, front, k, watts=0.0)
        assert (sup.log.ring[-1][1], sup.log.ring[-1][3]) == (events.CALIBRATION_FAILED, "gain: no-signal")
        m.start_calibration("gain", 230.0, 5.0, 1.0, 3)
        for k in range(3, 6):
            _read(m, front, k, watts=1150.0)
        assert (sup.log.ring[-1][1], sup.log.ring[-1][3]) == (events.CALIBRATED, "gain") and m.cal_source == "calibrated"
        kinds = [e["event"] for e in store.read_json(journal.EVENTS, [])]
        assert not [k for k in kinds if k.startswith("registers") or k.startswith("calibrat") or k == "config-invalid"]

    _run(body)


def test_a_full_heap_skips_one_interval_and_metering_goes_on():
    def body():
        front = Front()
        m, sup = _meter(front)
        m.persist_ms = 0  # a save due after every reading

        def full(*args):
            raise MemoryError("memory allocation failed")

        _read(m, front, 0)
        m.persist_due()
        assert m.persist.writes == 1
        # the supply's rules run out of memory: that reading's rules are skipped, the registers still count it
        sup.prepaid.tick = full
        _read(m, front, 1)
        assert m.readings == 2 and m.regs.total_mj(registers.IMPORT) == 1000 * 1000
        assert sup.store.import_mj == 0 and _memory_events(sup.log) == ["listener, 1 skipped"]
        del sup.prepaid.tick
        # the saves run out of memory: the registers stay in RAM, metering goes on, the next due save catches up
        m.persist.save = full
        for k in range(2, 6):
            _read(m, front, k)
            m.persist_due()
        assert m.readings == 6 and m.regs.total_mj(registers.IMPORT) == 5 * 1000 * 1000
        told = sum(int(d.split(", ")[1].split()[0]) for d in _memory_events(sup.log))
        assert told + m.skipped == 5, "every skipped interval is counted once (held events count the rest)"
        assert sup.store.import_mj == 5 * 1000 * 1000, "the skipped reading's energy is charged at the next one"
        del m.persist.save
        m.persist_due()
        again = registers.Registers()
        assert registers.Persist().load(again) == "ok" and again.total_mj(registers.IMPORT) == 5 * 1000 * 1000

    _run(body)


def test_a_full_heap_takes_the_dlms_session_s_heap_before_the_next_reading():
    # a reader on the optical port holds its session's heap (about 16 KB of an ESP32's) until its client lets go; a
    # MemoryError in metering or in the supply's rules asks the SMP server's releasers for it, as signed work does
    def body():
        front = Front()
        m, sup = _meter(front)
        given = []
        m.ctx.server.releasers.append(lambda: given.append(1) is None)

        def full(*args):
            raise MemoryError("memory allocation failed")

        sup.prepaid.tick = full
        _read(m, front, 0)
        assert given == [1] and _memory_events(sup.log) == ["listener, 1 skipped"]
        del sup.prepaid.tick
        _read(m, front, 1)
        assert given == [1] and sup.store.import_mj == 1000 * 1000  # nothing more asked; the reading caught up

    _run(body)


def test_a_profile_row_that_finds_no_room_takes_the_releasers_heap_and_goes_in_at_once():
    # a head-end that keeps its DLMS session up re-takes the heap at its next request: a row left for the next reading
    # found it taken again, reading after reading (the emulated ESP32 with its network up, 120 skipped); the row is
    # tried once more right after the releasers gave their heap back
    def body():
        import sys

        import app
        from app import load_profile

        tries = []

        class NoRoom:  # app.load_profile as a heap with no room for its code finds it: MemoryError at the write
            @staticmethod
            def block(row):
                tries.append(row[0])
                raise MemoryError("memory allocation failed")

        def no_room():
            sys.modules["app.load_profile"] = app.load_profile = NoRoom

        m, sup = _meter(Front())
        given = []
        m.ctx.server.releasers.append(lambda: given.append(1) is None)  # a session that gives its heap back
        no_room()
        assert m._profile("block", (RTC0 + 1800, 23000, 4000, 1000, 1100, 0)) is True  # tried again at once: room
        assert given == [1] and _memory_events(sup.log) == [] and load_profile.count() == 1
        m.ctx.server.releasers[:] = [lambda: no_room() or True]  # room given back and taken again at once
        no_room()
        assert m._profile("block", (RTC0 + 3600, 23000, 4000, 1000, 1100, 0)) is False
        assert _memory_events(sup.log) == ["block profile, 1 skipped"]  # the next reading tries again, said once
        assert len(tries) == 3  # (once, then twice: at most once more for each heap given back)
        m.ctx.server.releasers[:] = [lambda: False]  # nothing held: not tried twice
        no_room()
        assert m._profile("block", (RTC0 + 3600, 23000, 4000, 1000, 1100, 0)) is False and len(tries) == 4
        assert load_profile.count() == 1 and "app.load_profile" not in sys.modules

    _run(body)


class _Steps(Rtc):
    """An RTC the test moves: `at` seconds after RTC0 (each reading a third of a 30-minute demand period later)."""

    at = 0

    def __call__(self):
        self.reads += 1
        return RTC0 + self.at


def test_each_demand_period_closed_at_a_known_time_is_a_block_load_profile_row():
    def body():
        from app import load_profile

        with _Steps() as rtc:
            front = Front()
            m, sup = _meter(front)
            sup.prepaid.topup(1, 10000)
            for k in range(8):  # RTC0 (opens a period: it began before the start), +600 ... +4200
                rtc.at = 600 * k
                _read(m, front, k)
            rows = list(load_profile.rows())
            # each period: three readings of 1 kW for 1 s (and the one that closes it: its energy came before)
            assert [r[0] for r in rows] == [RTC0 + 1800, RTC0 + 3600], rows
            assert rows[0][1:] == (23000, 4348, 833, 833, 0) and rows[1][1:] == (23000, 4348, 833, 833, 0), rows
            assert m.regs.closed is None

    _run(body)


def test_a_row_the_flash_refuses_is_event_419_and_metering_goes_on():
    def body():
        with _Steps() as rtc:
            fwtest.write("meter/load", b"a file where the profile's folder goes: every row's write fails")
            front = Front()
            m, sup = _meter(front)
            sup.prepaid.topup(1, 10000)
            for k in range(8):
                rtc.at = 600 * k
                _read(m, front, k)
            lost = [e for e in sup.log.ring if e[1] == events.PROFILE_ROW_LOST]
            assert len(lost) == 2 and lost[0][3].startswith("block at %d" % (RTC0 + 1800)), lost
            assert m.regs.closed is None and m.readings == 8

    _run(body)


def test_a_local_day_s_first_reading_is_a_daily_load_profile_row():
    def body():
        from app import load_profile

        daily = load_profile.DAILY
        midnight = RTC0 + 37800  # 2027-01-16 00:00 at +05:30
        with _Steps() as rtc:
            front = Front()
            m, sup = _meter(front)
            sup.prepaid.topup(1, 10000)
            times = [k for k in range(10)] + [37740, 37860, 37920]  # 13:30 on, 23:59, then 00:01 and 00:02
            for k, at in enumerate(times):
                rtc.at = at
                _read(m, front, k)
                if k == 8:  # a start's first readings leave the profile alone (the app's start-up allocations first)
                    assert load_profile.count(daily) == 0 and m.day is None
            rows = list(load_profile.rows(None, None, daily))
            # the start's day (its row at the tenth reading: the profile had none), then the new day's at its first
            assert [r[0] for r in rows] == [midnight - 86400, midnight], rows
            # the registers after those readings (1 kW for 1 s each: 9 kJ, 2,500 mWh; then 11 kJ, 3,055 mWh)
            assert rows[0][1:] == (2500, 2500, 0) and rows[1][1:] == (3055, 3055, 0), rows
            m2, _ = _meter(front)  # a restart the same day: the day has its row already
            for k in range(10):
                rtc.at = 40000 + k
                _read(m2, front, k)
            assert load_profile.count(daily) == 2 and m2.day == (midnight + 19800) // 86400

    _run(body)


def test_a_month_s_end_is_a_billing_row_and_the_maximum_demand_restarts():
    def body():
        from app import load_profile

        billing = load_profile.BILLING
        feb = RTC0 + 1420200  # 2027-02-01 00:00 at +05:30 (2027-01-31 18:30 UTC)
        jan = feb - 31 * 86400
        with _Steps() as rtc:
            front = Front()
            m, sup = _meter(front)
            sup.prepaid.topup(1, 10000)
            for k in range(12):  # 13:30 local on the 15th, a reading every 10 min: demand periods close
                rtc.at = 600 * k
                _read(m, front, k)
            # the first look (the start's tenth reading): a meter with no billing period begins one, bills nothing
            first = m.regs.extra["bill"]
            assert first[0] == jan and load_profile.count(billing) == 0 and m.regs.md_w > 0, first
            rtc.at = 1420200 + 60  # 00:01 on the 1st of February
            _read(m, front, 12, watts=2000.0)
            regs = m.regs
            rows = list(load_profile.rows(None, None, billing))
            imp, app = regs.mwh(registers.IMPORT), regs.mwh(registers.APPARENT)
            assert len(rows) == 1 and rows[0][:3] == (feb, 1000, imp), rows  # PF 1: import is apparent
            assert rows[0][3:13] == tuple(regs.mwh(registers.ZONE_FIRST + z) for z in range(8)) + (
                app, regs.mwh(registers.EXPORT))
            assert rows[0][13] >= 1 and rows[0][14] >= RTC0, rows  # the month's demand and when it was set
            assert regs.md_w == 0.0 and regs.md_at is None and regs.extra["bill"] == [feb, imp, app]
            billed = [e for e in sup.log.ring if e[1] == events.BILLING_RESET]
            assert len(billed) == 1 and billed[0][3] == "billed to %d: pf 1000/1000, md %d W" % (feb, rows[0][13]), billed
            # saved at once: a restart finds the period billed and bills nothing more
            m2, _ = _meter(front)
            assert m2.regs.extra["bill"] == [feb, imp, app] and m2.regs.md_w == 0.0
            for k in range(11):
                rtc.at = 1420200 + 120 + k
                _read(m2, front, k)
            assert load_profile.count(billing) == 1 and m2.regs.extra["bill"][0] == feb
            # a power cut after the row, before the registers were saved: the reset runs again, the row does not
            m2.regs.extra["bill"] = list(first)
            m2.regs.md_w = 5.0
            m2.bill_day = None
            rtc.at = 1420200 + 200
            _read(m2, front, 11)
            assert load_profile.count(billing) == 1 and m2.regs.md_w == 0.0 and m2.regs.extra["bill"][0] == feb
            # the clock set back into January: no period ends; a damaged "bill" begins a period, bills none
            m2.bill_day = None
            rtc.at = 600
            _read(m2, front, 12)
            assert load_profile.count(billing) == 1 and m2.regs.extra["bill"][0] == feb
            for bad in ([feb, True, 0], [feb, 1], "x", [-1, 0, 0], [feb, 1.0, 2]):
                m2.regs.extra["bill"] = bad
                m2.bill_day = None
                _read(m2, front, 13)
                assert m2.regs.extra["bill"][0] == jan and load_profile.count(billing) == 1, bad

    _run(body)


def test_the_billing_day_moves_the_billing_reset_and_a_move_bills_at_most_once():
    def body():
        from app import load_profile

        billing = load_profile.BILLING

        def local(s):  # 00:00 local (+05:30) of a day, as seconds after RTC0 (2027-01-15 13:30 local)
            return RTC0 + s

        dec20, jan20, feb5, feb25, mar1 = (local(-2295000), local(383400), local(1765800), local(3493800),
                                           local(3839400))
        with _Steps() as rtc:
            front = Front()
            m, sup = _meter(front)
            sup.prepaid.topup(1, 10000)
            m.set_calendar({"billing_day": 20})  # (as a signed meter.calendar sets it)
            for k in range(12):
                rtc.at = 600 * k
                _read(m, front, k)
            assert m.regs.extra["bill"][0] == dec20 and load_profile.count(billing) == 0  # the period began the 20th
            k = 12
            for at in (383400 - 60, 383400 + 60, 815400 + 60):  # 23:59 on the 19th, 00:01 on the 20th, the 25th
                rtc.at = at
                _read(m, front, k)
                k += 1
                stamps = [r[0] for r in load_profile.rows(None, None, billing)]
                assert stamps == ([] if at < 383400 else [jan20]), (at, stamps)
            m.set_calendar({"billing_day": 5})  # moved on the 25th to a day before it: the period goes on to Feb 5
            rtc.at = 815400 + 120
            _read(m, front, k)
            assert load_profile.count(billing) == 1 and m.regs.extra["bill"][0] == jan20
            rtc.at = 1765800 + 60
            _read(m, front, k + 1)
            assert [r[0] for r in load_profile.rows(None, None, billing)] == [jan20, feb5]
            m.set_calendar({"billing_day": 25})  # on Feb 5, to the 25th: the next row is Feb 25's
            rtc.at = 1765800 + 120
            _read(m, front, k + 2)
            assert load_profile.count(billing) == 2
            rtc.at = 3493800 + 60
            _read(m, front, k + 3)
            assert [r[0] for r in load_profile.rows(None, None, billing)][-1] == feb25
            # moved to the 1st on March 10: March 1 lies between the period's start and today: billed at once,
            # stamped March 1, and only once
            m.set_calendar({"billing_day": 1})
            for j in range(3):
                rtc.at = 4617000 + 60 + j
                _read(m, front, k + 4 + j)
            stamps = [r[0] for r in load_profile.rows(None, None, billing)]
            assert stamps == [jan20, feb5, feb25, mar1] and m.regs.extra["bill"][0] == mar1, stamps
            assert [e[1] for e in sup.log.ring].count(events.BILLING_RESET) == 4

    _run(body)


def test_a_signed_billing_reset_on_demand_bills_now_and_the_month_goes_on():
    def body():
        from test_supply import env

        from app import load_profile, supply_group
        from loader import smp, trust

        billing = load_profile.BILLING
        feb = RTC0 + 1420200  # 2027-02-01 00:00 at +05:30
        with _Steps() as rtc:
            fwtest.write(trust.PATH, fwtest.fixture("trust_supply.cbor"))
            front = Front()
            m, sup = _meter(front)
            grp = supply_group.SupplyGroup(m.ctx, sup)
            sup.prepaid.topup(1, 10000)
            wallclock.rtc_now = lambda: None  # the clock unknown: refused before the envelope is spent
            e = fwtest.raises(smp.SmpError, grp.bill, {"envelope": env("bill")})
            assert e.group_rc == supply_group.RC_NOT_ALLOWED and sup.last_refusal == "bill: clock not set"
            wallclock.rtc_now = rtc
            for k in range(12):
                rtc.at = 600 * k
                _read(m, front, k, watts=2000.0 if k == 5 else 1000.0)
            md = m.regs.md_w
            assert md > 0 and load_profile.count(billing) == 0
            e = fwtest.raises(smp.SmpError, grp.bill, {})  # unsigned: refused, nothing billed
            assert e.group_rc == supply_group.RC_NOT_AUTHORISED and load_profile.count(billing) == 0, sup.last_refusal
            rtc.at = 7300
            now = RTC0 + 7300
            r = grp.bill({"envelope": env("bill")})
            assert r == {"billed": now, "pf": 1000, "md_w": int(md)}, (r, now)
            rows = list(load_profile.rows(None, None, billing))
            assert len(rows) == 1 and rows[0][0] == now and rows[0][13] == int(md), rows
            assert m.regs.md_w == 0.0 and m.regs.extra["bill"][0] == now
            assert sup.log.ring[-1][1] == events.BILLING_RESET and sup.log.ring[-1][3].startswith("reset at %d: " % now)
            e = fwtest.raises(smp.SmpError, grp.bill, {"envelope": env("bill")})  # in the same second: no period
            assert e.group_rc == supply_group.RC_NOT_ALLOWED, sup.last_refusal  # to end (the envelope not spent)
            assert sup.last_refusal == "bill: clock before the billing period's start"
            rtc.at = 7400
            e = fwtest.raises(smp.SmpError, grp.bill, {"envelope": env("bill")})  # the same envelope again
            assert e.group_rc == supply_group.RC_NOT_AUTHORISED and load_profile.count(billing) == 1
            # the month goes on: February's billing date bills the rest of January from the reset on
            rtc.at = 1420200 + 60
            _read(m, front, 12)
            stamps = [r[0] for r in load_profile.rows(None, None, billing)]
            assert stamps == [now, feb] and m.regs.extra["bill"][0] == feb, stamps

    _run(body)


def test_billing_date_is_the_latest_billing_day_not_after_today():
    from app.billing import billing_date

    def day(y, mo, d):  # days since 1970-01-01 (credit.py's pure calendar arithmetic)
        from app.credit import day_number
        return day_number(y, mo, d)

    for today, bd, want in (((2027, 1, 15), 1, (2027, 1, 1)), ((2027, 1, 15), 15, (2027, 1, 15)),
                            ((2027, 1, 14), 15, (2026, 12, 15)), ((2027, 3, 1), 28, (2027, 2, 28)),
                            ((2028, 3, 27), 28, (2028, 2, 28)), ((2028, 2, 29), 28, (2028, 2, 28)),
                            ((2027, 1, 1), 1, (2027, 1, 1)), ((2027, 1, 27), 28, (2026, 12, 28))):
        assert billing_date(day(*today), bd) == day(*want), (today, bd, want)


def test_a_billing_row_the_flash_refuses_is_event_419_and_the_reset_goes_on():
    def body():
        with _Steps() as rtc:
            fwtest.write("meter/billing", b"a file where the profile's folder goes: the row's write fails")
            front = Front()
            m, sup = _meter(front)
            sup.prepaid.topup(1, 10000)
            for k in range(12):
                rtc.at = 600 * k
                _read(m, front, k)
            rtc.at = 1420200 + 60  # 00:01 on the 1st of February (+05:30)
            _read(m, front, 12)
            lost = [e[3] for e in sup.log.ring if e[1] == events.PROFILE_ROW_LOST]
            assert len(lost) == 1 and lost[0].startswith("billing at %d: " % (RTC0 + 1420200)), lost
            assert m.regs.md_w == 0.0 and m.regs.extra["bill"][0] == RTC0 + 1420200
            assert [e[1] for e in sup.log.ring].count(events.BILLING_RESET) == 1

    _run(body)


def test_a_billing_reset_whose_save_the_flash_refuses_goes_on_metering():
    def body():
        from app import load_profile

        with _Steps() as rtc:
            front = Front()
            m, sup = _meter(front)
            sup.prepaid.topup(1, 10000)
            for k in range(12):
                rtc.at = 600 * k
                _read(m, front, k)

            def refused():
                raise OSError(28)

            m.save = refused
            rtc.at = 1420200 + 60  # 00:01 on the 1st of February (+05:30)
            _read(m, front, 12)
            assert load_profile.count(load_profile.BILLING) == 1 and m.regs.md_w == 0.0 and m.readings == 13
            assert m.regs.extra["bill"][0] == RTC0 + 1420200 and m.bill_day is not None

    _run(body)
