# The meter's COSEM objects as IS 15959's public client and meter reader read them (IS 15959-2 names, STANDARDS.md):
# the `get` that
# app/cosem.py's Association calls, over what the meter already keeps — the last metering reading and the energy
# registers (app/tick.py Tick), the RTC and the calendar's time zone, the class-70 disconnect control and the meter's
# identity — and, through app/dlms_profiles.py (on the heap only while one of them is read), IS 15959's profiles
# (the instantaneous and scaler profiles, the name plate, the event profiles and their last-event codes) and the
# association objects, the current one listing them all. Read-only: nothing here changes the meter. The load profiles
# (a household's days, half-hour by half-hour: when it is in, away, asleep) and their registers are the meter
# reader's (client SAP 32, a secret: app/cosem.py); the public client (SAP 16) sees them listed, not their values.
#
# Values are integers with a scaler, as DLMS registers carry them: volts in 0.01 V, amperes in mA, watts, vars and
# volt-amperes whole, the power factor in thousandths, hertz in 0.01 Hz, energy in mWh (the registers' own exact
# integers: app/registers.py). Before the first reading an instantaneous value is "temporary failure" (2), not a 0
# that a head-end would store; a clock that lost power is sent "not specified" (0xFF) with clock status invalid.

import gc

from micropython import const

import loader
from app import cosem, registers
from app.dlms_names import (
    ASSOCIATION,
    CLOCK,
    EVENT_LOGS,
    EVENT_SCALERS,
    INSTANT_PROFILE,
    LAST_EVENT,
    LOAD_PROFILES,
    LOAD_REGISTERS,
    MAX_DEMAND,
    NAME_PLATE,
    PLATE_ITEMS,
    PUBLIC_ASSOCIATION,
    READER_ASSOCIATION,
    SCALER_PROFILE,
    SELECTIVE,
    UTILITY_ASSOCIATION,
    among,
    date_time,
)
from loader import wallclock

_TEMPORARY_FAILURE = const(2)
_CLASS_INCONSISTENT = const(9)
_CLASS_DATA = const(1)
_CLASS_REGISTER = const(3)
_CLASS_EXTENDED = const(4)
_CLASS_CLOCK = const(8)
_CLASS_DISCONNECT = const(70)
_CLASS_LIMITER = const(71)
# the supply's objects (app/dlms_supply.py, on the heap for a read only): the limiter (class 71, 0.0.17.0.0.255) and
# IS 15959's prepaid data (class 1, 0.0.94.96.19-25.255, six bytes each: metering mode, payment mode, then, from
# _PREPAID_PRIVATE on, the money: the last recharge's amount and time, the balance after it, the current balance and
# its time); private consts: no names on a session's heap, where a meter with its network up has none to spare
_LIMITER = const(b"\x00\x00\x11\x00\x00\xff")
_PREPAID = const(b"\x00\x00\x5e\x60\x13\xff\x00\x00\x5e\x60\x14\xff\x00\x00\x5e\x60\x15\xff\x00\x00\x5e\x60\x16\xff"
                 b"\x00\x00\x5e\x60\x17\xff\x00\x00\x5e\x60\x18\xff\x00\x00\x5e\x60\x19\xff")
_PREPAID_PRIVATE = const(12)
_CLASS_ASSOCIATION = const(15)
_CLASS_PROFILE = const(7)
_CLASS_PUSH = const(40)
_PUSH_SETUP = const(b"\x00\x04\x19\x09\x00\xff")  # app/dlms_names.py PUSH_SETUP as a private const: no global
_CLASSES = (_CLASS_DATA, _CLASS_REGISTER, _CLASS_EXTENDED, _CLASS_PROFILE, _CLASS_CLOCK, _CLASS_ASSOCIATION,
            _CLASS_PUSH, _CLASS_DISCONNECT, _CLASS_LIMITER)
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
DISCONNECT = cosem.obis("0.0.96.3.10.255")
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
_ENERGY_UNITS = (_WH, _WH, _VARH, _VARH, _VAH)  # by register index; the TOU zones are Wh


