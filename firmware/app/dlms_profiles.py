# The meter's profiles and association object (app/dlms_objects.py hands them here; this module is on the heap only
# while one of them is read): IS 15959's instantaneous profile (1.0.94.91.0.255: one row taken when read) and its
# scaler profile (1.0.94.91.3.255), the name plate (0.0.94.91.10.255) and its items, the event profiles
# (0.0.99.98.0-6.255, class 7, with selective access by entry and by range) and their last-event codes
# (0.0.96.11.0-6.255), and the association objects (class 15, version 1: the current association 0.0.40.0.0.255,
# the public client's 0.0.40.0.1.255 and the meter reader's 0.0.40.0.2.255), whose object list names every object
# with its access rights for the client asking, which a DLMS tool reads first to learn what the meter has.
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
    ASSOCIATION,
    CLOCK,
    EVENT_LOGS,
    EVENT_SCALERS,
    EVENT_SNAPSHOT,
    INSTANT_PROFILE,
    LAST_EVENT,
    LOAD_PROFILES,
    LOAD_REGISTERS,
    MAX_DEMAND,
    NAME_PLATE,
    PLATE_ITEMS,
    PUBLIC_ASSOCIATION,
    PUSH_SETUP,
    READER_ASSOCIATION,
    SCALER_PROFILE,
    SELECTIVE,
    UTILITY_ASSOCIATION,
    among,
    date_time,
)
from app.dlms_select import PROFILE_ATTRS, capture, selection, snapshot

# (the classes as private consts, as in app/dlms_objects.py: MicroPython puts a private const's value in the code,
# so the repeat costs no heap; shared public names would each take a module-dict entry and a lookup)
_CLASS_DATA = const(1)
_CLASS_REGISTER = const(3)
_CLASS_EXTENDED = const(4)
_CLASS_PROFILE = const(7)
_CLASS_CLOCK = const(8)
_CLASS_ASSOCIATION = const(15)
_CLASS_PUSH = const(40)
_CLASS_DISCONNECT = const(70)
_CLASS_LIMITER = const(71)
_READ_ONLY = const(1)  # attribute access modes
_READ_WRITE = const(3)
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
    _CLASS_LIMITER: (0, 11, 0b111111111110, 0),
    _CLASS_PUSH: (0, 7, 0b11111110, 1),  # (its method, push, is nobody's: the meter pushes its alerts itself)
}
_CONTEXT_NAME = b"\x60\x85\x74\x05\x08\x01\x01"  # logical-name referencing, no ciphering (3: with ciphering)
_MECHANISM = b"\x60\x85\x74\x05\x08\x02"  # the authentication mechanism names: 0 none, 1 low-level security
_SERVER_SAP = const(1)
_NON_ASSOCIATED = const(0)  # association_status
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
_PLATE = tuple((_CLASS_DATA, name, 2) for name in PLATE_ITEMS)
# a snapshot profile's attributes 4-8: capture period 0 (taken when read), sort FIFO, no sort object, 1 entry of 1


def get(objects, cls, obis, attr, access, client):
    """What app/dlms_objects.py Objects.get hands here (a known object; attribute 1, the access rights and selective
    access on anything but an event profile's buffer are answered there), for client SAP `client`."""
    if cls == _CLASS_ASSOCIATION:
        return _association(objects, obis, attr, client)
    if cls == _CLASS_PROFILE and obis in (INSTANT_PROFILE, SCALER_PROFILE, NAME_PLATE, EVENT_SCALERS):
        return snapshot(objects, _SNAPSHOT if obis == INSTANT_PROFILE else (
            _SCALERS if obis == SCALER_PROFILE else (_PLATE if obis == NAME_PLATE else _EVENT_SCALERS)), attr, client)
    if obis in PLATE_ITEMS:
        return cosem.octets(objects.plate[PLATE_ITEMS.index(obis)]) if attr == 2 else cosem.READ_WRITE_DENIED
    if cls == _CLASS_PROFILE:
        return _profile(objects, EVENT_LOGS.index(obis), attr, access)
    if attr != 2:  # a last-event code
        return cosem.READ_WRITE_DENIED
    rows = _rows(objects, LAST_EVENT.index(obis))
    return cosem.number(cosem.LONG_UNSIGNED, rows[-1][1] if rows else 0)


