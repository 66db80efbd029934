# The meter's COSEM objects as the public client reads them (IS 15959-2 names, STANDARDS.md): the `get` that
# app/cosem.py's Association calls, over what the meter already keeps — the last metering reading and the energy
# registers (app/tick.py Tick), the RTC and the calendar's time zone, the class-70 disconnect control and the meter's
# identity, the event log (app/events.py) as IS 15959's event profiles (class 7, one per category, with selective
# access by entry and by range) and their last-event codes — and the association object (class 15, version 1) that
# lists them all with their access rights, which a DLMS tool reads first to learn what the meter has. Read-only:
# nothing here changes the meter.
#
# The event profiles are views of the one ring of app/events.py (64 events of every kind; IS 15959's own codes only,
# below 400, by its ranges: 1-50 voltage, 51-100 current, 101-150 power, 151-200 transaction, 201-250 other, 251-300
# non-rollover, 301-350 control): each row is the event's time and code (the IS 15959 profiles' snapshot of current,
# voltage, power factor and energy at the event are not kept by the ring), and the "non-rollover" one rolls over
# with the ring: a compartment of its own is still to build (docs/SECURITY.md).
#
# Values are integers with a scaler, as DLMS registers carry them: volts in 0.01 V, amperes in mA, watts, vars and
# volt-amperes whole, the power factor in thousandths, hertz in 0.01 Hz, energy in mWh (the registers' own exact
# integers: app/registers.py). Before the first reading an instantaneous value is "temporary failure" (2), not a 0
# that a head-end would store; a clock that lost power is sent "not specified" (0xFF) with clock status invalid.
import time

from micropython import const

from app import cosem, registers
from loader import wallclock

_TEMPORARY_FAILURE = const(2)
_CLASS_INCONSISTENT = const(9)
_NOT_SPECIFIED = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\x01"  # a date-time nobody knows: status invalid
_CLASS_DATA = const(1)
_CLASS_REGISTER = const(3)
_CLASS_EXTENDED = const(4)
_CLASS_CLOCK = const(8)
_CLASS_DISCONNECT = const(70)
_CLASS_ASSOCIATION = const(15)
_CLASS_PROFILE = const(7)
_CATEGORIES = const(7)  # IS 15959's event categories: 0 voltage ... 6 control
_CODE_LIMIT = const(351)  # IS 15959's codes end at the control category's range
_READ_ONLY = const(1)  # attribute access mode
_ASSOCIATED = const(2)  # association_status
# DLMS units (Blue Book table of units)
_W = const(27)
_VA = const(28)
_VAR = const(29)
_WH = const(30)
_VAH = const(31)
_VARH = const(32)
_A = const(33)
_V = const(35)
_HZ = const(44)
_NONE = const(255)

