# IS 15959's stored profiles as DLMS objects (app/load_profile.py's rows): the block load profile (1.0.99.1.0.255, a
# row per demand period), the daily load profile (1.0.99.2.0.255, a row per local day) and the billing profile
# (1.0.98.1.0.255, a row per billing period: app/billing.py's monthly billing reset), their scaler profiles
# (1.0.94.91.4-6.255), the block load registers (the newest row's figures) and the billing period's average power
# factor (1.0.13.0.0.255, the newest billing row's). On the heap for one read only (app/dlms_objects.py
# Objects._more), so the DLMS session that holds the line does not carry them; their names are app/dlms_names.py
# LOAD_PROFILES and LOAD_REGISTERS, which the session holds anyway.
from micropython import const

from app import cosem, registers
from app.dlms_names import CLOCK, LOAD_PROFILES, LOAD_REGISTERS, MAX_DEMAND, date_time
from app.dlms_select import PROFILE_ATTRS, capture, selection, snapshot

_CLASS_REGISTER = const(3)
_CLASS_EXTENDED = const(4)
_CLASS_CLOCK = const(8)
_TEMPORARY_FAILURE = const(2)
# the objects by their place in app/dlms_names.py LOAD_PROFILES (their names are only there: six bytes each, in one
# bytes object): the block load, daily load and billing profiles, then their scaler profiles in the same order
_BLOCK = const(0)
_DAILY = const(1)
_BILLING = const(2)
_SCALERS = const(3)
# and in LOAD_REGISTERS: the block load profile's five registers (its columns after the clock, in a row's order,
# app/load_profile.py: average voltage and current, then the import, apparent and export energy in the period, IS
# 15959's "block energy"), then the billing period's average power factor
_BLOCK_REGISTERS = const(5)
# the block load profile's registers: type, scaler, unit (V, A, Wh, VAh, Wh)
_BLOCK_TYPES = ((cosem.LONG_UNSIGNED, -2, 35), (cosem.DOUBLE_LONG_UNSIGNED, -3, 33), (cosem.DOUBLE_LONG_UNSIGNED, -3, 30),
                (cosem.DOUBLE_LONG_UNSIGNED, -3, 31), (cosem.DOUBLE_LONG_UNSIGNED, -3, 30))


def _columns(k):
    """Profile k's columns after the clock, as names: the block load registers; the daily load profile's energy
    registers at midnight (import, apparent, export); the billing profile's, in a row's order: the period's average
    power factor, then at its end the import register, import by TOU zone 1-8, the apparent and export registers
    (class 3, attribute 2; its maximum demand and when it was set follow, class 4)."""
    if k == _BLOCK:
        return [LOAD_REGISTERS[i:i + 6] for i in range(0, 6 * _BLOCK_REGISTERS, 6)]
    imp = registers.IMPORT
    if k == _DAILY:
        regs = (imp, registers.APPARENT, registers.EXPORT)  # type: tuple
    else:
        regs = (imp,) + tuple(range(registers.ZONE_FIRST, registers.ZONE_FIRST + 8)) + (
            registers.APPARENT, registers.EXPORT)
    names = [cosem.obis(registers.OBIS[r]) for r in regs]
    if k == _BILLING:
        names.insert(0, LOAD_REGISTERS[6 * _BLOCK_REGISTERS:])
    return names


def get(objects, cls, obis, attr, access, client):
    """What app/dlms_objects.py Objects.get hands here: a name in LOAD_PROFILES or LOAD_REGISTERS (known, attribute
    1 and the client's rights answered there)."""
    k = LOAD_PROFILES.find(obis)
    if k < 0:
        n = LOAD_REGISTERS.find(obis) // 6
        return _billing_pf(attr) if n == _BLOCK_REGISTERS else _block_register(n, attr)
    k //= 6
    if k < _SCALERS:
        return _stored(objects, k, attr, access)
    k -= _SCALERS  # a scaler profile (the demand's time has no scaler: its scaler and unit are the demand's)
    return snapshot(objects, tuple((_CLASS_REGISTER, o, 3) for o in _columns(k)) + (
        ((_CLASS_EXTENDED, MAX_DEMAND, 3),) if k == _BILLING else ()), attr, client)


