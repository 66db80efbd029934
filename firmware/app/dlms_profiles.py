# The meter's profiles and association object (app/dlms_objects.py hands them here; this module is on the heap only
# while one of them is read): IS 15959's instantaneous profile (1.0.94.91.0.255: one row taken when read) and its
# scaler profile (1.0.94.91.3.255), the name plate (0.0.94.91.10.255) and its items, the event profiles
# (0.0.99.98.0-6.255, class 7, with selective access by entry and by range) and their last-event codes
# (0.0.96.11.0-6.255), and the association object (class 15, version 1) whose object list names every object with
# its access rights, which a DLMS tool reads first to learn what the meter has.
#
# The event profiles are the meter's IS 15959 event logs, a compartment per category (app/event_logs.py: 1-50
# voltage, 51-100 current, 101-150 power, 151-200 transaction, 201-250 other, 251-300 non-rollover, 301-350 control;
# the newest 50 of each, the first 10 tamper events for the meter's life): each row is the event's time and code, then
# the current, voltage, power factor and import energy at its reading (null-data where the meter had none: an event
# before the first reading after a start, or one a log took from the ring later), with their scalers in the event
# scaler profile (1.0.94.91.7.255).
from micropython import const

from app import cosem
from app.dlms_names import (
    BLOCK_COLUMNS,
    BLOCK_LOAD,
    BLOCK_SCALERS,
    CLOCK,
    DAILY_COLUMNS,
    DAILY_LOAD,
    DAILY_SCALERS,
    EVENT_LOGS,
    EVENT_SCALERS,
    EVENT_SNAPSHOT,
    INSTANT_PROFILE,
    LAST_EVENT,
    MAX_DEMAND,
    NAME_PLATE,
    PLATE_ITEMS,
    SCALER_PROFILE,
    date_time,
)

# (the classes as private consts, as in app/dlms_objects.py: MicroPython puts a private const's value in the code,
# so the repeat costs no heap; shared public names would each take a module-dict entry and a lookup)
_CLASS_DATA = const(1)
_CLASS_REGISTER = const(3)
_CLASS_EXTENDED = const(4)
_CLASS_PROFILE = const(7)
_CLASS_CLOCK = const(8)
_CLASS_ASSOCIATION = const(15)
_CLASS_DISCONNECT = const(70)
_READ_ONLY = const(1)  # attribute access mode
_ASSOCIATED = const(2)  # association_status
# per class: (version, the attributes it has, those this association reads as a bit mask of their ids, its methods)
_SHAPES = {
    _CLASS_DATA: (0, 2, 0b110, 0),
    _CLASS_REGISTER: (0, 3, 0b1110, 1),
    _CLASS_EXTENDED: (0, 5, 0b111110, 1),
    _CLASS_CLOCK: (0, 9, 0b1110, 6),
    _CLASS_DISCONNECT: (0, 4, 0b11110, 2),
    _CLASS_ASSOCIATION: (1, 9, 0b1101111110, 4),  # every attribute but 7, the secret
    _CLASS_PROFILE: (1, 8, 0b111111110, 2),
}
_CONTEXT_NAME = b"\x60\x85\x74\x05\x08\x01\x01"  # logical-name referencing, no ciphering
_MECHANISM_NONE = b"\x60\x85\x74\x05\x08\x02\x00"  # lowest-level security: no authentication
_CLIENT_SAP = const(16)
_SERVER_SAP = const(1)
# the instantaneous profile's columns (IS 15959's instantaneous parameters this meter has, in its order): the clock,
# V, I, PF, f, VA, W, the import kWh and kVAh, maximum demand and its time, the export kWh
_SNAPSHOT = ((_CLASS_CLOCK, CLOCK, 2),) + tuple((_CLASS_REGISTER, cosem.obis(c), 2) for c in (
    "1.0.12.7.0.255", "1.0.11.7.0.255", "1.0.13.7.0.255", "1.0.14.7.0.255", "1.0.9.7.0.255", "1.0.1.7.0.255",
    "1.0.1.8.0.255", "1.0.9.8.0.255")) + ((_CLASS_EXTENDED, MAX_DEMAND, 2), (_CLASS_EXTENDED, MAX_DEMAND, 5),
                                          (_CLASS_REGISTER, cosem.obis("1.0.2.8.0.255"), 2))