LDN = cosem.obis("0.0.42.0.0.255")  # logical device name
MANUFACTURER = b"MeterKit"  # the name plate's manufacturer (the logical device name's three letters are MKT)
CLOCK = cosem.obis("0.0.1.0.0.255")
DISCONNECT = cosem.obis("0.0.96.3.10.255")
MAX_DEMAND = cosem.obis(registers.MD_OBIS)
ASSOCIATION = cosem.obis("0.0.40.0.0.255")  # the current association
PUBLIC_ASSOCIATION = cosem.obis("0.0.40.0.1.255")  # IS 15959's name for the public client's
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
EVENT_LOGS = tuple(cosem.obis("0.0.99.98.%d.255" % k) for k in range(_CATEGORIES))
INSTANT_PROFILE = cosem.obis("1.0.94.91.0.255")  # IS 15959's instantaneous profile: one row, taken when read
SCALER_PROFILE = cosem.obis("1.0.94.91.3.255")  # and its scaler profile: the same registers' scalers and units
NAME_PLATE = cosem.obis("0.0.94.91.10.255")  # IS 15959's name plate details: one row of the items below
# the name plate's items (class 1, octet-strings): serial number, manufacturer, firmware version, current rating
PLATE_ITEMS = tuple(cosem.obis(c) for c in ("0.0.96.1.0.255", "0.0.96.1.1.255", "1.0.0.2.0.255", "0.0.94.91.12.255"))
LAST_EVENT = tuple(cosem.obis("0.0.96.11.%d.255" % k) for k in range(_CATEGORIES))
_CONTEXT_NAME = b"\x60\x85\x74\x05\x08\x01\x01"  # logical-name referencing, no ciphering
_MECHANISM_NONE = b"\x60\x85\x74\x05\x08\x02\x00"  # lowest-level security: no authentication
_CLIENT_SAP = const(16)
_SERVER_SAP = const(1)
# instantaneous registers: (OBIS, Reading attribute, A-XDR type, scale to the integer, scaler, unit)
INSTANT = (
    (cosem.obis("1.0.12.7.0.255"), "voltage", cosem.LONG_UNSIGNED, 100, -2, _V),
    (cosem.obis("1.0.11.7.0.255"), "current", cosem.DOUBLE_LONG_UNSIGNED, 1000, -3, _A),
    (cosem.obis("1.0.1.7.0.255"), "p", cosem.DOUBLE_LONG, 1, 0, _W),
    (cosem.obis("1.0.3.7.0.255"), "q", cosem.DOUBLE_LONG, 1, 0, _VAR),
    (cosem.obis("1.0.9.7.0.255"), "s", cosem.DOUBLE_LONG_UNSIGNED, 1, 0, _VA),
    (cosem.obis("1.0.13.7.0.255"), "pf", cosem.LONG, 1000, -3, _NONE),
    (cosem.obis("1.0.14.7.0.255"), "frequency", cosem.LONG_UNSIGNED, 100, -2, _HZ),
)
ENERGY = tuple(cosem.obis(code) for code in registers.OBIS)
# the instantaneous profile's columns (IS 15959's instantaneous parameters this meter has, in its order): the clock,
# V, I, PF, f, VA, W, the import kWh and kVAh, maximum demand and its time, the export kWh
_SNAPSHOT = ((_CLASS_CLOCK, CLOCK, 2),) + tuple((_CLASS_REGISTER, cosem.obis(c), 2) for c in (
    "1.0.12.7.0.255", "1.0.11.7.0.255", "1.0.13.7.0.255", "1.0.14.7.0.255", "1.0.9.7.0.255", "1.0.1.7.0.255",
    "1.0.1.8.0.255", "1.0.9.8.0.255")) + ((_CLASS_EXTENDED, MAX_DEMAND, 2), (_CLASS_EXTENDED, MAX_DEMAND, 5),
                                          (_CLASS_REGISTER, cosem.obis("1.0.2.8.0.255"), 2))
_SCALERS = tuple((cls, obis, 3) for cls, obis, a in _SNAPSHOT if cls != _CLASS_CLOCK and a == 2)
_PLATE = tuple((_CLASS_DATA, name, 2) for name in PLATE_ITEMS)
# a snapshot profile's attributes 4-8: capture period 0 (taken when read), sort FIFO, no sort object, 1 entry of 1
_PROFILE_ATTRS = (b"\x06\x00\x00\x00\x00", b"\x16\x01", b"\x02\x04\x12\x00\x00\x09\x06\x00\x00\x00\x00\x00\x00\x0f\x00\x12\x00\x00",
                  b"\x06\x00\x00\x00\x01", b"\x06\x00\x00\x00\x01")
_ENERGY_UNITS = (_WH, _WH, _VARH, _VARH, _VAH)  # by register index; the TOU zones are Wh


def logical_device_name(meter_id):
    """16 octets: the manufacturer's three letters (IS 15959: its FLAG id), then the meter id's last 13 characters,
    zero-padded."""
    tail = meter_id.encode()[-13:]
    return b"MKT" + b"0" * (13 - len(tail)) + tail


