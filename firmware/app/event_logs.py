# IS 15959's event logs: a compartment of its own per event category, so that no kind of event can push another
# out. The ring of app/events.py holds the newest 64 events of every kind (this kit's 4xx codes too, which come as
# fast as anyone can send refused tokens or commands); each IS 15959 code (1-350) is also kept here, in the file of its
# category: 0 voltage (1-50), 1 current (51-100), 2 power (101-150), 3 transaction (151-200), 4 other (201-250),
# 5 non-rollover (251-300: the terminal cover), 6 control (301-350). A compartment rolls over only on events of its
# own category (the newest 50 kept); the non-rollover one never does: it keeps the first 10
# events for the meter's life and counts the rest, so no flood of later events, of any kind, wipes tamper evidence.
# The DLMS event profiles (0.0.99.98.0-6.255, app/dlms_profiles.py) read these. This module is on the heap only for
# one add or read (app/events.py EventLog._compartments brings it in and forgets it after): about 2 KB of a board's
# heap that an app running for years would otherwise keep for a few events a day.
#
# Power cuts: a compartment is written after the ring, by write-then-rename, so a cut leaves its old file or its
# new one. A cut between the ring's write and the compartment's leaves the event in the ring only; the file records
# the highest ring sequence number it has taken ("upto"), and the category's next event takes the ring's missed
# ones first, while a read shows them at once. Nothing here is read at start-up except by the power events' own
# add, which never raises: a damaged entry is dropped (the good ones kept, merged with the ring's), a damaged head
# rebuilds the file from what the ring still holds of its category, the ring says so (409), and a write that failed
# is tried again at a reading (app/events.py RETRY_MS); no stored log can make start-up fail in a loop.
#
# IS 15959's event profiles capture the supply at each event: an entry keeps the voltage, current and power factor
# of the reading the event came in (the DLMS registers' own integers: cV, mA, thousandths) and the import energy
# register (mWh), each unknown when there was none (an event before the first reading after a start, or one a log
# took from the ring later, which keeps no snapshot).
#
# A file: _HEAD (magic and format "EVL" 2, category, events of this category ever, upto), then the events oldest
# first, each _ENTRY (ring sequence number, code, RTC seconds or -1: unknown, V, I, PF, import mWh, each its type's
# _NO_* when unknown), 34 bytes. A format-1 file (an earlier app's: 18-byte entries without the snapshot) is read and
# rewritten as format 2 at its category's next event. Copied through a 272-byte buffer when rewritten: its size on
# the heap does not depend on the depth.
import os
import struct
import time

from micropython import const

from app import registers
from loader import store

_MAGIC = b"EVL"
_FORMAT = const(2)
_HEAD = "<3sBBIQ"  # magic, format, category, total, upto
_HEAD_SIZE = const(17)
_ENTRY = "<QHqHIhQ"  # sequence number, code, RTC s, V (cV), I (mA), PF (thousandths), import energy (mWh)
_ENTRY_SIZE = const(34)
_ENTRY_V1 = "<QHq"  # format 1: sequence number, code, RTC s
_ENTRY_V1_SIZE = const(18)
_NO_V = const(0xFFFF)  # unknown, per field
_NO_I = const(0xFFFFFFFF)
_NO_PF = const(-32768)
_NO_E = const(0xFFFFFFFFFFFFFFFF)
_UNKNOWN = (None, None, None, None)  # a snapshot nobody took
_COPY = const(8)  # entries per piece of a rewrite
_TOTAL_MAX = const(0xFFFFFFFF)
_NON_ROLLOVER = const(5)
_CODE_MAX = const(350)  # IS 15959's codes; above are this kit's, in the ring only
_DEPTH = const(50)  # events a category's log keeps, the newest
_NR_DEPTH = const(10)  # events the non-rollover (tamper) log keeps, the first, for the meter's life
_UPTO_MAX = 1 << 40  # app/events.py SEQ_MAX: a file's `upto` beyond it is damage
RETRY_MS = const(10000)  # a log whose write failed is tried again at a reading this long after, then twice as long
RETRY_MAX_MS = const(3600000)  # ... up to this


def category(code):
    """The IS 15959 category (0 voltage, 1 current, 2 power, 3 transaction, 4 other, 5 non-rollover, 6 control) of an
    event code by its range; None for this kit's own codes (4xx), which are kept in the ring only."""
    if 0 < code <= _CODE_MAX:
        return (code - 1) // 50
    return None


def depth_of(k):
    """How many events category k's log keeps."""
    return _NR_DEPTH if k == _NON_ROLLOVER else _DEPTH


