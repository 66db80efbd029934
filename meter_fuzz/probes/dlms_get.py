"""The meter's COSEM object model (app/dlms_objects.py `Objects.get`) as a GET reaches it through app/cosem.py: any
class, logical name and attribute, with or without a selective access part whose selector and parameters are the
client's bytes, over a fixed meter (a reading, registers, a class-70 control, an event log with events of every
IS 15959 category, some with no time, a block load profile of rows across two days, one of them damaged, and the
supply's limiter and prepaid ledger after a top-up).

Input: byte 0 picks the object: bits 0-5 an index into the meter's own names, or 63 (or an index past them) a name
made of the next 6 bytes, any name (the meter has more than 63 objects: those past 62 are reached by their names);
bit 6 the class taken from the next byte instead of the object's own (a name's own: 7); byte 1 the attribute; then, when
byte 0's bit 7 is set, byte 2 the selector and the rest its parameters.

get() documents no exception (a refusal is a data-access-result number): ERRORS names an exception that is never
raised. Invariants (fuzzcore.Violation):
- the answer is a data-access-result the model documents (2, 3, 4, 9, 12), or bytes, or a list of bytes (a long
  value in pieces), or a generator of bytes (a profile read from flash as it goes out);
- selective access is taken by a profile's buffer only; anything else with it is refused (3);
- a profile's buffer is an array of the category's own events, in the ring's order, each its time and code: all of
  them without a selection, a run of consecutive ones (whole rows or the columns asked for) selected by entry, some
  of them selected by range; never a row the log does not hold;
- the block load profile's buffer likewise: an array of the rows in flash, all of them or a run of them by entry (the
  damaged one as null-data in its place), or readable ones by range, as many as its head says; the daily load
  profile's (none in flash here) an empty array, with or without a selection.
The reads are the meter reader's (client SAP 32); a load profile, load register, prepaid amount or the alert push
setup's attributes but the logical name are refused the public client (3) whatever the request.
"""

import fuzzcore
from fuzzcore import check

from app import (
    cosem,
    credit_store,
    dlms_load,
    dlms_names,
    dlms_objects,
    dlms_profiles,
    dlms_push,
    dlms_supply,
    dsp,
    events,
    load_limit,
    load_profile,
    registers,
)
from app.tick import Tick

_CLASS_INCONSISTENT = 9


class NoError(Exception):
    """Never raised: get() documents no exception for any request."""


ERRORS = (NoError,)
MODULES = ("app/dlms_objects.py", "app/dlms_profiles.py", "app/dlms_load.py", "app/dlms_select.py",
           "app/load_profile.py", "app/dlms_supply.py", "app/dlms_push.py")
MEM_BASE = 48 * 1024
MEM_PER_BYTE = 64
_T0 = 1764547200
_ANSWERS = (2, 3, 4, 9, 12)


# The event log: app/events.py's own, its ring packed in RAM as its load does (no file written), without the
# compartments of app/event_logs.py (their files have their own tests and the boot_records target): the profiles read
# the ring's view of each category.
_LOG = events.EventLog()
for _k, _code in enumerate((101, 102, 1, 51, 151, 157, 201, 209, 251, 301, 302, 303, 410, 101, 102, 12, 68, 350, 0, 399,
                            50, 100, 150, 200, 250, 300, 351)):  # each category's last code, and the first past them
    _LOG._pack(_k + 1, _code, None if _k % 5 == 4 else _T0 + 900 * _k, "")


class _Control:
    output, state, mode = True, 1, 6


class _Supply:  # the limiter's settings and the prepaid ledger (app/dlms_supply.py), a top-up recorded
    limit = load_limit.LoadLimit(load_limit.parse({"threshold_w": 4500}))
    store = credit_store.CreditStore()
    prepaid = True


_Supply.store.ledger.credit(25000)
_Supply.store.last = [_T0, 25000]
_TICK = Tick(dsp.Reading(), registers.Registers())
_OBJECTS = dlms_objects.Objects(_TICK, _Control(), b"MKT0000000000042", lambda: 330, _LOG,
                                (b"meter-42", b"MKTmeter-42", b"MeterKit", b"1.2.3", b"5-60 A"), lambda: 900, _Supply,
                                ({"ip": "10.64.0.1", "port": 1337, "uplink_s": 0, "dlms_port": 4059}, 3, 60))
# the block load profile's rows (written in setup(), the third damaged there): 15 minutes apart across a UTC midnight
_BLOCK = [(_T0 - 86400 + 900 * (90 + k), 23000 + k, 4000 + 7 * k, 250000 + k, 260000 - k, k) for k in range(12)]
_DAMAGED = 2
# A meter takes app/dlms_profiles.py off the heap after each read of a profile (Objects._more); a probe that did so
# would import it again for every input, a cost of the harness, not of the input: one read is always "under way",
# and the module is imported here, with the probe, so that the fuzzer instruments it.
_OBJECTS._depth = 1