_SCALERS = tuple((cls, obis, 3) for cls, obis, a in _SNAPSHOT if cls != _CLASS_CLOCK and a == 2)
_EVENT_SCALERS = tuple((_CLASS_REGISTER, obis, 3) for obis in EVENT_SNAPSHOT)
# an event row's snapshot columns, as their registers' values: current, voltage, power factor, import energy
_EVENT_TYPES = (cosem.DOUBLE_LONG_UNSIGNED, cosem.LONG_UNSIGNED, cosem.LONG, cosem.LONG64_UNSIGNED)
_EVENT_COLUMNS = const(6)  # the clock, the code, then the snapshot
_BLOCK_SCALERS = tuple((_CLASS_REGISTER, obis, 3) for obis in BLOCK_COLUMNS)
# the block load profile's registers (app/load_profile.py's row after its end): type, scaler, unit (V, A, Wh, VAh, Wh)
_BLOCK_TYPES = ((cosem.LONG_UNSIGNED, -2, 35), (cosem.DOUBLE_LONG_UNSIGNED, -3, 33), (cosem.DOUBLE_LONG_UNSIGNED, -3, 30),
                (cosem.DOUBLE_LONG_UNSIGNED, -3, 31), (cosem.DOUBLE_LONG_UNSIGNED, -3, 30))
_DAILY_SCALERS = tuple((_CLASS_REGISTER, obis, 3) for obis in DAILY_COLUMNS)
_TEMPORARY_FAILURE = const(2)
_PLATE = tuple((_CLASS_DATA, name, 2) for name in PLATE_ITEMS)
# a snapshot profile's attributes 4-8: capture period 0 (taken when read), sort FIFO, no sort object, 1 entry of 1
_PROFILE_ATTRS = (b"\x06\x00\x00\x00\x00", b"\x16\x01", b"\x02\x04\x12\x00\x00\x09\x06\x00\x00\x00\x00\x00\x00\x0f\x00\x12\x00\x00",
                  b"\x06\x00\x00\x00\x01", b"\x06\x00\x00\x00\x01")


def get(objects, cls, obis, attr, access):
    """What app/dlms_objects.py Objects.get hands here (a known object; attribute 1 and selective access on anything
    but an event profile's buffer are answered there)."""
    if cls == _CLASS_ASSOCIATION:
        return _association(objects, attr)
    if cls == _CLASS_PROFILE and obis in (INSTANT_PROFILE, SCALER_PROFILE, NAME_PLATE, EVENT_SCALERS, BLOCK_SCALERS,
                                          DAILY_SCALERS):
        return _snapshot(objects, _SNAPSHOT if obis == INSTANT_PROFILE else (
            _SCALERS if obis == SCALER_PROFILE else (_PLATE if obis == NAME_PLATE else (
                _EVENT_SCALERS if obis == EVENT_SCALERS else (
                    _BLOCK_SCALERS if obis == BLOCK_SCALERS else _DAILY_SCALERS)))), attr)
    if obis in (BLOCK_LOAD, DAILY_LOAD):
        return _stored(objects, obis == BLOCK_LOAD, attr, access)
    if obis in BLOCK_COLUMNS:
        return _block_register(BLOCK_COLUMNS.index(obis), attr)
    if obis in PLATE_ITEMS:
        return cosem.octets(objects.plate[PLATE_ITEMS.index(obis)]) if attr == 2 else cosem.READ_WRITE_DENIED
    if cls == _CLASS_PROFILE:
        return _profile(objects, EVENT_LOGS.index(obis), attr, access)
    if attr != 2:  # a last-event code
        return cosem.READ_WRITE_DENIED
    rows = _rows(objects, LAST_EVENT.index(obis))
    return cosem.number(cosem.LONG_UNSIGNED, rows[-1][1] if rows else 0)