def _element(cls, obis, hidden, acting=False):
    """One object_list element: class, version, logical name and access rights (read-only attributes, but the
    clock's time and the limiter's threshold and durations the utility association (`acting`) writes; a profile's buffer takes selective
    access by range and by entry; `hidden`: the client reads the logical name only; methods none but, for the utility
    association, class 70's remote_disconnect and remote_reconnect and its own association's
    reply_to_HLS_authentication)."""
    version, attrs, readable, methods = _SHAPES[cls]
    if hidden:
        readable = 0b10
    a = b"".join(cosem.structure(cosem.number(cosem.INTEGER, i), cosem.number(cosem.ENUM, (
        _READ_WRITE if acting and ((cls == _CLASS_LIMITER and i in (3, 4, 6, 7)) or (cls == _CLASS_CLOCK and i in (2, 3)))
        else _READ_ONLY) if readable >> i & 1
                                                                             else 0),
                                 b"\x01\x02\x0f\x01\x0f\x02" if i == 2 and not hidden and (obis in EVENT_LOGS or among(LOAD_PROFILES[:SELECTIVE], obis))
                                 else b"\x00")
                 for i in range(1, attrs + 1))
    m = b"".join(cosem.structure(cosem.number(cosem.INTEGER, i), cosem.number(cosem.ENUM, 1 if acting and (
        (cls == _CLASS_DISCONNECT and i <= 2) or (obis == ASSOCIATION and i == 1)) else 0)) for i in range(1, methods + 1))
    return cosem.structure(cosem.number(cosem.LONG_UNSIGNED, cls), cosem.number(cosem.UNSIGNED, version),
                           cosem.octets(obis), cosem.structure(cosem.array(attrs, a), cosem.array(methods, m)))


def _object_list(objects, which):
    """The object list made as it goes out, one element at a time (cosem sends it in blocks): built whole, it held
    4.8 KB of VM heap while it went out and its growing array wanted 1 KB in one piece, which an ESP32 session's
    heap in pieces did not always have (docs/BENCHMARKS.md, "eighth stop")."""
    yield cosem.array_head(sum(1 for _ in names(objects)))
    hide = which == cosem.PUBLIC_CLIENT
    for cls, name in names(objects):
        yield _element(cls, name, hide and objects.private(name), which == cosem.UTILITY_CLIENT)


def names(objects):
    """app/dlms_objects.py Objects.names(): (class, OBIS) of every object `objects` has, in the object list's order,
    one at a time."""
    instant, energy, ldn, disconnect, supply = objects.NAMES
    for row in instant:
        yield _CLASS_REGISTER, row[0]
    for code in energy:
        yield _CLASS_REGISTER, code
    yield _CLASS_EXTENDED, MAX_DEMAND
    yield _CLASS_CLOCK, CLOCK
    yield _CLASS_DATA, ldn
    yield _CLASS_PROFILE, INSTANT_PROFILE
    yield _CLASS_PROFILE, SCALER_PROFILE
    if objects.plate is not None:
        yield _CLASS_PROFILE, NAME_PLATE
        for name in PLATE_ITEMS:
            yield _CLASS_DATA, name
    if objects.control is not None:
        yield _CLASS_DISCONNECT, disconnect
    if objects.supply is not None:
        yield _CLASS_LIMITER, supply[:6]
        for k in range(6, 48, 6):
            yield _CLASS_DATA, supply[k:k + 6]
    if objects.log is not None:
        for name in EVENT_LOGS:
            yield _CLASS_PROFILE, name
        for name in LAST_EVENT:
            yield _CLASS_DATA, name
        yield _CLASS_PROFILE, EVENT_SCALERS
    if objects.push is not None:
        yield _CLASS_PUSH, PUSH_SETUP
    if objects.period is not None:
        for k in range(0, len(LOAD_PROFILES), 6):
            yield _CLASS_PROFILE, LOAD_PROFILES[k:k + 6]
        for k in range(0, len(LOAD_REGISTERS), 6):
            yield _CLASS_REGISTER, LOAD_REGISTERS[k:k + 6]
    for name in (ASSOCIATION, PUBLIC_ASSOCIATION, READER_ASSOCIATION, UTILITY_ASSOCIATION):
        yield _CLASS_ASSOCIATION, name


