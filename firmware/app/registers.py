# Energy registers, named by OBIS code, kept in integers: whole watt-hours plus a remainder in millijoules (W × ms),
# so a board's single-precision floats never stop small increments from adding up. Maximum demand is the highest
# mean import power over a clock-aligned integration period.
#
# Persistence: two alternating files, each one CBOR record with a sequence number and a CRC-32. A save writes the
# older file; at boot the valid record with the highest sequence wins. A power cut during a save leaves the other
# file, at most one persistence interval old, so energy is lost by at most one interval and never corrupted or
# decreased. Keys written by a newer app are carried over unchanged by an older one (formats only ever add keys).
import binascii

from micropython import const

import cbor
from loader import strict

MJ_PER_WH = const(3600000)
IMPORT = const(0)
EXPORT = const(1)
Q_IMPORT = const(2)
Q_EXPORT = const(3)
APPARENT = const(4)
ZONE_FIRST = const(5)
_ZONES = const(8)
COUNT = const(13)
VALUE_MAX = 1 << 62  # a register value beyond this is a damaged record (CBOR and the ports carry 64 bits)
OBIS = (
    "1.0.1.8.0.255",  # active energy import (+A), Wh
    "1.0.2.8.0.255",  # active energy export (-A), Wh
    "1.0.3.8.0.255",  # reactive energy import (+R, Q > 0: lagging while importing), varh
    "1.0.4.8.0.255",  # reactive energy export (-R, Q < 0), varh
    "1.0.9.8.0.255",  # apparent energy, VAh
    "1.0.1.8.1.255", "1.0.1.8.2.255", "1.0.1.8.3.255", "1.0.1.8.4.255",  # import by TOU zone
    "1.0.1.8.5.255", "1.0.1.8.6.255", "1.0.1.8.7.255", "1.0.1.8.8.255",
)
MD_OBIS = "1.0.1.6.0.255"
FILES = ("meter/energy.a", "meter/energy.b")
VERSION = 1