def _capture(cls, obis, attr=2):
    """A capture object definition: {class, logical name, attribute, data index 0}."""
    return cosem.structure(cosem.number(cosem.LONG_UNSIGNED, cls), cosem.octets(obis),
                           cosem.number(cosem.INTEGER, attr), cosem.number(cosem.LONG_UNSIGNED, 0))


def _rtc(dt, tz_offset_min):
    """RTC seconds (UTC) of a COSEM date-time in local time; None when a field is not specified."""
    y, mo, d, hh, mm, ss = (dt[0] << 8) | dt[1], dt[2], dt[3], dt[5], dt[6], dt[7]
    if y == 0xFFFF or 0xFF in (mo, d, hh, mm, ss) or not (1 <= mo <= 12 and 1 <= d <= 31):
        return None
    y -= mo <= 2  # days from the civil date (H. Hinnant's algorithm): no mktime, which is local time on CPython
    era = y // 400
    yoe = y - era * 400
    doe = yoe * 365 + yoe // 4 - yoe // 100 + (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    return (era * 146097 + doe - 719468) * 86400 + hh * 3600 + mm * 60 + ss - tz_offset_min * 60


def _element(cls, obis):
    """One object_list element: class, version, logical name and access rights (read-only attributes, no methods; a
    profile's buffer takes selective access by range and by entry)."""
    version, attrs, readable, methods = _SHAPES[cls]
    a = b"".join(cosem.structure(cosem.number(cosem.INTEGER, i), cosem.number(cosem.ENUM, _READ_ONLY if readable >> i & 1
                                                                             else 0),
                                 b"\x01\x02\x0f\x01\x0f\x02" if i == 2 and (obis in EVENT_LOGS or obis in (BLOCK_LOAD, DAILY_LOAD))
                                 else b"\x00")
                 for i in range(1, attrs + 1))
    m = b"".join(cosem.structure(cosem.number(cosem.INTEGER, i), cosem.number(cosem.ENUM, 0))
                 for i in range(1, methods + 1))
    return cosem.structure(cosem.number(cosem.LONG_UNSIGNED, cls), cosem.number(cosem.UNSIGNED, version),
                           cosem.octets(obis), cosem.structure(cosem.array(attrs, a), cosem.array(methods, m)))


def _rows(objects, k):
    """(RTC s or None, code, V, I, PF, import energy) of category k's events, oldest first (app/event_logs.py)."""
    return objects.log.compartments("rows", k)

def _snapshot(objects, captures, attr):
    """A profile of one row taken when read, of `captures`' values (a value not available is null-data): the
    instantaneous profile, its scaler profile (the same registers' scaler_units), the name plate."""
    if attr == 2:
        cells = []
        for cls, obis, a in captures:
            v = objects.get(cls, obis, a)
            cells.append(v if isinstance(v, bytes) else b"\x00")
        return cosem.array_head(1) + cosem.structure(*cells)
    if attr == 3:
        return cosem.array(len(captures), b"".join(_capture(cls, obis, a) for cls, obis, a in captures))
    if attr in (4, 5, 6, 7, 8):  # capture period (none: taken when read), FIFO, no sort object, one entry of one
        return _PROFILE_ATTRS[attr - 4]
    return cosem.READ_WRITE_DENIED

def _profile(objects, k, attr, access):
    if attr == 2:
        return _buffer(objects, k, access)
    if attr == 3:  # capture_objects: the clock's time, the category's last-event code, the snapshot's registers
        return cosem.array(_EVENT_COLUMNS, _capture(_CLASS_CLOCK, CLOCK) + _capture(_CLASS_DATA, LAST_EVENT[k]) +
                           b"".join(_capture(_CLASS_REGISTER, obis) for obis in EVENT_SNAPSHOT))
    if attr == 4:
        return cosem.number(cosem.DOUBLE_LONG_UNSIGNED, 0)  # capture_period: at each event
    if attr == 5:
        return cosem.number(cosem.ENUM, 1)  # sort_method: fifo
    if attr == 6:
        return _PROFILE_ATTRS[2]  # sort_object: none
    if attr == 7:
        return cosem.number(cosem.DOUBLE_LONG_UNSIGNED, len(_rows(objects, k)))
    if attr == 8:  # profile_entries: the compartment's depth (the ring's, shared by all, on a log without them)
        return cosem.number(cosem.DOUBLE_LONG_UNSIGNED, objects.log.compartments("depth", k))
    return cosem.READ_WRITE_DENIED