def date_time(rtc, tz_offset_min):
    """A COSEM date-time (12 octets) of RTC seconds (UTC) in local time; deviation not specified (0x8000), as
    IS 15959 meters send it; status 0. None gives the not-specified value with status invalid."""
    if rtc is None:
        return _NOT_SPECIFIED
    t = time.gmtime(rtc + tz_offset_min * 60 - wallclock.PORT_EPOCH_S)
    return bytes((t[0] >> 8, t[0] & 0xFF, t[1], t[2], t[6] + 1, t[3], t[4], t[5], 0, 0x80, 0x00, 0))


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
                                 b"\x01\x02\x0f\x01\x0f\x02" if i == 2 and obis in EVENT_LOGS else b"\x00")
                 for i in range(1, attrs + 1))
    m = b"".join(cosem.structure(cosem.number(cosem.INTEGER, i), cosem.number(cosem.ENUM, 0))
                 for i in range(1, methods + 1))
    return cosem.structure(cosem.number(cosem.LONG_UNSIGNED, cls), cosem.number(cosem.UNSIGNED, version),
                           cosem.octets(obis), cosem.structure(cosem.array(attrs, a), cosem.array(methods, m)))


def _clamped(tag, v):
    try:
        return cosem.number(tag, v)
    except ValueError:  # a value beyond the type (a damaged front end): the type's limit, never a wrong number
        lo_hi = {cosem.LONG_UNSIGNED: (0, 65535), cosem.LONG: (-32768, 32767),
                 cosem.DOUBLE_LONG_UNSIGNED: (0, 4294967295), cosem.DOUBLE_LONG: (-2147483648, 2147483647)}[tag]
        return cosem.number(tag, max(lo_hi[0], min(lo_hi[1], v)))