# What app/events.py EventLog.compartments calls, with the log (its ring, and `logs`: the folder, or None for a log
# that keeps no compartments, whose categories are then the ring's view)
def add(log, seq, code, at):
    damaged = []  # type: list
    _outcome(log, EventLogs(log.logs).add(log, seq, code, at, snapshot(log.tick)), damaged)
    return damaged


def snapshot(tick):
    """(V in cV, I in mA, PF in thousandths, import energy in mWh) of the metering's last reading (`tick`, app/tick.py),
    as the DLMS registers give them; None for each not known (no reading yet since the start, no metering)."""
    if tick is None:
        return _UNKNOWN
    e = tick.regs.mwh(registers.IMPORT)
    if tick.ms is None:
        return None, None, None, e
    r = tick.reading
    try:
        return int(round(r.voltage * 100)), int(round(r.current * 1000)), int(round(r.pf * 1000)), e
    except (ValueError, OverflowError, TypeError):  # a reading that is not a number (a damaged front end): the
        return None, None, None, e  # event still goes into its log


def _outcome(log, problem, damaged):
    """What a compartment's write found: None nothing; False it failed (no room on the flash or the heap: the logs
    settle at a reading RETRY_MS on, while the ring still holds the event); else why it was damaged, put in `damaged`
    (app/events.py records each: event 409; this module does not import that one, which imports it)."""
    if problem is False:  # each failure in a row doubles the wait, to RETRY_MAX_MS (a flash that stays full)
        log.retry_ms = min(max(2 * log.retry_ms, RETRY_MS), RETRY_MAX_MS)
        log.unsettled = time.ticks_add(log.ticks_ms(), log.retry_ms)
    elif problem:
        damaged.append(problem)


def entries(log, k):
    """(sequence number, code, RTC s, V, I, PF, import energy) of category k's events, oldest first (snapshot function
    above; None: unknown)."""
    if log.logs is None:
        return [e + _UNKNOWN for e in log.after(-1) if category(e[1]) == k]
    return EventLogs(log.logs).entries(log, k)


def rows(log, k):
    """(RTC s, code, V, I, PF, import energy) of category k's events, oldest first: a DLMS event profile's rows."""
    return [(e[2], e[1]) + e[3:] for e in entries(log, k)]


def depth(log, k):
    """How many events of category k the log can hold (the ring's capacity for a log that keeps no compartments)."""
    return log.capacity if log.logs is None else depth_of(k)


def settle(log):
    """At the log's load: its sequence numbers go on above every compartment's `upto` (a ring restarted lower would
    give numbers a compartment takes as already logged), then each compartment takes the ring's events of its
    category it missed, and one with a damaged head is rebuilt from them (event 409). A write that fails is tried
    again at a reading RETRY_MS on; a file this app cannot read (a newer app's) is left as it is. Returns why any was
    found damaged."""
    log.unsettled = None
    damaged = []  # type: list
    logs = EventLogs(log.logs)
    heads = []
    for k in range(7):
        try:
            heads.append(logs._head(k, _UPTO_MAX))
        except ValueError:
            heads.append((0, 0, 0, _FORMAT))  # damaged: the add below finds it so and rebuilds it
        except OSError:
            heads.append(None)
    top = max([h[1] for h in heads if h is not None] + [0])
    if top > log.seq:
        log.seq = log.floor = top
    for k in range(7):
        newest = None
        for e in log.after(0 if heads[k] is None else heads[k][1]):
            if category(e[1]) == k:
                newest = e
        if newest is not None and heads[k] is not None:
            _outcome(log, logs.add(log, newest[0], newest[1], newest[2], _UNKNOWN), damaged)
    if log.unsettled is None:
        log.retry_ms = 0
    return damaged


def read(log, k):
    """(entries, total, depth) of category k: what SMP's read of a log answers; `total` counts the events the log has
    taken (a full non-rollover log counts those it no longer keeps)."""
    got = entries(log, k)
    total = len(got) if log.logs is None else EventLogs(log.logs).total(log, k)
    return got, total, depth(log, k)


