# The meter's event log: a persisted ring of the most recent events, each with a sequence number that never repeats
# (it survives power cuts and the ring's wrap), an IS 15959 style code, the RTC time (None while the clock is
# unknown) and a short detail. Written by write-then-rename, so a power cut keeps the old ring or the new one.
# Codes (docs/relay-and-credit.md): IS 15959's where it has one, this kit's 4xx otherwise.
#
# Refusals (405, 408) come from the open port, as fast as anyone can send them. Each is in the ring at once (read
# it over SMP), but they write the flash at most twice per HOLD_MS: the first refusal of a burst is written with
# HELD_MAX sequence numbers reserved, the rest when the burst ends (flush_due, every reading) or with the next other
# event; beyond HELD_MAX in one burst a refusal is counted on the newest one ("... +N"), so a flood can neither wear
# the flash out nor push more than HELD_MAX + 1 older events out of the ring per burst. A power cut inside a burst
# loses its unwritten refusals, and the reservation keeps their numbers from being given again.
import json
import struct
import time

from micropython import const

import loader
from loader import store, strict

POWER_FAIL = 101
POWER_RESTORE = 102
CLOCK_SET = 151
COVER_OPEN = 251
MODULE_SILENT = 209  # IS 15959 "communication module removed": the module answers nothing (removed, unpowered, wedged)
LOAD_DISCONNECTED = 301
LOAD_CONNECTED = 302
RELAY_FAULT = 303
CREDIT_ALERT = 401
CREDIT_EXHAUSTED = 402
EMERGENCY_CREDIT = 403
TOPUP_ACCEPTED = 404
TOKEN_REJECTED = 405
CLOCK_UNKNOWN = 406
LOAD_LIMIT_TRIP = 407
COMMAND_REFUSED = 408
LOG_LOST = 409
SETTINGS_CHANGED = 410
SETTINGS_INVALID = 411
CREDIT_RECORD_DAMAGED = 412
CREDIT_RESET = 413
REGISTERS_LOST = 414  # both register copies unreadable: the energy registers restarted at zero
REGISTER_COPY_BAD = 415  # one register copy torn or corrupt: the other (one interval older) was used
CALIBRATED = 416
CALIBRATION_FAILED = 417
OUT_OF_MEMORY = 418  # a MemoryError skipped an interval's reading, save or supply rules; metering went on
PROFILE_ROW_LOST = 419  # the flash refused a load profile or billing row (app/load_profile.py): it has none
READER_REFUSED = 420  # a DLMS meter reader's secret refused (app/dlms_port.py); 3 in a row lock it out for 10 min
APP_INSTALLED = 421
INSTALL_REFUSED = 422
APP_CONFIRMED = 423
ROLLED_BACK = 424
BILLING_RESET = 425  # the monthly billing reset: a billing profile row, the maximum demand reset (app/metering.py)
UTILITY_REFUSED = 426  # a DLMS utility-settings association (HLS) whose client did not prove the keys (app/dlms_hls.py)
LINK_UP = 431  # NB-IoT: registered and the head-end's socket open (app/network.py)
LINK_LOST = 432
REGISTRATION_DENIED = 433
MODULE_RESTARTED = 434  # the module said RDY without the meter restarting it
MODULE_PULSED = 435  # the meter pulsed the module's power key to bring it back
# the loader's update events (loader/journal.py) the ring takes, by kind
UPDATE_CODES = {"installed": APP_INSTALLED, "install-refused": INSTALL_REFUSED, "confirmed": APP_CONFIRMED,
                "rollback": ROLLED_BACK, "settings-set-aside": SETTINGS_INVALID}

