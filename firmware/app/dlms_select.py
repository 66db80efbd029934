# What the meter's profile objects share (app/dlms_profiles.py for the snapshots and event profiles, app/dlms_load.py
# for the stored load profiles): a capture object's definition, a profile's selective access, a snapshot profile's
# attributes. A module of its own so that a read of one kind of profile brings only its own code onto the heap
# (each is imported for one read and forgotten after: app/dlms_objects.py Objects._more).
from micropython import const

from app import cosem
from app.dlms_names import CLOCK

_CLASS_CLOCK = const(8)
# a snapshot profile's attributes 4-8: capture period 0 (taken when read), sort FIFO, no sort object, 1 entry of 1
PROFILE_ATTRS = (b"\x06\x00\x00\x00\x00", b"\x16\x01", b"\x02\x04\x12\x00\x00\x09\x06\x00\x00\x00\x00\x00\x00\x0f\x00\x12\x00\x00",
                  b"\x06\x00\x00\x00\x01", b"\x06\x00\x00\x00\x01")


def capture(cls, obis, attr=2):
    """A capture object definition: {class, logical name, attribute, data index 0}."""
    return cosem.structure(cosem.number(cosem.LONG_UNSIGNED, cls), cosem.octets(obis),
                           cosem.number(cosem.INTEGER, attr), cosem.number(cosem.LONG_UNSIGNED, 0))


def rtc(dt, tz_offset_min):
    """RTC seconds (UTC) of a COSEM date-time in local time; None when a field is not specified."""
    y, mo, d, hh, mm, ss = (dt[0] << 8) | dt[1], dt[2], dt[3], dt[5], dt[6], dt[7]
    if y == 0xFFFF or 0xFF in (mo, d, hh, mm, ss) or not (1 <= mo <= 12 and 1 <= d <= 31):
        return None
    y -= mo <= 2  # days from the civil date (H. Hinnant's algorithm): no mktime, which is local time on CPython
    era = y // 400
    yoe = y - era * 400
    doe = yoe * 365 + yoe // 4 - yoe // 100 + (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    return (era * 146097 + doe - 719468) * 86400 + hh * 3600 + mm * 60 + ss - tz_offset_min * 60


def snapshot(objects, captures, attr, client):
    """A profile of one row taken when read, of `captures`' values (a value not available is null-data): the
    instantaneous profile, its scaler profile (the same registers' scaler_units), the name plate. Its cells are read
    with the rights of the client reading the profile."""
    if attr == 2:
        cells = []
        for cls, obis, a in captures:
            v = objects.get(cls, obis, a, None, client)
            cells.append(v if isinstance(v, bytes) else b"\x00")
        return cosem.array_head(1) + cosem.structure(*cells)
    if attr == 3:
        return cosem.array(len(captures), b"".join(capture(cls, obis, a) for cls, obis, a in captures))
    if attr in (4, 5, 6, 7, 8):  # capture period (none: taken when read), FIFO, no sort object, one entry of one
        return PROFILE_ATTRS[attr - 4]
    return cosem.READ_WRITE_DENIED

def selection(objects, access, columns):
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
    if selector == 1 and len(p) == 50 and p[:2] == b"\x02\x04" and p[2:20] == capture(_CLASS_CLOCK, CLOCK) \
            and p[20:22] == p[34:36] == b"\x09\x0c" and p[48:] == b"\x01\x00":
        lo, hi = rtc(p[22:34], objects.tz()), rtc(p[36:48], objects.tz())
        if lo is None or hi is None:
            return cosem.TYPE_UNMATCHED
        return lo, hi, 1, 0, 0, columns
    return cosem.TYPE_UNMATCHED
