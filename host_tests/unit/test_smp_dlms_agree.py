"""The same meter read two ways agrees (issue 20): SMP (group 65's read, group 66's status and event logs: what `ota
meter` shows) and DLMS/COSEM (app/dlms_objects.py through app/cosem.py's GET: what a head-end's DLMS client reads).
Random sequences of loads, readings, relay commands, supply settings, top-ups, events of every kind (refusal floods
included) and restarts on the firmware's own modules (CPython, a scratch flash folder): after each step the energy
registers are the same milliwatt-hours, the instantaneous values the same within the DLMS scaler's rounding, the
class-70 state, output and mode the same, the load limit, payment mode, balance and last top-up the same (the limiter
and the prepaid data), each IS 15959 event log the same events with the same times, and the block load, daily load and
billing profiles (group 65's profile read as `ota meter profile` pages it, against the DLMS buffers) the same rows, a
damaged row in flash left out of one and null-data in its place in the other."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from host_tests.scratch_machine import ScratchMeterMachine

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "meterkit" / "mpy_compat", ROOT / "firmware" / "lib", ROOT / "firmware",
          ROOT / "host_tests" / "firmware"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from test_supply import Ctx, Meter, at  # noqa: E402

from app import cosem, dlms_objects, load_profile, meter_group, registers, supply, supply_group  # noqa: E402
from fwtest import reader_association  # noqa: E402
from loader import mode  # noqa: E402

TZ = 330
INSTANT = dict(meter_group.INSTANT)  # OBIS -> the reading's attribute
SIGNED = {cosem.INTEGER, cosem.LONG, cosem.DOUBLE_LONG, cosem.LONG64}
SIZES = {cosem.INTEGER: 1, cosem.UNSIGNED: 1, cosem.ENUM: 1, cosem.BOOLEAN: 1, cosem.LONG: 2,
         cosem.LONG_UNSIGNED: 2, cosem.DOUBLE_LONG: 4, cosem.DOUBLE_LONG_UNSIGNED: 4, cosem.LONG64: 8,
         cosem.LONG64_UNSIGNED: 8}
CODES = (1, 51, 101, 102, 151, 201, 209, 251, 301, 302, 405, 408, 410, 421)


def _number(data: bytes) -> int:
    """An A-XDR integer (its tag first) as an int."""
    tag, size = data[0], SIZES[data[0]]
    return int.from_bytes(data[1:1 + size], "big", signed=tag in SIGNED)


class MeterMeter(Meter):
    """test_supply's metering stand-in with what group 65's read also asks (the front end, counters)."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = self.tick.reading
        self.readings = 0
        self.saved_ms = 0
        self.cal_source = "defaults"
        self.persist.writes = 0

        class Front:
            kind = "adc"
            errors = 0

        self.front = Front()