def setup():
    fuzzcore.keep_loaded("app.event_logs")  # the event profiles' rows (app/events.py compartments), likewise
    fuzzcore.keep_loaded("app.load_profile")  # and the block load profile's
    import os

    fuzzcore.scratch("dlms_get")  # the profile's files: read by the inputs, never written
    os.mkdir("meter")
    for row in _BLOCK:
        load_profile.capture(row)
    path = load_profile.DIR + "/" + str(_BLOCK[_DAMAGED][0] // 86400)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[load_profile.SIZE * _DAMAGED + 3] ^= 1  # its end: the CRC fails
    with open(path, "wb") as f:
        f.write(data)


assert dlms_profiles.get and dlms_load.get and dlms_supply.get and dlms_push.get
_NAMES = list(_OBJECTS.names())
_BY_NAME = 63  # byte 0's index that takes the object's name from the input
_ROWS = {}  # category -> its rows' encodings, by columns (first, last): the time, the code, then the supply's four
for _k in range(7):  # figures at the event (null-data: this log has no metering behind it)
    _rows = [(e[2], e[1]) for e in _LOG.ring if 0 < e[1] < 351 and (e[1] - 1) // 50 == _k]
    _ROWS[_k] = {
        (c0, c1): [cosem.structure(*((cosem.octets(dlms_objects.date_time(at, 330)),
                                      cosem.number(cosem.LONG_UNSIGNED, code)) + (b"\x00",) * 4)[c0:c1])
                   for at, code in _rows]
        for c0 in range(6) for c1 in range(c0 + 1, 7)}


_BLOCK_TYPES = (cosem.LONG_UNSIGNED,) + (cosem.DOUBLE_LONG_UNSIGNED,) * 4
_BLOCK_ROWS = {  # columns (first, last) -> the rows' encodings as the profile sends them (the damaged one null-data)
    (c0, c1): [cosem.structure(*(((cosem.octets(dlms_objects.date_time(r[0], 330)),) + tuple(
        cosem.number(_BLOCK_TYPES[n], r[n + 1]) for n in range(5)))[c0:c1] if k != _DAMAGED else
        (b"\x00",) * (c1 - c0)))
        for k, r in enumerate(_BLOCK)]
    for c0 in range(6) for c1 in range(c0 + 1, 7)}
_BLOCK_READABLE = [r for k, r in enumerate(_BLOCK_ROWS[(0, 6)]) if k != _DAMAGED]  # what a range can select


def _is_run(rows, of):
    n = len(rows)
    return any(of[i:i + n] == rows for i in range(len(of) - n + 1)) if n else True


def _is_subsequence(rows, of):
    i = 0
    for r in rows:
        while i < len(of) and of[i] != r:
            i += 1
        if i == len(of):
            return False
        i += 1
    return True


def _whole(v):
    return v if isinstance(v, bytes) else b"".join(v)


def run(data):
    if len(data) < 2:
        return None
    pick = data[0]
    k = pick & 0x3F
    rest = data[1:]
    if k < min(_BY_NAME, len(_NAMES)):
        cls, obis = _NAMES[k]
    else:
        obis, rest = bytes(rest[:6]), rest[6:]
        cls = 7
    if pick & 0x40 and rest:
        cls, rest = rest[0], rest[1:]
    if not rest:
        return None
    attr, rest = rest[0], rest[1:]
    access = None
    if pick & 0x80 and rest:
        access = (rest[0], bytes(rest[1:]))
    v = _OBJECTS.get(cls, obis, attr, access, cosem.READER_CLIENT)
    if _OBJECTS.private(obis) and attr != 1 and v not in (cosem.OBJECT_UNDEFINED, _CLASS_INCONSISTENT):
        check(_OBJECTS.get(cls, obis, attr, access, cosem.PUBLIC_CLIENT) == cosem.READ_WRITE_DENIED,
              "the public client read %r attribute %d" % (obis, attr))
    if isinstance(v, int):
        check(v in _ANSWERS, "data-access-result %r" % v)
        return v
    if not isinstance(v, (bytes, list)):  # a generator: what goes out, piece by piece
        v = list(v)
    check(isinstance(v, (bytes, list)) and all(isinstance(p, bytes) for p in ([v] if isinstance(v, bytes) else v)),
          "an answer of type %r" % type(v))
    block = cls == 7 and obis == dlms_names.LOAD_PROFILES[:6] and attr == 2  # the block load profile
    if block:
        check(isinstance(v, list) and v[0][0] == cosem.ARRAY and v[0] == cosem.array_head(len(v) - 1),
              "a block load buffer that is not an array of its rows")
        rows = v[1:]
        if access is None:
            check(rows == _BLOCK_ROWS[(0, 6)], "not every block load row in its place")
        elif access[0] == 2:
            check(any(_is_run(rows, own) for own in _BLOCK_ROWS.values()), "block load rows by entry not a run")
        else:
            check(_is_subsequence(rows, _BLOCK_READABLE), "block load rows by range the profile does not hold")
        return len(v)
    # (this meter holds no daily load or billing rows)
    if cls == 7 and obis in (dlms_names.LOAD_PROFILES[6:12], dlms_names.LOAD_PROFILES[12:18]) and attr == 2:
        check(_whole(v) == cosem.array_head(0), "daily load or billing rows this meter does not hold")
        return 0
    profile = cls == 7 and obis in dlms_objects.EVENT_LOGS and attr == 2
    if cls == 7 and obis in (dlms_objects.INSTANT_PROFILE, dlms_objects.SCALER_PROFILE) and attr == 2:
        check(isinstance(v, bytes) and v[:4] == b"\x01\x01\x02" + bytes((12 if obis == dlms_objects.INSTANT_PROFILE
                                                                             else 10,)), "a snapshot of another shape")
    check(access is None or profile, "selective access taken by %r attribute %d" % (obis, attr))
    if profile:
        check(isinstance(v, list) and v[0][0] == cosem.ARRAY, "a buffer that is not an array")
        rows = v[1:]
        check(v[0] == cosem.array_head(len(rows)), "an array head that does not count its rows")
        own = _ROWS[dlms_objects.EVENT_LOGS.index(obis)]
        if access is None:
            check(rows == own[(0, 6)], "not every event of the category")
        elif access[0] == 2:
            check(any(_is_run(rows, own[c]) for c in own), "rows by entry that are not a run of the category's")
        else:
            check(_is_subsequence(rows, own[(0, 6)]), "rows by range the log does not hold, or out of order")
    return len(v)