def _buffer(objects, k, access):
    """The rows of event profile k, all of them or those `access` selects (by entry: from/to entry and column, 0
    for the last; by range: on the clock's column, local date-times, all columns)."""
    rows = _rows(objects, k)
    sel = _selection(objects, access, _EVENT_COLUMNS)
    if isinstance(sel, int):
        return sel
    lo, hi, e0, e1, first, last = sel
    if lo is not None:
        rows = [r for r in rows if r[0] is not None and lo <= r[0] <= hi]
    rows = rows[e0 - 1:e1 or len(rows)]
    tz = objects.tz()
    out = [cosem.array_head(len(rows))]
    for at, code, v, i, pf, e in rows:
        snap = (i, v, pf, e)
        cells = (cosem.octets(date_time(at, tz)), cosem.number(cosem.LONG_UNSIGNED, code)) + tuple(
            b"\x00" if snap[n] is None else cosem.number(_EVENT_TYPES[n], snap[n]) for n in range(4))
        out.append(cosem.structure(*cells[first:last]))
    return out

def _selection(objects, access, columns):
    """A profile buffer's selective access as (lo, hi, first entry, last entry, first column, end column): by entry
    (from/to entry and value, 1-based, 0 for the last) or by range (on the clock's column, local date-times, all
    columns: lo and hi in RTC s, else None). TYPE_UNMATCHED for anything else."""
    if access is None:
        return None, None, 1, 0, 0, columns
    selector, p = access
    if selector == 2 and len(p) == 18 and p[:3] == b"\x02\x04\x06" and p[7] == 6 and p[12] == 18 and p[15] == 18:
        e0, e1 = int.from_bytes(p[3:7], "big"), int.from_bytes(p[8:12], "big")
        c0, c1 = int.from_bytes(p[13:15], "big"), int.from_bytes(p[16:18], "big")
        if e0 < 1 or c0 < 1 or (e1 and e1 < e0) or (c1 and c1 < c0) or c0 > columns:
            return cosem.TYPE_UNMATCHED
        return None, None, e0, e1, c0 - 1, min(c1 or columns, columns)
    if selector == 1 and len(p) == 50 and p[:2] == b"\x02\x04" and p[2:20] == _capture(_CLASS_CLOCK, CLOCK) \
            and p[20:22] == p[34:36] == b"\x09\x0c" and p[48:] == b"\x01\x00":
        lo, hi = _rtc(p[22:34], objects.tz()), _rtc(p[36:48], objects.tz())
        if lo is None or hi is None:
            return cosem.TYPE_UNMATCHED
        return lo, hi, 1, 0, 0, columns
    return cosem.TYPE_UNMATCHED