class SameMeterTwoWays(ScratchMeterMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ctx = Ctx()
        self.ctx.mode = mode.DEVELOPMENT  # unsigned commands: what is compared here is reading, not authority
        self.meter = MeterMeter()
        self.minute = 9 * 60
        self.stamp = {}  # the profile's last period end, as the meter's own clock and registers know it (not read
        self.start()  # back from the rows: a damaged newest row must not send the next one back in time)

    def teardown(self) -> None:
        from loader import journal

        journal._sink[:] = []  # the supply attached its update-event sink to the loader's journal: detach it, or a
        journal._pending[:] = []  # later test in this process would send its events to this machine's event log
        super().teardown()

    def start(self) -> None:
        self.sup = supply.Supply(self.ctx, self.meter, set_rtc=lambda t: None)
        self.grp = supply_group.SupplyGroup(self.ctx, self.sup)
        self.mgrp = meter_group.MeterGroup(self.ctx, self.meter)
        objects = dlms_objects.Objects(self.meter.tick, self.sup.control, b"MKT0000000000042", lambda: TZ,
                                       self.sup.log, period=lambda: 900, supply=self.sup)
        self.assoc = reader_association(objects.get)  # the meter reader's: the load profiles are compared too
        self.profiles_changed = True  # (the load profiles are compared after a start and after rows are written)


    def get(self, cls: int, ln: str, attr: int) -> bytes:
        """The value's A-XDR encoding, taken in blocks when it comes in blocks (GET-next per block)."""
        r = self.assoc.apdu(b"\xc0\x01\xc1" + bytes((cls >> 8, cls & 0xFF)) + cosem.obis(ln) + bytes((attr, 0)))
        if r[:4] == b"\xc4\x01\xc1\x00":
            return r[4:]
        data = b""
        while True:
            assert r[:3] == b"\xc4\x02\xc1" and r[8] == 0, (ln, attr, r[:12])
            n, i = r[9], 10
            if n & 0x80:
                n, i = int.from_bytes(r[10:10 + (n & 0x7F)], "big"), 10 + (n & 0x7F)
            data += r[i:i + n]
            if r[3]:  # the last block
                return data
            r = self.assoc.apdu(b"\xc0\x02\xc1" + r[4:8])

    # -- what happens to the meter
    @rule(watts=st.integers(0, 6000), seconds=st.integers(1, 4), minutes=st.integers(0, 600))
    def load(self, watts: int, seconds: int, minutes: int) -> None:
        self.minute += minutes
        day, minute = divmod(self.minute, 24 * 60)
        self.meter.run(self.sup, seconds, watts, at(1 + day % 28, minute // 60, minute % 60),
                       rtc=1_800_000_000 + self.minute * 60)

    @rule(v=st.floats(0, 300), i=st.floats(0, 80), pf=st.floats(-1, 1), f=st.floats(45, 55))
    def reading(self, v: float, i: float, pf: float, f: float) -> None:
        r = self.meter.tick.reading
        r.voltage, r.current, r.pf, r.frequency = v, i, pf, f
        r.s = v * i
        r.p = r.s * pf
        r.q = (max(0.0, r.s * r.s - r.p * r.p)) ** 0.5
        self.meter.tick.ms = (self.meter.tick.ms or 0) + 1000

    @rule(action=st.sampled_from(["disconnect", "reconnect"]))
    def relay(self, action: str) -> None:
        try:
            self.grp.relay({"action": action})
        except Exception as e:  # noqa: BLE001 - a mode that allows no such change now: refused, an event
            assert type(e).__name__ == "SmpError", e

    @rule(code=st.sampled_from(CODES), n=st.integers(1, 60))
    def events(self, code: int, n: int) -> None:
        for _ in range(n):
            self.sup.log.add(code, "prop")

    @rule(daily=st.booleans(), n=st.integers(1, 20), seed=st.integers(0, 2**32 - 1), damage=st.booleans())
    def profile_rows(self, daily: bool, n: int, seed: int, damage: bool) -> None:
        """Periods (or days) close: rows go to flash as app/metering.py writes them; maybe one gets damaged."""
        kind = load_profile.DAILY if daily else load_profile.BLOCK
        step = 86400 if daily else 900
        t = self.stamp.get(kind.dir, 1_800_000_000)
        for j in range(n):
            t += step
            x = (seed >> (j % 24)) + j
            row = (t, x, 2 * x, 3 * x) if daily else (t, 22000 + x % 3000, x % 70000, x, 2 * x, x % 7)
            load_profile.capture(row, kind)
        self.stamp[kind.dir] = t
        self.profiles_changed = True
        if damage:
            _damage(kind, seed % max(1, n), 2)

    @rule(n=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), damage=st.booleans(), again=st.booleans())
    def billing_rows(self, n: int, seed: int, damage: bool, again: bool) -> None:
        """Billing periods end: rows go to flash through load_profile.billing, as the monthly reset writes them (a
        power cut before the reset's save runs it again: `again` offers the same row twice); maybe one is damaged."""
        kind = load_profile.BILLING
        t = self.stamp.get(kind.dir, 1_800_000_000)
        for j in range(n):
            t += (28 + (seed >> j) % 4) * 86400
            x = (seed >> (j % 24)) + j
            md_at = 0 if (seed >> j) & 1 else t - 86400 * (1 + x % 27)
            row = (t, x % 1001, 9 * x) + tuple(x + z for z in range(8)) + (10 * x, x // 3, x % 30000, md_at)
            for _ in range(2 if again else 1):
                load_profile.billing(row)
        self.stamp[kind.dir] = t
        self.profiles_changed = True
        if damage:
            _damage(kind, seed % max(1, n), 7)

    @rule(flat=st.integers(0, 5000), limit_w=st.integers(0, 9000), over_s=st.integers(1, 600), prepaid=st.booleans())
    def new_settings(self, flat: int, limit_w: int, over_s: int, prepaid: bool) -> None:
        """New supply settings (group 66's, here unsigned: the machine's meter is in development mode)."""
        raw = {"load_limit": {"threshold_w": limit_w, "over_s": over_s}}
        if prepaid:
            raw["tariff"] = {"flat": flat}
        self.sup.configure(raw)

    @rule(amount=st.integers(1, 100000))
    def topup(self, amount: int) -> None:
        """A top-up as group 66 applies one once its token is verified (app/prepaid.py)."""
        if self.sup.prepaid is not None:
            self.tid = getattr(self, "tid", 0) + 1
            assert self.sup.prepaid.topup(self.tid, amount) is None

    @rule()
    def restart(self) -> None:
        self.start()  # the app's start again over the same flash: the ring and the logs read back

    # -- the two readings agree
    @invariant()
    def registers_agree(self) -> None:
        if self.meter.tick.ms is None:
            return
        smp = self.mgrp.read({})["obis"]
        for k in range(registers.COUNT):
            ln = registers.OBIS[k]
            value, scaler = _number(self.get(3, ln, 2)), self.get(3, ln, 3)
            assert scaler[:3] == b"\x02\x02\x0f" and scaler[3] == 0xFD, (ln, scaler)  # 10^-3 Wh: mWh
            assert value == smp[ln], (ln, value, smp[ln])

    @invariant()
    def instantaneous_values_agree(self) -> None:
        if self.meter.tick.ms is None:
            return
        smp = self.mgrp.read({})["obis"]
        for ln in INSTANT:
            raw, scaler = self.get(3, ln, 2), self.get(3, ln, 3)
            step = 10.0 ** (scaler[3] - 256 if scaler[3] > 127 else scaler[3])
            lo = -(1 << (8 * SIZES[raw[0]] - 1)) if raw[0] in SIGNED else 0
            hi = (1 << (8 * SIZES[raw[0]] - (1 if raw[0] in SIGNED else 0))) - 1
            n = _number(raw)
            if lo < n < hi:  # at the type's limit the value is clamped (a damaged front end), never wrapped
                assert abs(n * step - smp[ln]) <= step / 2 + 1e-9 * abs(smp[ln]), (ln, n, step, smp[ln])

    @invariant()
    def relay_agrees(self) -> None:
        st_ = self.sup.status()
        assert self.get(70, "0.0.96.3.10.255", 2) == bytes((cosem.BOOLEAN, 1 if st_["output"] else 0))
        assert self.get(70, "0.0.96.3.10.255", 3) == bytes((cosem.ENUM, st_["state"]))
        assert self.get(70, "0.0.96.3.10.255", 4) == bytes((cosem.ENUM, st_["mode"]))

    @invariant()
    def supply_objects_agree(self) -> None:
        """The limiter and the prepaid data (app/dlms_supply.py) against group 66's status: the limit, whether the
        meter keeps credit, the balance and the last top-up."""
        st_ = self.sup.status()
        assert _number(self.get(71, "0.0.17.0.0.255", 3)) == st_["load_limit"]["threshold_w"]
        assert _number(self.get(1, "0.0.94.96.20.255", 2)) == (0 if st_["credit"] is None else 1)
        if st_["credit"] is not None:
            assert _number(self.get(1, "0.0.94.96.24.255", 2)) == st_["credit"]["balance"]
            assert _number(self.get(1, "0.0.94.96.21.255", 2)) == st_["credit"]["last_topup"]

    @invariant()
    def event_logs_agree(self) -> None:
        for k in range(7):
            smp = self.grp.events({"log": k, "limit": 100})
            rows = [e[1:] for e in _all(self.grp, k)]  # code, time, then V, I, PF and import energy at the event
            assert smp["total"] >= len(rows) and smp["depth"] == (10 if k == 5 else 50)
            dlms = self.get(7, f"0.0.99.98.{k}.255", 2)
            types = (cosem.DOUBLE_LONG_UNSIGNED, cosem.LONG_UNSIGNED, cosem.LONG, cosem.LONG64_UNSIGNED)
            want = cosem.array_head(len(rows)) + b"".join(
                cosem.structure(cosem.octets(dlms_objects.date_time(at_, TZ)), cosem.number(cosem.LONG_UNSIGNED, c),
                                *(b"\x00" if x is None else cosem.number(t, x) for t, x in zip(types, (i, v, pf, e),
                                                                                             strict=True)))
                for c, at_, v, i, pf, e in rows)
            assert dlms == want, (k, rows)
            assert _number(self.get(7, f"0.0.99.98.{k}.255", 7)) == len(rows)


    @invariant()
    def load_profiles_agree(self) -> None:
        from ota_tool.metering import PROFILE_COLUMNS, profile_row

        if not self.profiles_changed:  # nothing else changes them: a read after each step would only repeat this one
            return
        self.profiles_changed = False

        for kind, ln in (("block", "1.0.99.1.0.255"), ("daily", "1.0.99.2.0.255"), ("billing", "1.0.98.1.0.255")):
            smp, since, held = [], 0, None
            while True:  # as ota_tool/metering.py profile() pages it
                rsp = self.mgrp.profile({"kind": kind, "since": since})
                held = rsp["held"]
                smp += [profile_row(kind, r) for r in rsp["rows"]]
                if not rsp["more"]:
                    break
                since = rsp["rows"][-1][0]
            dlms = self.get(7, ln, 2)
            assert _number(self.get(7, ln, 7)) == held
            cols = PROFILE_COLUMNS[kind]
            if kind == "billing":  # the power factor, eleven registers, the demand and when it was set
                rows = [cosem.structure(
                    cosem.octets(dlms_objects.date_time(r["rtc"], TZ)),
                    cosem.number(cosem.LONG_UNSIGNED, round(r["power_factor"] * 1000)),
                    *(cosem.number(cosem.LONG64_UNSIGNED, round(r[name] * scale)) for name, scale in cols[1:12]),
                    cosem.number(cosem.DOUBLE_LONG_UNSIGNED, r["max_demand_w"]),
                    cosem.octets(dlms_objects.date_time(r["max_demand_rtc"], TZ))) for r in smp]
            else:
                types = (cosem.LONG_UNSIGNED,) + (cosem.DOUBLE_LONG_UNSIGNED,) * 4 if kind == "block" else \
                    (cosem.LONG64_UNSIGNED,) * 3
                rows = [cosem.structure(cosem.octets(dlms_objects.date_time(r["rtc"], TZ)),
                                        *(cosem.number(t, round(r[name] * scale)) for t, (name, scale) in zip(
                                            types, cols, strict=True))) for r in smp]
            null = cosem.structure(*([b"\x00"] * (len(cols) + 1)))
            head = cosem.array_head(held)
            assert dlms.startswith(head), (kind, dlms[:4], held)
            sent = _rows(dlms[len(head):])
            assert len(sent) == held and [r for r in sent if r != null] == rows, (kind, held, len(smp))


def _damage(kind, row: int, offset: int) -> None:
    """A bit of row `row` of the profile's newest file flipped at byte `offset` (its CRC no longer matches)."""
    key = load_profile.keys(kind)[-1]
    with open(kind.path(key), "r+b") as f:
        f.seek(kind.size * row + offset)
        b = f.read(1)
        if b:
            f.seek(-1, 1)
            f.write(bytes((b[0] ^ 0x10,)))


def _rows(body: bytes) -> list[bytes]:
    """A profile buffer's rows (structures of octet-strings, integers and null-data), each as its bytes."""
    sizes = {**{t: 1 + n for t, n in SIZES.items()}, 0: 1}
    out, i = [], 0
    while i < len(body):
        assert body[i] == cosem.STRUCTURE, body[i:i + 8]
        start, n, i = i, body[i + 1], i + 2
        for _ in range(n):
            i += 2 + body[i + 1] if body[i] == cosem.OCTET_STRING else sizes[body[i]]
        out.append(body[start:i])
    return out


def _all(grp, k: int) -> list:
    """Every event of log k over SMP, paged as `ota meter events --log` pages it."""
    out: list = []
    since = 0
    while True:
        rsp = grp.events({"log": k, "since": since})
        out += rsp["events"]
        if not rsp["events"] or rsp["events"][-1][0] >= rsp["seq"]:
            return out
        since = rsp["events"][-1][0]


TestSameMeterTwoWays = SameMeterTwoWays.TestCase
TestSameMeterTwoWays.settings = settings(max_examples=25, stateful_step_count=12, deadline=None)