class EventLogs:
    def __init__(self, top):
        self.top = top  # the folder: app/events.py LOGS

    def path(self, k):
        return "%s/%d.bin" % (self.top, k)

    def add(self, ring, seq, code, at, snap):
        """Keep the ring's event `seq` in its category's compartment, after any of the category's ring events the
        file missed (a power cut after the ring's write). Returns None; why the compartment was found damaged (the
        caller records it in the ring); or False when the file could not be written (no room on the flash or the
        heap: it keeps its old content, and the caller tries again while the ring still holds the event). A damaged head rebuilds the file from the ring's events of its category; a
        damaged entry is dropped, and the good ones stay with what the ring holds (the first tamper events may be
        older than anything in the ring). Never raises: this runs in the app's start (the power events)."""
        k = category(code)
        if k is None:
            return None
        try:
            try:
                h = self._head(k, ring.seq)
            except ValueError as e:  # the head: nothing in the file can be trusted
                fresh = _fresh(ring, k, 0, (seq, code, at) + snap)
                self._write(k, len(fresh), seq, fresh)
                return "event log %d damaged: %s" % (k, e)
            if h is None or seq <= h[1]:  # None: a newer app's file, kept as it is (this app reads the ring)
                return None
            fresh = _fresh(ring, k, h[1], (seq, code, at) + snap)
            try:
                self._write(k, h[0] + len(fresh), seq, fresh, h[2], h[1], h[3])
            except ValueError as e:  # an entry, found as it was copied
                kept = [e if e[0] != seq else fresh[-1] for e in self.entries(ring, k)] or fresh
                self._write(k, max(h[0] + len(fresh), len(kept)), seq, kept)
                return "event log %d damaged: %s" % (k, e)
        except (OSError, MemoryError):  # noqa: B014
            return False  # the file keeps its old content; a read takes this event from the ring meanwhile
        except (ValueError, TypeError):
            pass  # (not expected: the file keeps its old content, the category's next event tries again)
        return None

    def entries(self, ring, k):
        """(sequence number, code, RTC s or None) of category k's events, oldest first: the compartment's, then the
        ring's newer ones it has not taken yet; the ring's view alone when the head is damaged or of a newer app. When
        an entry is damaged (not of the category, above the file's `upto`, or out of order), the ring's events of the
        category stand for every number it still holds, and the file's longest run of rising numbers below those is
        kept: the first tamper events outlive the ring (a later opening the ring holds may then take a lost one's
        place among the first ten)."""
        out = []  # type: list
        upto = 0
        bad = False
        mine = {}  # type: dict
        try:
            total, upto, n, fmt = self._head(k, ring.seq) or (0, 0, 0, _FORMAT)
            size = _ENTRY_SIZE if fmt == _FORMAT else _ENTRY_V1_SIZE
            with open(self.path(k), "rb") as f:
                f.seek(_HEAD_SIZE)
                for _ in range(n):
                    raw = f.read(size)
                    try:
                        if len(raw) != size:
                            raise ValueError("short entry")
                        e = _check(_unpack(raw, 0, fmt), k, upto)
                    except ValueError:
                        bad = True
                        continue
                    if out and e[0] <= out[-1][0]:
                        bad = True
                    out.append(e)
        except (OSError, ValueError):
            out = []
            upto = 0
        if bad:
            first = None
            for e in ring.after(-1):  # the ring's oldest number: it holds every event from there on
                first = e[0]
                break
            for e in out:  # the file's good entries the ring also holds keep their snapshot (the ring has none)
                if first is not None and e[0] >= first:
                    mine[e[0]] = e
            out = _rising([e for e in out if first is None or e[0] < first])
            upto = -1
        for e in ring.after(upto):
            if category(e[1]) == k and (k != _NON_ROLLOVER or len(out) < _NR_DEPTH):
                f = mine.get(e[0])
                out.append(f if f is not None and f[1] == e[1] and f[2] == e[2] else e + _UNKNOWN)
        return out[-depth_of(k):] if k != _NON_ROLLOVER else out

    def total(self, ring, k):
        """Events of category k the meter has logged (those a full non-rollover compartment only counts included):
        the compartment's count and the ring's events it has not taken yet; the ring's count when the file cannot be
        read."""
        try:
            total, upto = (self._head(k, ring.seq) or (0, 0))[:2]
        except (OSError, ValueError):
            total = upto = 0
        return total + sum(1 for e in ring.after(upto) if category(e[1]) == k)

    def _head(self, k, newest):
        """(total, upto, entries, format) of compartment k: (0, 0, 0, _FORMAT) when it has no file, None for a newer
        app's; ValueError for damage. `newest`: the ring's newest sequence number (a file that took a later one would hide every event
        up to it)."""
        try:
            size = os.stat(self.path(k))[6]
            with open(self.path(k), "rb") as f:
                raw = f.read(_HEAD_SIZE)
        except OSError:
            return 0, 0, 0, _FORMAT
        if len(raw) < _HEAD_SIZE or raw[:3] != _MAGIC:
            raise ValueError("not an event log")
        _, fmt, cat, total, upto = struct.unpack(_HEAD, raw)
        if fmt > _FORMAT and cat == k:  # (a byte flipped in another's head is damage, not a newer app's file)
            return None
        n, rest = divmod(size - _HEAD_SIZE, _ENTRY_SIZE if fmt == _FORMAT else _ENTRY_V1_SIZE)
        if fmt not in (1, _FORMAT) or cat != k or rest or n > depth_of(k) or n > total or upto > newest:
            raise ValueError("bad head or size")
        return total, upto, n, fmt

    def _write(self, k, total, upto, fresh, keep=0, was=0, fmt=_FORMAT):
        """Rewrite compartment k with `total` events logged and the ring's taken up to `upto`: its `keep` stored
        entries (of format `fmt`, each checked as it is copied against the file's `was`: ValueError) and `fresh`,
        the oldest dropped beyond the depth (the newest dropped instead in the non-rollover compartment)."""
        if k == _NON_ROLLOVER:
            new = fresh[: max(0, _NR_DEPTH - keep)]
            drop = 0
        else:
            new = fresh[-depth_of(k):]
            drop = max(0, keep + len(new) - depth_of(k))
        store.makedirs(self.top)
        path = self.path(k)
        tmp = path + store.TMP_SUFFIX
        buf = bytearray(_COPY * _ENTRY_SIZE)
        with open(tmp, "wb") as out:
            out.write(struct.pack(_HEAD, _MAGIC, _FORMAT, k, min(total, _TOTAL_MAX), upto))
            if keep - drop > 0:
                size = _ENTRY_SIZE if fmt == _FORMAT else _ENTRY_V1_SIZE
                with open(path, "rb") as f:
                    f.seek(_HEAD_SIZE + drop * size)
                    left = keep - drop
                    last = -1
                    while left:
                        m = min(left, _COPY)
                        got = f.readinto(memoryview(buf)[: m * size])
                        if got != m * size:
                            raise OSError(5)  # the file shrank under us: keep the old one
                        for i in range(m):
                            e = _check(_unpack(buf, i * size, fmt), k, was)
                            if e[0] <= last:
                                raise ValueError("entries out of order")
                            last = e[0]
                            if fmt != _FORMAT:  # an earlier app's entry: rewritten in this format
                                out.write(_pack(e))
                        if fmt == _FORMAT:
                            out.write(memoryview(buf)[:got])
                        left -= m
            for e in new:
                out.write(_pack(e))
        os.rename(tmp, path)