PATH = "meter/events.json"
RECORD = "events"
RECORD_VERSION = 1
SEQ_MAX = 1 << 40  # event numbers beyond this are a damaged record
CAPACITY = 64
DETAIL_MAX = 48
REFUSALS = (TOKEN_REJECTED, COMMAND_REFUSED, UTILITY_REFUSED)  # anyone can cause them: a burst writes the flash twice
HOLD_MS = const(30000)  # refusals write the flash at most twice in this long
HELD_MAX = const(8)  # refusals one burst may add to the ring; more are counted on the newest
_RECORD = "<BQHq"  # a packed event: its length, then _HEAD
_HEAD = "<QHq"  # sequence number, code, RTC seconds (_NO_TIME: unknown)
_HEAD_SIZE = const(18)
_NO_TIME = const(-1)
LOGS = "meter/logs"  # IS 15959's event logs (app/event_logs.py): a compartment file per category
_CODE_MAX = const(350)  # IS 15959's codes; above are this kit's, kept in the ring only


class EventLog:
    """The ring is packed in one bytearray, oldest first: per event a length byte, then `<QHq` (sequence number, code,
    RTC seconds or _NO_TIME) and the detail in UTF-8. 64 events as tuples and strings held about 8 KB of the 64-bit
    VM's heap (two objects each); packed they take what their bytes take, about 2.5 KB (docs/BENCHMARKS.md)."""

    def __init__(self, path=PATH, capacity=CAPACITY, clock=None, ticks_ms=time.ticks_ms, logs=None):
        self.path = path
        self.logs = logs  # the folder of IS 15959's event logs (LOGS), each code also kept per category; None: the ring only
        self.capacity = capacity
        self.clock = clock  # clock() -> RTC seconds since 1970 (UTC), or None while the time is unknown
        self.ticks_ms = ticks_ms
        self.seq = 0
        self._buf = bytearray()
        self._count = 0
        self._last = 0  # offset of the newest event in _buf
        self.floor = 0  # the highest sequence number the stored record reserves (a boot resumes above it)
        self.burst_end = None  # ticks_ms when the current burst of refusals ends (None: no burst)
        self.unwritten = False  # the ring holds refusals not yet on flash
        self.more = 0  # refusals counted on the newest one in this burst
        self.more_base = ""  # the newest refusal's detail before its count
        self.unsettled = None  # a log's write failed: when (ticks ms) a reading settles the logs
        self.retry_ms = 0  # ... after how long a wait (app/event_logs.py doubles it with each failure in a row)
        self.tick = None  # the metering's Tick (app/tick.py): IS 15959's logs keep the supply's figures at each event
        self.boot_seq = 0  # the ring's sequence number when it was loaded: the events above it are this start's

    @property
    def ring(self):
        """The events as (seq, code, RTC s or None, detail) tuples, oldest first (built on each call)."""
        return self.since(-1, self.capacity)

    def load(self):
        """Read the ring; a damaged record starts a new one with a LOG_LOST event (sequence numbers go on from the
        highest the damaged file still showed, so a reader never sees one repeat). A newer app's record (this one
        was rolled back) is kept on flash untouched, and this app's ring lives in RAM until an update writes it."""
        try:
            _, data = store.read_record(self.path, RECORD, RECORD_VERSION, None)
            if data is not None:
                seq, floor = data["seq"], data.get("floor", 0)
                if not strict.is_int(seq, 0, SEQ_MAX) or not strict.is_int(floor, 0, SEQ_MAX):
                    raise ValueError("bad sequence numbers")
                self.seq = max(seq, floor)
                self.floor = self.seq
                self._clear()
                # [seq, code, RTC s or None, detail]; an entry of another shape, or whose number does not rise (up
                # to the record's), is dropped, not trusted
                top = -1
                for e in data["ring"][-self.capacity :]:
                    if type(e) is list and len(e) == 4 and strict.is_int(e[0], top + 1, self.seq) \
                            and strict.is_int(e[1], 0, 0xFFFF) and (e[2] is None or strict.is_int(e[2], 0, SEQ_MAX)) \
                            and type(e[3]) is str:
                        self._pack(e[0], e[1], e[2], e[3][:DETAIL_MAX])
                        top = e[0]
        except (ValueError, KeyError, TypeError) as e:
            self.seq = self.floor = _highest_seq(self.path) + self.capacity + HELD_MAX
            self._clear()
            lost = "event log of a newer app kept" if isinstance(e, store.TooNew) else "event log damaged"
        else:
            lost = ""
        if self.logs is not None:
            # IS 15959's logs hold ring numbers too: the ring goes on above the highest (a ring lost, or kept in RAM
            # after a rollback, restarted below them), and each log takes the ring's events it missed (a power cut
            # between the ring's write and its own)
            self._logs("settle")
        self.boot_seq = self.seq  # (app/network_link.py pushes this start's alerts)
        if lost:
            self.add(LOG_LOST, lost)

    def add(self, code, detail="", at=None):
        """Record an event now, or at `at` (RTC seconds) for one that happened before it could be recorded; returns
        its sequence number (a refusal counted on the newest one returns that one's)."""
        if at is None and self.clock is not None:
            at = self.clock()
        detail = str(detail)[:DETAIL_MAX]
        now = self.ticks_ms()
        if code in REFUSALS and self._in_burst(now) and self._count and self._entry(self._last)[1] in REFUSALS:
            if self.seq < self.floor:  # a reserved number: in the ring now, on flash when the burst ends
                self._append(code, at, detail)
            else:  # the burst's numbers are used up: counted on the newest refusal
                last = self._entry(self._last)
                base = last[3][: DETAIL_MAX - 7] if self.more == 0 else self.more_base
                rec = self._record(last[0], last[1], last[2], "%s +%d" % (base, self.more + 1))
                # the newest event replaced in one step, and the counts moved once it has been: a MemoryError
                # (the heap is short while a flood is answered) leaves the ring as it was
                self._buf[self._last :] = rec
                self.more += 1
                self.more_base = base
            self.unwritten = True
            return self._entry(self._last)[0]
        self._append(code, at, detail)
        if code in REFUSALS:  # the first of a burst: written now, with the burst's numbers reserved
            self.burst_end = time.ticks_add(now, HOLD_MS)
            self.more = 0
            self._write(self.seq + HELD_MAX)
            return self.seq
        self._write(max(self.floor, self.seq))
        seq = self.seq
        if self.logs is not None and 0 < code <= _CODE_MAX:  # after the ring: a power cut between the two leaves
            self._logs("add", seq, code, at)  # the event in the ring, and its log takes it later if need be
        return seq

    def _logs(self, what, *args):
        """IS 15959's logs take an event ("add") or the ring's events they missed ("settle": at the load, and at a
        reading after a log's write failed, app/event_logs.py RETRY_MS, so the ring does not turn over first)."""
        try:
            damaged = self.compartments(what, *args)
        except MemoryError:  # noqa: B014 - no room to bring the logs' code in: a reading 10 s on settles them
            self.unsettled = time.ticks_add(self.ticks_ms(), 10000)
            return
        for why in damaged:
            self.add(LOG_LOST, why)

    def compartments(self, what, *args):
        """app/event_logs.py's function `what` (add, entries, rows, read, depth) on this log: IS 15959's event logs,
        or the ring's view of a category when the log keeps none (logs None). The module comes onto the heap for the
        one call and leaves it after (about 2 KB a board would otherwise keep for a few events a day)."""
        from app import event_logs

        try:
            return getattr(event_logs, what)(self, *args)
        finally:
            loader.forget("app.event_logs")

    def after(self, seq):
        """(sequence number, code, RTC s or None) of the ring's events above `seq`, oldest first, one at a time and
        without their details: a compartment's read or write looks through the ring without building it whole."""
        k = 0
        while k < len(self._buf):
            s, code, at = struct.unpack_from(_HEAD, self._buf, k + 1)
            if s > seq:
                yield s, code, None if at == _NO_TIME else at
            k += self._buf[k]

    def flush_due(self):
        """Write a burst's refusals once it has ended (called at every reading)."""
        if self.burst_end is not None and not self._in_burst(self.ticks_ms()):
            self.burst_end = None
            if self.unwritten or self.floor > self.seq:  # and give back the numbers it did not use
                self._write(self.seq)
        if self.unsettled is not None and time.ticks_diff(self.ticks_ms(), self.unsettled) >= 0:
            self._logs("settle")

    def since(self, seq=0, limit=CAPACITY):
        """Events with a sequence number above `seq`, oldest first, at most `limit`, as (seq, code, RTC s or None,
        detail) tuples."""
        out = []  # type: list
        k = 0
        while k < len(self._buf) and len(out) < limit:
            e = self._entry(k)
            if e[0] > seq:
                out.append(e)
            k += self._buf[k]
        return out

    def _in_burst(self, now):
        return self.burst_end is not None and time.ticks_diff(self.burst_end, now) > 0

    def _clear(self):
        self._buf = bytearray()
        self._count = 0
        self._last = 0

    def _entry(self, k):
        seq, code, at = struct.unpack_from(_HEAD, self._buf, k + 1)
        return seq, code, None if at == _NO_TIME else at, str(self._buf[k + _HEAD_SIZE + 1 : k + self._buf[k]], "utf-8")

    def _record(self, seq, code, at, detail):
        d = detail.encode()
        return struct.pack(_RECORD, _HEAD_SIZE + 1 + len(d), seq, code, _NO_TIME if at is None else at) + d

    def _pack(self, seq, code, at, detail):
        # the event is built whole, then added in one extend, and the offsets move only once it is in: a MemoryError
        # on the way leaves the ring as it was (an offset moved first pointed past the end, and the next refusal of
        # the burst, reading it back, ended the app with "ValueError: buffer too small" — found by meter-fuzz attack)
        rec = self._record(seq, code, at, detail)
        k = len(self._buf)
        self._buf.extend(rec)
        self._last = k
        self._count += 1
        while self._count > self.capacity:  # the oldest goes: the bytes move down in place
            n = self._buf[0]
            self._buf[0:n] = b""
            self._last -= n
            self._count -= 1

    def _append(self, code, at, detail):
        self.seq += 1
        self._pack(self.seq, code, at, detail)

    def _dump(self, floor, f):
        # the stored record's JSON, written event by event: the ring is never unpacked whole
        f.write('{"seq": %d, "floor": %d, "ring": [' % (self.seq, floor))
        k = 0
        while k < len(self._buf):
            if k:
                f.write(", ")
            json.dump(self._entry(k), f)
            k += self._buf[k]
        f.write("]}")

    def _write(self, floor):
        def dump(_, f):
            self._dump(floor, f)

        try:
            store.write_record(self.path, RECORD, RECORD_VERSION, None, dump)
        except store.TooNew:
            # a newer app's ring (this app was rolled back): kept as it is, never overwritten; this app's events stay
            # in RAM (load started it afresh, event 409 first) and an update back to the newer app finds its own
            pass
        except MemoryError:  # noqa: B014
            import gc

            gc.collect()
            try:
                store.write_record(self.path, RECORD, RECORD_VERSION, None, dump)
            except MemoryError:  # noqa: B014
                # the ring stays readable and the stored copy whole; the next reading tries again (flush_due)
                self.unwritten = True
                self.burst_end = self.ticks_ms()
                return
        self.floor = floor
        self.unwritten = False


def _highest_seq(path):
    """The "seq" of a ring file that did not parse, read in 128-byte pieces: the app's start reads it, where the heap
    may hold no block as large as the file (a MemoryError there at every boot would be a start-up loop)."""
    key = b'"seq": '
    raw = b""
    digits = b""
    try:
        with open(path, "rb") as f:
            while True:
                piece = f.read(128)
                if not piece:
                    return 0
                raw = raw[-(len(key) - 1):] + piece
                k = raw.find(key)
                if k >= 0:
                    digits = raw[k + len(key):]
                    digits += f.read(max(0, 13 - len(digits)))
                    break
    except OSError:
        return 0
    n = 0
    for c in digits[:13]:
        if not 48 <= c <= 57:
            break
        n = n * 10 + c - 48
    return n