def _forget():
    for name in ("app.dlms_profiles", "app.dlms_load", "app.dlms_select", "app.load_profile", "app.dlms_supply",
                 "app.dlms_push"):
        loader.forget(name)


def logical_device_name(meter_id):
    """16 octets: the manufacturer's three letters (IS 15959: its FLAG id), then the meter id's last 13 characters,
    zero-padded."""
    from app.dlms_names import FLAG  # (here, not in this module's globals: a DLMS session's heap)

    tail = meter_id.encode()[-13:]
    return FLAG + b"0" * (13 - len(tail)) + tail


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
    (app/events.py EventLog; None: no event profiles), `period` a callable giving the demand period in s, the block
    load profile's capture period (None: no block load profile), `supply` the app's Supply (its load limit and
    credit: the limiter and the prepaid data; None: neither), `push` the alert push's (head-end, number of retries,
    repetition delay in s), app/network_link.py's (None: a meter that pushes nothing has no push setup)."""

    # the names app/dlms_profiles.py names() lists besides its own (the instantaneous and energy registers, the
    # logical device name, the disconnect control, the supply's objects): handed over here, not imported, so that
    # module imports none of this one (and no module global here holds the supply's)
    NAMES = (INSTANT, ENERGY, LDN, DISCONNECT, _LIMITER + _PREPAID)

    def __init__(self, tick, control, name, tz_offset_min, log=None, plate=None, period=None, supply=None, push=None):
        self.push = push
        self.period = period
        self.supply = supply
        self.tick = tick
        self.control = control
        self.name = name
        self.tz = tz_offset_min
        self.log = log
        self.plate = plate  # the name plate's items (bytes each, PLATE_ITEMS' order), None: no name plate
        self._depth = 0  # reads of app/dlms_profiles.py under way (one inside another: a snapshot's cells)

    def get(self, cls, obis, attr, access=None, client=cosem.PUBLIC_CLIENT):
        if access is not None and not (cls == _CLASS_PROFILE and attr == 2 and (
                obis in EVENT_LOGS or among(LOAD_PROFILES[:SELECTIVE], obis)) and self._known(cls, obis)):
            return cosem.READ_WRITE_DENIED  # selective access: the event and load profiles' buffers only
        if not self._known(cls, obis):
            for other in _CLASSES:
                if other != cls and self._known(other, obis):
                    return _CLASS_INCONSISTENT  # the name is the meter's, under another class
            return cosem.OBJECT_UNDEFINED
        if attr == 1:  # every object's logical name
            return cosem.octets(obis)
        if self.private(obis) and client not in (cosem.READER_CLIENT, cosem.UTILITY_CLIENT):
            return cosem.READ_WRITE_DENIED
        if cls in (_CLASS_ASSOCIATION, _CLASS_PROFILE, _CLASS_LIMITER, _CLASS_PUSH) or obis in LAST_EVENT or obis in PLATE_ITEMS \
                or among(LOAD_REGISTERS, obis) or among(_PREPAID, obis):
            return self._more(cls, obis, attr, access, client)
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

    def private(self, obis):
        """Whether only the meter reader and the utility read the object's values (the load profiles and their
        registers, the prepaid money, the push setup: the head-end's address)."""
        return (self.period is not None and (among(LOAD_PROFILES, obis) or among(LOAD_REGISTERS, obis))) or (
            self.supply is not None and among(_PREPAID[_PREPAID_PRIVATE:], obis)) or obis == _PUSH_SETUP

    def _known(self, cls, obis):
        if cls == _CLASS_REGISTER:
            return obis in ENERGY or any(row[0] == obis for row in INSTANT) or (
                self.period is not None and among(LOAD_REGISTERS, obis))
        if self.period is not None and cls == _CLASS_PROFILE and among(LOAD_PROFILES, obis):
            return True
        if self.log is not None and ((cls == _CLASS_PROFILE and (obis in EVENT_LOGS or obis == EVENT_SCALERS))
                                     or (cls == _CLASS_DATA and obis in LAST_EVENT)):
            return True
        if self.supply is not None and ((cls == _CLASS_LIMITER and obis == _LIMITER)
                                        or (cls == _CLASS_DATA and among(_PREPAID, obis))):
            return True
        if self.push is not None and cls == _CLASS_PUSH and obis == _PUSH_SETUP:
            return True
        if self.plate is not None and ((cls == _CLASS_PROFILE and obis == NAME_PLATE)
                                       or (cls == _CLASS_DATA and obis in PLATE_ITEMS)):
            return True
        return (cls, obis) in ((_CLASS_EXTENDED, MAX_DEMAND), (_CLASS_CLOCK, CLOCK), (_CLASS_DATA, LDN),
                               (_CLASS_ASSOCIATION, ASSOCIATION), (_CLASS_ASSOCIATION, PUBLIC_ASSOCIATION),
                               (_CLASS_ASSOCIATION, READER_ASSOCIATION), (_CLASS_ASSOCIATION, UTILITY_ASSOCIATION),
                               (_CLASS_PROFILE, INSTANT_PROFILE), (_CLASS_PROFILE, SCALER_PROFILE)) or (
            cls == _CLASS_DISCONNECT and obis == DISCONNECT and self.control is not None)

    def names(self):
        """(class, OBIS) of every object this association reads, in the order of the object list: a generator, so
        that the object list goes out element by element and never stands whole on the heap (app/dlms_profiles.py
        names: on the heap with the object list's read)."""
        from app import dlms_profiles

        return dlms_profiles.names(self)

    def _more(self, cls, obis, attr, access, client):
        """The profiles, the association object and their data objects (app/dlms_profiles.py): that module is on
        the heap only while one of them is read (a snapshot's cells come back here: only the outermost read lets
        it go). The outermost read collects first, and a MemoryError in it (an ESP32's heap in pieces: the module and
        its read did not fit where they landed) is tried once more with the modules gone and the heap collected; with
        no room then either, the read is answered temporary-failure (ask again later: the heap is metering's first)."""
        self._depth += 1
        if self._depth == 1 and hasattr(gc, "mem_free"):  # (MicroPython's heap: CPython's gc.collect is a full pass
            # over the whole process, for nothing) the module's code packs into the holes low down, not around garbage
            # (an ESP32 session's reads failed, other-reason 250, in 4 of 15 runs of the optical e2e three at once; 1
            # in 30 with this)
            gc.collect()
        try:
            try:
                return self._read(cls, obis, attr, access, client)
            except MemoryError:  # noqa: B014
                if self._depth > 1:
                    raise
                _forget()
                gc.collect()
                try:
                    return self._read(cls, obis, attr, access, client)
                except MemoryError:  # noqa: B014
                    return _TEMPORARY_FAILURE
        finally:
            self._depth -= 1
            if not self._depth:  # (a buffer going out in blocks keeps what it reads with)
                _forget()

    def _read(self, cls, obis, attr, access, client):
        if cls == _CLASS_PUSH:
            from app import dlms_push  # the push setup's code: only for its reads

            return dlms_push.get(self.push, attr)
        if cls == _CLASS_LIMITER or among(_PREPAID, obis):
            from app import dlms_supply  # the supply's objects' code: only for their reads

            return dlms_supply.get(self, cls, obis, attr)
        if self.period is not None and (among(LOAD_PROFILES, obis) or among(LOAD_REGISTERS, obis)):
            from app import dlms_load  # the stored load profiles' code: only for their reads

            return dlms_load.get(self, cls, obis, attr, access, client)
        from app import dlms_profiles

        return dlms_profiles.get(self, cls, obis, attr, access, client)

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