def _fresh(ring, k, upto, event):
    """The ring's events of category k after `upto` and before `event` (an entry: seq, code, RTC s and the
    snapshot), then `event`: what a compartment takes."""
    out = [e + _UNKNOWN for e in ring.after(upto) if e[0] < event[0] and category(e[1]) == k]
    out.append(event)
    return out


def _unpack(buf, at, fmt):
    """The entry at offset `at` of `buf`, of format `fmt`, with None for each unknown field."""
    if fmt != _FORMAT:
        seq, code, rtc = struct.unpack_from(_ENTRY_V1, buf, at)
        return (seq, code, None if rtc < 0 else rtc) + _UNKNOWN
    seq, code, rtc, v, i, pf, e = struct.unpack_from(_ENTRY, buf, at)
    return (seq, code, None if rtc < 0 else rtc, None if v == _NO_V else v, None if i == _NO_I else i,
            None if pf == _NO_PF else pf, None if e == _NO_E else e)


def _pack(e):
    """An entry's bytes; a value beyond its field is held one short of the field's limit (the limit means unknown),
    never wrapped."""
    seq, code, rtc, v, i, pf, en = e
    return struct.pack(_ENTRY, seq, code, -1 if rtc is None else rtc, _NO_V if v is None else max(0, min(v, _NO_V - 1)),
                       _NO_I if i is None else max(0, min(i, _NO_I - 1)),
                       _NO_PF if pf is None else max(-32767, min(pf, 32767)), _NO_E if en is None else min(en, _NO_E - 1))


def _check(entry, k, upto):
    """An entry of category k's file: its code in the category, its sequence number no later than the file's."""
    if category(entry[1]) != k or not 0 < entry[0] <= upto:
        raise ValueError("bad entry")
    return entry


def _rising(es):
    """The longest run of `es` (at most a log's depth) whose sequence numbers rise: one damaged number (raised, or
    lowered) costs its own entry, not the ones after it."""
    n = len(es)
    best = [1] * n
    prev = [-1] * n
    end = -1
    for i in range(n):
        for j in range(i):
            if es[j][0] < es[i][0] and best[j] + 1 > best[i]:
                best[i] = best[j] + 1
                prev[i] = j
        if end < 0 or best[i] > best[end]:
            end = i
    out = []
    while end >= 0:
        out.append(es[end])
        end = prev[end]
    out.reverse()
    return out