def _stored(objects, block, attr, access):
    """IS 15959's block load profile (`block`) or daily load profile (app/load_profile.py): rows read from flash as
    they go out (a generator of pieces: days of rows never sit on the heap at once, app/cosem.py sends them in
    blocks). Their columns: the clock, then the block load registers, or the energy registers at midnight."""
    from app import load_profile

    kind = load_profile.BLOCK if block else load_profile.DAILY
    columns = BLOCK_COLUMNS if block else DAILY_COLUMNS
    if attr == 2:
        sel = _selection(objects, access, len(columns) + 1)
        if isinstance(sel, int):
            return sel
        lo, hi, e0, e1, first, last = sel
        if lo is None:  # every row held, or those by entry: counted by the files' sizes, the first ones skipped so
            n = load_profile.count(kind)
            stop = min(e1 or n, n)
            rows = load_profile.rows(None, None, kind, e0 - 1)
        else:  # by range: only the files in it are read, twice (to count, then to send)
            n = 0
            for _ in load_profile.rows(lo, hi, kind):
                n += 1
            stop, e0 = n, 1
            rows = load_profile.rows(lo, hi, kind)
        return _stored_rows(rows, max(0, stop - e0 + 1), first, last, objects.tz(), block)
    if attr == 3:
        return cosem.array(len(columns) + 1, _capture(_CLASS_CLOCK, CLOCK) +
                           b"".join(_capture(_CLASS_REGISTER, obis) for obis in columns))
    period = objects.period() if block else 86400
    if attr == 4:
        return cosem.number(cosem.DOUBLE_LONG_UNSIGNED, period)
    if attr in (5, 6):
        return cosem.number(cosem.ENUM, 1) if attr == 5 else _PROFILE_ATTRS[2]  # fifo, no sort object
    if attr == 7:
        return cosem.number(cosem.DOUBLE_LONG_UNSIGNED, load_profile.count(kind))
    if attr == 8:  # the most rows the files hold before the oldest goes
        return cosem.number(cosem.DOUBLE_LONG_UNSIGNED, kind.keep * kind.span // period)
    return cosem.READ_WRITE_DENIED


def _stored_rows(rows, count, first, last, tz, block):
    """The buffer's pieces: the array's head, then `count` rows, columns [first, last). A row damaged on the flash
    (None), and one a new file's prune removed between the count and the send, go as null-data: the array stays as
    announced, and entry k stays the k-th row held."""
    yield cosem.array_head(count)
    for row in rows:
        if not count:
            return
        count -= 1
        if row is None:
            yield cosem.structure(*([b"\x00"] * (last - first)))
            continue
        cells = (cosem.octets(date_time(row[0], tz)),) + tuple(
            cosem.number(_BLOCK_TYPES[n][0] if block else cosem.LONG64_UNSIGNED, row[n + 1])
            for n in range(len(row) - 1))
        yield cosem.structure(*cells[first:last])
    while count:
        count -= 1
        yield cosem.structure(*([b"\x00"] * (last - first)))


def _block_register(n, attr):
    """A block load profile register: its newest row's figure (attribute 2), its scaler and unit (3)."""
    tag, scaler, unit = _BLOCK_TYPES[n]
    if attr == 3:
        return cosem.scaler_unit(scaler, unit)
    if attr != 2:
        return cosem.READ_WRITE_DENIED
    from app import load_profile

    newest = load_profile.last()
    return _TEMPORARY_FAILURE if newest is None else cosem.number(tag, newest[n + 1])


def _association(objects, attr):
    if attr == 2:  # object_list: {class, version, name, {attribute access, method access}} per object, in
        names = objects.names()  # pieces (1.5 KB in one block of the heap failed on an ESP32's, in small pieces)
        return [cosem.array_head(len(names))] + [_element(cls, obis) for cls, obis in names]
    if attr == 3:  # associated_partners_id
        return cosem.structure(cosem.number(cosem.INTEGER, _CLIENT_SAP),
                               cosem.number(cosem.LONG_UNSIGNED, _SERVER_SAP))
    if attr == 4:
        return cosem.octets(_CONTEXT_NAME)
    if attr == 5:  # xDLMS_context_info: conformance, max receive and send PDU, version, QoS, cyphering info
        return cosem.structure(b"\x04\x18" + cosem.CONFORMANCE.to_bytes(3, "big"),
                               cosem.number(cosem.LONG_UNSIGNED, cosem.MAX_PDU),
                               cosem.number(cosem.LONG_UNSIGNED, cosem.MAX_PDU),
                               cosem.number(cosem.UNSIGNED, cosem.DLMS_VERSION),
                               cosem.number(cosem.INTEGER, 0), cosem.octets(b""))
    if attr == 6:
        return cosem.octets(_MECHANISM_NONE)
    if attr == 8:
        return cosem.number(cosem.ENUM, _ASSOCIATED)
    if attr == 9:  # security_setup_reference: none (no security in this association)
        return cosem.octets(bytes(6))
    return cosem.READ_WRITE_DENIED