class Objects:
    """`get(class_id, obis, attribute, access)` for cosem.Association. `tick` is the metering's Tick (its reading and
    registers), `control` the class-70 DisconnectControl (or None on a meter without a relay), `tz_offset_min` a
    callable giving the calendar's offset, `name` the logical device name (bytes, at most 16), `log` the event log
    (app/events.py EventLog; None: no event profiles)."""

    def __init__(self, tick, control, name, tz_offset_min, log=None, plate=None):
        self.tick = tick
        self.control = control
        self.name = name
        self.tz = tz_offset_min
        self.log = log
        self.plate = plate  # the name plate's items (bytes each, PLATE_ITEMS' order), None: no name plate

    def get(self, cls, obis, attr, access=None):
        if access is not None and not (cls == _CLASS_PROFILE and attr == 2 and obis in EVENT_LOGS
                                       and self._known(cls, obis)):
            return cosem.READ_WRITE_DENIED  # selective access: the event profiles' buffers only
        if not self._known(cls, obis):
            for other in _SHAPES:
                if other != cls and self._known(other, obis):
                    return _CLASS_INCONSISTENT  # the name is the meter's, under another class
            return cosem.OBJECT_UNDEFINED
        if attr == 1:  # every object's logical name
            return cosem.octets(obis)
        if cls == _CLASS_ASSOCIATION:
            return self._association(attr)
        if cls == _CLASS_PROFILE and obis in (INSTANT_PROFILE, SCALER_PROFILE, NAME_PLATE):
            return self._snapshot(_SNAPSHOT if obis == INSTANT_PROFILE else
                                  (_SCALERS if obis == SCALER_PROFILE else _PLATE), attr)
        if cls == _CLASS_DATA and obis in PLATE_ITEMS:
            return cosem.octets(self.plate[PLATE_ITEMS.index(obis)]) if attr == 2 else cosem.READ_WRITE_DENIED
        if cls == _CLASS_PROFILE:
            return self._profile(EVENT_LOGS.index(obis), attr, access)
        if cls == _CLASS_DATA and obis in LAST_EVENT:
            if attr != 2:
                return cosem.READ_WRITE_DENIED
            rows = self._rows(LAST_EVENT.index(obis))
            return cosem.number(cosem.LONG_UNSIGNED, rows[-1][1] if rows else 0)
        if cls == _CLASS_REGISTER:
            return self._register(obis, attr)
        if cls == _CLASS_EXTENDED and obis == MAX_DEMAND:
            regs = self.tick.regs
            if attr == 2:
                return _clamped(cosem.DOUBLE_LONG_UNSIGNED, int(regs.md_w))
            if attr == 3:
                return cosem.scaler_unit(0, _W)
            if attr == 4:
                return b"\x00"  # status: null-data (the meter keeps none for its demand)
            if attr == 5:
                return cosem.octets(date_time(regs.md_at, self.tz()))
            return cosem.READ_WRITE_DENIED
        if cls == _CLASS_CLOCK and obis == CLOCK:
            if attr == 2:
                return cosem.octets(date_time(wallclock.rtc_now(), self.tz()))
            if attr == 3:
                return cosem.number(cosem.LONG, -self.tz())  # minutes from local time to UTC (Blue Book's sign)
            return cosem.READ_WRITE_DENIED
        if cls == _CLASS_DATA and obis == LDN:
            return cosem.octets(self.name) if attr == 2 else cosem.READ_WRITE_DENIED
        if cls == _CLASS_DISCONNECT and obis == DISCONNECT and self.control is not None:
            c = self.control
            if attr == 2:
                return cosem.number(cosem.BOOLEAN, c.output)
            if attr == 3:
                return cosem.number(cosem.ENUM, c.state)
            if attr == 4:
                return cosem.number(cosem.ENUM, c.mode)
            return cosem.READ_WRITE_DENIED
        return cosem.OBJECT_UNDEFINED

    def _known(self, cls, obis):
        if cls == _CLASS_REGISTER:
            return obis in ENERGY or any(row[0] == obis for row in INSTANT)
        if self.log is not None and ((cls == _CLASS_PROFILE and obis in EVENT_LOGS)
                                     or (cls == _CLASS_DATA and obis in LAST_EVENT)):
            return True
        if self.plate is not None and ((cls == _CLASS_PROFILE and obis == NAME_PLATE)
                                       or (cls == _CLASS_DATA and obis in PLATE_ITEMS)):
            return True
        return (cls, obis) in ((_CLASS_EXTENDED, MAX_DEMAND), (_CLASS_CLOCK, CLOCK), (_CLASS_DATA, LDN),
                               (_CLASS_ASSOCIATION, ASSOCIATION), (_CLASS_ASSOCIATION, PUBLIC_ASSOCIATION),
                               (_CLASS_PROFILE, INSTANT_PROFILE), (_CLASS_PROFILE, SCALER_PROFILE)) or (
            cls == _CLASS_DISCONNECT and obis == DISCONNECT and self.control is not None)

    def names(self):
        """(class, OBIS) of every object this association reads, in the order of the object list."""
        out = [(_CLASS_REGISTER, row[0]) for row in INSTANT] + [(_CLASS_REGISTER, code) for code in ENERGY]
        out += [(_CLASS_EXTENDED, MAX_DEMAND), (_CLASS_CLOCK, CLOCK), (_CLASS_DATA, LDN),
                (_CLASS_PROFILE, INSTANT_PROFILE), (_CLASS_PROFILE, SCALER_PROFILE)]
        if self.plate is not None:
            out += [(_CLASS_PROFILE, NAME_PLATE)] + [(_CLASS_DATA, name) for name in PLATE_ITEMS]
        if self.control is not None:
            out.append((_CLASS_DISCONNECT, DISCONNECT))
        if self.log is not None:
            out += [(_CLASS_PROFILE, name) for name in EVENT_LOGS] + [(_CLASS_DATA, name) for name in LAST_EVENT]
        out += [(_CLASS_ASSOCIATION, ASSOCIATION), (_CLASS_ASSOCIATION, PUBLIC_ASSOCIATION)]
        return out

    def _rows(self, k):
        """(RTC s or None, code) of the ring's events of category k, oldest first."""
        return [(e[2], e[1]) for e in self.log.ring if 0 < e[1] < _CODE_LIMIT and (e[1] - 1) // 50 == k]

    def _snapshot(self, captures, attr):
        """A profile of one row taken when read, of `captures`' values (a value not available is null-data): the
        instantaneous profile, its scaler profile (the same registers' scaler_units), the name plate."""
        if attr == 2:
            cells = []
            for cls, obis, a in captures:
                v = self.get(cls, obis, a)
                cells.append(v if isinstance(v, bytes) else b"\x00")
            return cosem.array_head(1) + cosem.structure(*cells)
        if attr == 3:
            return cosem.array(len(captures), b"".join(_capture(cls, obis, a) for cls, obis, a in captures))
        if attr in (4, 5, 6, 7, 8):  # capture period (none: taken when read), FIFO, no sort object, one entry of one
            return _PROFILE_ATTRS[attr - 4]
        return cosem.READ_WRITE_DENIED

    def _profile(self, k, attr, access):
        if attr == 2:
            return self._buffer(k, access)
        if attr == 3:  # capture_objects: the clock's time and the category's last-event code
            return cosem.array(2, _capture(_CLASS_CLOCK, CLOCK) + _capture(_CLASS_DATA, LAST_EVENT[k]))
        if attr == 4:
            return cosem.number(cosem.DOUBLE_LONG_UNSIGNED, 0)  # capture_period: at each event
        if attr == 5:
            return cosem.number(cosem.ENUM, 1)  # sort_method: fifo
        if attr == 6:
            return _PROFILE_ATTRS[2]  # sort_object: none
        if attr == 7:
            return cosem.number(cosem.DOUBLE_LONG_UNSIGNED, len(self._rows(k)))
        if attr == 8:  # profile_entries: the ring's, which every category shares
            return cosem.number(cosem.DOUBLE_LONG_UNSIGNED, self.log.capacity)
        return cosem.READ_WRITE_DENIED

    def _buffer(self, k, access):
        """The rows of event profile k, all of them or those `access` selects (by entry: from/to entry and column, 0
        for the last; by range: on the clock's column, local date-times, all columns)."""
        rows = self._rows(k)
        first, last = 0, 2
        if access is not None:
            selector, p = access
            if selector == 2 and len(p) == 18 and p[:3] == b"\x02\x04\x06" and p[7] == 6 and p[12] == 18 \
                    and p[15] == 18:
                e0, e1 = int.from_bytes(p[3:7], "big"), int.from_bytes(p[8:12], "big")
                c0, c1 = int.from_bytes(p[13:15], "big"), int.from_bytes(p[16:18], "big")
                if e0 < 1 or c0 < 1 or (e1 and e1 < e0) or (c1 and c1 < c0) or c0 > 2:
                    return cosem.TYPE_UNMATCHED
                rows = rows[e0 - 1:e1 or len(rows)]
                first, last = c0 - 1, min(c1 or 2, 2)
            elif selector == 1 and len(p) == 50 and p[:2] == b"\x02\x04" and p[2:20] == _capture(_CLASS_CLOCK, CLOCK) \
                    and p[20:22] == p[34:36] == b"\x09\x0c" and p[48:] == b"\x01\x00":
                lo, hi = _rtc(p[22:34], self.tz()), _rtc(p[36:48], self.tz())
                if lo is None or hi is None:
                    return cosem.TYPE_UNMATCHED
                rows = [r for r in rows if r[0] is not None and lo <= r[0] <= hi]
            else:
                return cosem.TYPE_UNMATCHED
        tz = self.tz()
        out = [cosem.array_head(len(rows))]
        for at, code in rows:
            cells = (cosem.octets(date_time(at, tz)), cosem.number(cosem.LONG_UNSIGNED, code))[first:last]
            out.append(cosem.structure(*cells))
        return out

    def _association(self, attr):
        if attr == 2:  # object_list: {class, version, name, {attribute access, method access}} per object, in
            names = self.names()  # pieces (1.5 KB in one block of the heap failed on an ESP32's, in small pieces)
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

    def _register(self, obis, attr):
        for code, name, tag, scale, scaler, unit in INSTANT:
            if code == obis:
                if attr == 3:
                    return cosem.scaler_unit(scaler, unit)
                if attr != 2:
                    return cosem.READ_WRITE_DENIED
                if self.tick.ms is None:
                    return _TEMPORARY_FAILURE
                v = getattr(self.tick.reading, name)
                return _clamped(tag, int(round(v * scale)))
        if obis in ENERGY:
            k = ENERGY.index(obis)
            if attr == 3:
                return cosem.scaler_unit(-3, _ENERGY_UNITS[k] if k < len(_ENERGY_UNITS) else _WH)
            if attr != 2:
                return cosem.READ_WRITE_DENIED
            return cosem.number(cosem.LONG64_UNSIGNED, self.tick.regs.mwh(k))
        return cosem.OBJECT_UNDEFINED