class Registers:
    def __init__(self):
        self.wh = [0] * COUNT
        self.mj = [0] * COUNT
        self.md_w = 0.0
        self.md_at = None  # RTC seconds (UTC) at the end of the period that set the maximum, None if not known
        self.block = -1  # the current demand period's number
        self.block_rtc = False  # and whether it counts on the RTC (else on the uptime: the clock was unknown)
        self.block_mj = 0  # import at its start, in mJ
        self.block_start = [0, 0]  # export and apparent at its start, in mJ (the block load profile's energies)
        self.v_ms = 0.0  # volts × ms and amperes × ms in it so far, and the ms they span: its average V and I
        self.i_ms = 0.0
        self.span_ms = 0
        # the last period closed with a known end: (end, RTC s; average V in 0.01 V; average I in mA; import Wh,
        # apparent VAh and export Wh in it, each in milli-units): a row of IS 15959's block load profile, taken by
        # app/metering.py (app/load_profile.py writes it); None when there is none to take
        self.closed = None
        self.extra = {}

    def add(self, k, mj):
        if mj <= 0:
            return
        r = self.mj[k] + mj
        if r >= MJ_PER_WH:
            q = r // MJ_PER_WH
            self.wh[k] += q
            r -= q * MJ_PER_WH
        self.mj[k] = r

    def mwh(self, k):
        """The register in milli-watt-hours (an integer: exact however large)."""
        return self.wh[k] * 1000 + self.mj[k] // 3600

    def total_mj(self, k):
        return self.wh[k] * MJ_PER_WH + self.mj[k]

    def integrate(self, p_mj, q_mj, s_mj, zone):
        """Add one interval's energies: signed active and reactive, apparent (all in mJ)."""
        if p_mj >= 0:
            self.add(IMPORT, p_mj)
            if 1 <= zone <= _ZONES:
                self.add(ZONE_FIRST + zone - 1, p_mj)
        else:
            self.add(EXPORT, -p_mj)
        if q_mj >= 0:
            self.add(Q_IMPORT, q_mj)
        else:
            self.add(Q_EXPORT, -q_mj)
        self.add(APPARENT, s_mj)

    def average(self, v, i, dt_ms):
        """Add one reading's voltage and current over its interval to the period's averages."""
        self.v_ms += v * dt_ms
        self.i_ms += i * dt_ms
        self.span_ms += dt_ms

    def demand(self, block, period_s, end_at):
        """Close the demand period when `block` (its number) has moved on; returns the closed period's demand in W
        or None. The first period after a boot started mid-way, so it only opens the next one. A period that counted
        on the RTC and closes on it (`end_at` known, RTC s) at a later period also leaves its block load profile row in
        `closed`, stamped with its own end; a period opened while the clock was unknown, or closed by a clock set back,
        leaves none (its time is not known)."""
        if block == self.block:
            return None
        now = self.total_mj(IMPORT)
        ex = self.total_mj(EXPORT)
        va = self.total_mj(APPARENT)
        w = None
        if self.block >= 0:
            w = (now - self.block_mj) / (period_s * 1000)
            if w > self.md_w:
                self.md_w = w
                self.md_at = end_at
            if end_at is not None and self.block_rtc and block > self.block:
                span = self.span_ms or 1
                self.closed = ((self.block + 1) * period_s, int(self.v_ms * 100 / span + 0.5),
                               int(self.i_ms * 1000 / span + 0.5),
                               (now - self.block_mj) // 3600, (va - self.block_start[1]) // 3600,
                               (ex - self.block_start[0]) // 3600)
        self.block = block
        self.block_rtc = end_at is not None
        self.block_mj = now
        self.block_start[0] = ex
        self.block_start[1] = va
        self.v_ms = 0.0
        self.i_ms = 0.0
        self.span_ms = 0
        return w

    def record(self, seq):
        rec = dict(self.extra)
        rec.update({"v": VERSION, "seq": seq, "wh": self.wh, "mj": self.mj, "md": [self.md_w, self.md_at]})
        return rec

    def restore(self, rec):
        wh = rec["wh"]
        mj = rec["mj"]
        for k in range(min(COUNT, len(wh))):
            self.wh[k] = wh[k]
            self.mj[k] = mj[k]
        md = rec.get("md") or [0.0, None]
        self.md_w = float(md[0])
        self.md_at = md[1]
        self.extra = {k: v for k, v in rec.items() if k not in ("v", "seq", "wh", "mj", "md")}


def encode(rec):
    body = cbor.dumps(rec)
    return body + (binascii.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big")


def decode(data):
    """The record in `data`, or None when it is torn, corrupt or not a register record."""
    if data is None or len(data) < 5:
        return None
    body = data[:-4]
    if (binascii.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big") != data[-4:]:
        return None
    try:
        rec = cbor.loads(body)
    except ValueError:
        return None
    if not isinstance(rec, dict) or not strict.is_int(rec.get("seq"), 0) or not strict.is_int(rec.get("v")):
        return None
    wh = rec.get("wh")
    mj = rec.get("mj")
    if type(wh) is not list or type(mj) is not list or len(wh) != len(mj):
        return None
    for x in wh + mj:
        if not strict.is_int(x, 0, VALUE_MAX):
            return None
    md = rec.get("md")  # [maximum demand W, when (RTC s) or None]
    if md is not None and (type(md) is not list or len(md) != 2 or not strict.is_number(md[0], 0)
                           or not (md[1] is None or strict.is_int(md[1], 0))):
        return None
    return rec


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


class Persist:
    """The alternating register files. `status` after load: "new" (no files), "ok", "one-bad" (one file torn or
    corrupt; the other used) or "lost" (files present, none valid: the registers restart at zero — an event)."""

    def __init__(self):
        self.seq = 0
        self.status = "new"
        self.writes = 0

    def load(self, regs):
        best = None
        present = 0
        bad = 0
        for path in FILES:
            data = _read(path)
            if not data:
                continue  # absent, or created by a save the power cut ended before any byte: nothing was in it
            present += 1
            rec = decode(data)
            if rec is None:
                bad += 1
            elif best is None or rec["seq"] > best["seq"]:
                best = rec
        if best is not None:
            regs.restore(best)
            self.seq = best["seq"]
        self.status = "new" if not present else ("lost" if best is None else ("one-bad" if bad else "ok"))
        return self.status

    def save(self, regs):
        self.seq += 1
        data = encode(regs.record(self.seq))
        with open(FILES[self.seq & 1], "wb") as f:
            f.write(data)
        self.writes += 1