def _rows(objects, k):
    """(RTC s or None, code, V, I, PF, import energy) of category k's events, oldest first (app/event_logs.py)."""
    return objects.log.compartments("rows", k)

def _profile(objects, k, attr, access):
    if attr == 2:
        return _buffer(objects, k, access)
    if attr == 3:  # capture_objects: the clock's time, the category's last-event code, the snapshot's registers
        return cosem.array(_EVENT_COLUMNS, capture(_CLASS_CLOCK, CLOCK) + capture(_CLASS_DATA, LAST_EVENT[k]) +
                           b"".join(capture(_CLASS_REGISTER, obis) for obis in EVENT_SNAPSHOT))
    if attr == 4:
        return cosem.number(cosem.DOUBLE_LONG_UNSIGNED, 0)  # capture_period: at each event
    if attr == 5:
        return cosem.number(cosem.ENUM, 1)  # sort_method: fifo
    if attr == 6:
        return PROFILE_ATTRS[2]  # sort_object: none
    if attr == 7:
        return cosem.number(cosem.DOUBLE_LONG_UNSIGNED, len(_rows(objects, k)))
    if attr == 8:  # profile_entries: the compartment's depth (the ring's, shared by all, on a log without them)
        return cosem.number(cosem.DOUBLE_LONG_UNSIGNED, objects.log.compartments("depth", k))
    return cosem.READ_WRITE_DENIED

def _buffer(objects, k, access):
    """The rows of event profile k, all of them or those `access` selects (by entry: from/to entry and column, 0
    for the last; by range: on the clock's column, local date-times, all columns)."""
    rows = _rows(objects, k)
    sel = selection(objects, access, _EVENT_COLUMNS)
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

def _association(objects, obis, attr, client):
    """The current association (0.0.40.0.0.255: the client's own) or the named one of the public client, the meter
    reader or the utility settings."""
    which = client if obis == ASSOCIATION else (
        cosem.PUBLIC_CLIENT if obis == PUBLIC_ASSOCIATION else
        cosem.UTILITY_CLIENT if obis == UTILITY_ASSOCIATION else cosem.READER_CLIENT)
    if attr == 2:  # object_list: {class, version, name, {attribute access, method access}} per object
        return _object_list(objects, which)
    if attr == 3:  # associated_partners_id
        return cosem.structure(cosem.number(cosem.INTEGER, which),
                               cosem.number(cosem.LONG_UNSIGNED, _SERVER_SAP))
    utility = which == cosem.UTILITY_CLIENT
    if attr == 4:  # (the utility association's: with ciphering)
        return cosem.octets(_CONTEXT_NAME[:6] + (b"\x03" if utility else b"\x01"))
    if attr == 5:  # xDLMS_context_info: conformance, max receive and send PDU, version, QoS, cyphering info
        return cosem.structure(b"\x04\x18" + (cosem.CONFORMANCE_UTILITY if utility else cosem.CONFORMANCE).to_bytes(
            3, "big"),
                               cosem.number(cosem.LONG_UNSIGNED, cosem.MAX_PDU),
                               cosem.number(cosem.LONG_UNSIGNED, cosem.MAX_PDU),
                               cosem.number(cosem.UNSIGNED, cosem.DLMS_VERSION),
                               cosem.number(cosem.INTEGER, 0), cosem.octets(b""))
    if attr == 6:  # authentication_mechanism_name
        return cosem.octets(_MECHANISM + bytes((cosem.HLS_GMAC if utility else cosem.LLS if which == cosem.READER_CLIENT
                                                else 0,)))
    if attr == 8:
        return cosem.number(cosem.ENUM, _ASSOCIATED if which == client else _NON_ASSOCIATED)
    if attr == 9:  # security_setup_reference: none (the meter has no security setup object: the utility's keys are set
        # by a signed SMP command, docs/dlms.md)
        return cosem.octets(bytes(6))
    return cosem.READ_WRITE_DENIED