def _stored(objects, k, attr, access):
    """IS 15959's block load, daily load or billing profile (app/load_profile.py): rows read from flash as they go
    out (a generator of pieces: days of rows never sit on the heap at once, app/cosem.py sends them in blocks). Their
    columns: the clock, then the block load registers, the energy registers at midnight, or the billing period's."""
    from app import load_profile

    kind = load_profile.BLOCK if k == _BLOCK else load_profile.DAILY if k == _DAILY else load_profile.BILLING
    columns = _columns(k)
    billing = k == _BILLING
    width = len(columns) + 1 + 2 * billing  # the clock's column first; the billing profile's demand and its time last
    if attr == 2:
        sel = selection(objects, access, width)
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
        return _stored_rows(rows, max(0, stop - e0 + 1), first, last, objects.tz(), k)
    if attr == 3:
        return cosem.array(width, capture(_CLASS_CLOCK, CLOCK) +
                           b"".join(capture(_CLASS_REGISTER, o) for o in columns) + (
                               capture(_CLASS_EXTENDED, MAX_DEMAND) + capture(_CLASS_EXTENDED, MAX_DEMAND, 5)
                               if billing else b""))
    # capture period: the demand period, a day, or none for the billing profile (its rows come at the billing
    # reset, not on a clock); profile entries: the most rows the files hold before the oldest goes (a billing file
    # spans a year of months)
    period = objects.period() if k == _BLOCK else 86400 if k == _DAILY else 0
    if attr == 4:
        return cosem.number(cosem.DOUBLE_LONG_UNSIGNED, period)
    if attr in (5, 6):
        return cosem.number(cosem.ENUM, 1) if attr == 5 else PROFILE_ATTRS[2]  # fifo, no sort object
    if attr == 7:
        return cosem.number(cosem.DOUBLE_LONG_UNSIGNED, load_profile.count(kind))
    if attr == 8:
        return cosem.number(cosem.DOUBLE_LONG_UNSIGNED, kind.keep * 12 if billing else kind.keep * kind.span // period)
    return cosem.READ_WRITE_DENIED


def _stored_rows(rows, count, first, last, tz, k):
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
        if k == _BILLING:  # the power factor, eleven registers, the demand and its time (0: not known)
            cells = (cosem.octets(date_time(row[0], tz)), cosem.number(cosem.LONG_UNSIGNED, row[1])) + tuple(
                cosem.number(cosem.LONG64_UNSIGNED, v) for v in row[2:13]) + (
                cosem.number(cosem.DOUBLE_LONG_UNSIGNED, row[13]), cosem.octets(date_time(row[14] or None, tz)))
        else:
            cells = (cosem.octets(date_time(row[0], tz)),) + tuple(
                cosem.number(_BLOCK_TYPES[n][0] if k == _BLOCK else cosem.LONG64_UNSIGNED, row[n + 1])
                for n in range(len(row) - 1))
        yield cosem.structure(*cells[first:last])
    while count:
        count -= 1
        yield cosem.structure(*([b"\x00"] * (last - first)))


def _billing_pf(attr):
    """The billing period's average power factor (1.0.13.0.0.255): the newest billing row's (attribute 2), its scaler
    and unit (3: thousandths, no unit)."""
    if attr == 3:
        return cosem.scaler_unit(-3, 255)
    if attr != 2:
        return cosem.READ_WRITE_DENIED
    from app import load_profile

    newest = load_profile.last(load_profile.BILLING)
    return _TEMPORARY_FAILURE if newest is None else cosem.number(cosem.LONG_UNSIGNED, newest[1])


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
