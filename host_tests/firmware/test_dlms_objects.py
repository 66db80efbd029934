"""firmware/app/dlms_objects.py on CPython and in the MicroPython VM (plain asserts; see conftest.py): the meter's
COSEM objects over its real reading, registers, clock and class-70 control, read through app/cosem.py's GET."""

import fwtest
from app import cosem, disconnect, dlms_objects, dsp, registers
from app.tick import Tick
from loader import wallclock

AARQ = bytes.fromhex("601da109060760857405080101be10040e01000000065f1f0400401e5dffff")


def meter(tz=330):
    reading = dsp.Reading()
    regs = registers.Registers()
    tick = Tick(reading, regs)
    control = fwtest.disconnect_control()
    objects = dlms_objects.Objects(tick, control, b"MKT0000000000042", lambda: tz)
    a = cosem.Association(objects.get)
    assert a.apdu(AARQ)[0] == 0x61 and a.associated
    return tick, control, a


def get(a, cls, ln, attr):
    r = a.apdu(b"\xc0\x01\xc1" + bytes((cls >> 8, cls & 0xFF)) + cosem.obis(ln) + bytes((attr, 0)))
    assert r[:3] == b"\xc4\x01\xc1", r
    return r[3:]  # 0x00 + data, or 0x01 + data-access-result


def _with_workdir(body):
    import os

    back = fwtest.workdir()
    os.mkdir("meter")
    try:
        body()
    finally:
        os.chdir(back)


def test_instantaneous_values_are_scaled_integers_and_refused_before_the_first_reading():
    tick, _, a = meter()
    assert get(a, 3, "1.0.12.7.0.255", 2) == b"\x01\x02"  # temporary failure: no reading yet
    assert get(a, 3, "1.0.12.7.0.255", 3) == b"\x00\x02\x02\x0f\xfe\x16\x23"  # {-2, V}
    r = tick.reading
    r.voltage, r.current, r.p, r.q, r.s, r.pf, r.frequency = 230.126, 4.3215, -987.4, 120.6, 995.0, -0.9923, 49.987
    tick.ms = 1
    assert get(a, 3, "1.0.12.7.0.255", 2) == b"\x00\x12" + (23013).to_bytes(2, "big")
    assert get(a, 3, "1.0.11.7.0.255", 2) == b"\x00\x06" + (4322).to_bytes(4, "big")
    assert get(a, 3, "1.0.1.7.0.255", 2) == b"\x00\x05" + (2**32 - 987).to_bytes(4, "big")  # exporting: negative
    assert get(a, 3, "1.0.13.7.0.255", 2) == b"\x00\x10" + (2**16 - 992).to_bytes(2, "big")
    assert get(a, 3, "1.0.14.7.0.255", 2) == b"\x00\x12" + (4999).to_bytes(2, "big")
    r.voltage = 1e6  # a damaged front end: the type's limit, never a wrapped number
    assert get(a, 3, "1.0.12.7.0.255", 2) == b"\x00\x12\xff\xff"
    assert get(a, 3, "1.0.12.7.0.255", 4) == b"\x01\x03"  # no such attribute: denied
    assert get(a, 3, "1.0.12.7.0.255", 1) == b"\x00\x09\x06" + cosem.obis("1.0.12.7.0.255")


def test_energy_registers_are_the_registers_exact_milliwatt_hours():
    tick, _, a = meter()
    regs = tick.regs
    regs.add(0, 3600 * 1000 * 1234567 + 1800 * 1000)  # register 0, active import: 1,234,567.5 Wh in mJ
    assert get(a, 3, "1.0.1.8.0.255", 2) == b"\x00\x15" + regs.mwh(0).to_bytes(8, "big")
    assert regs.mwh(0) == 1234567500
    assert get(a, 3, "1.0.1.8.0.255", 3) == b"\x00\x02\x02\x0f\xfd\x16\x1e"  # {-3, Wh}
    assert get(a, 3, "1.0.3.8.0.255", 3) == b"\x00\x02\x02\x0f\xfd\x16\x20"  # varh
    assert get(a, 3, "1.0.1.8.8.255", 2) == b"\x00\x15" + bytes(8)  # TOU zone 8
    assert get(a, 3, "1.0.1.8.9.255", 2) == b"\x01\x04"  # no zone 9: undefined


def test_clock_maximum_demand_name_and_disconnect_control():
    _with_workdir(_clock_demand_name_control)  # the control persists its state: in a scratch folder


def _clock_demand_name_control():
    tick, control, a = meter(tz=330)
    assert get(a, 8, "0.0.1.0.0.255", 3) == b"\x00\x10" + (2**16 - 330).to_bytes(2, "big")
    got = get(a, 8, "0.0.1.0.0.255", 2)
    assert got[:3] == b"\x00\x09\x0c" and len(got) == 15
    now = wallclock.rtc_now()
    if now is None:
        assert got[3:] == b"\xff" * 9 + b"\x80\x00\x01"  # not specified, status invalid
    else:
        assert got[-3:] == b"\x80\x00\x00" and 2020 <= (got[3] << 8 | got[4]) < 2100
    # a known time: 2026-12-06 05:30:00 UTC is 11:00 IST, a Sunday (7)
    assert dlms_objects.date_time(1796535000, 330) == bytes((0x07, 0xEA, 12, 6, 7, 11, 0, 0, 0, 0x80, 0, 0))
    tick.regs.md_w = 4321.7
    tick.regs.md_at = None
    assert get(a, 4, "1.0.1.6.0.255", 2) == b"\x00\x06" + (4321).to_bytes(4, "big")
    assert get(a, 4, "1.0.1.6.0.255", 5) == b"\x00\x09\x0c" + b"\xff" * 9 + b"\x80\x00\x01"
    assert get(a, 1, "0.0.42.0.0.255", 2) == b"\x00\x09\x10MKT0000000000042"
    assert get(a, 70, "0.0.96.3.10.255", 2) == b"\x00\x03\x01"
    assert control.apply(disconnect.REMOTE_DISCONNECT, "test") == "b"
    assert get(a, 70, "0.0.96.3.10.255", 2) == b"\x00\x03\x00"
    assert get(a, 70, "0.0.96.3.10.255", 3) == b"\x00\x16\x00"
    assert get(a, 70, "0.0.96.3.10.255", 4) == b"\x00\x16\x06"
    assert get(a, 3, "0.0.96.3.10.255", 2) == b"\x01\x09"  # the meter's name under another class: inconsistent
    assert get(a, 4, "1.0.1.6.0.255", 4) == b"\x00\x00"  # demand status: null-data


def test_reads_change_nothing_on_flash():
    def body():
        import os

        _, _, a = meter()
        before = sorted(os.listdir("."))
        for cls, ln in ((3, "1.0.12.7.0.255"), (8, "0.0.1.0.0.255"), (70, "0.0.96.3.10.255"), (1, "0.0.42.0.0.255")):
            for attr in range(1, 6):
                get(a, cls, ln, attr)
        assert sorted(os.listdir(".")) == before

    _with_workdir(body)


def get_long(a, cls, ln, attr):
    """A value that goes in blocks (GET with block transfer), put together as a client does; with the blocks' count."""
    r = a.apdu(b"\xc0\x01\xc1" + bytes((cls >> 8, cls & 0xFF)) + cosem.obis(ln) + bytes((attr, 0)))
    data, blocks = b"", 0
    while True:
        assert r[:3] == b"\xc4\x02\xc1" and r[8] == 0, r  # with datablock: raw data
        n, i = r[9], 10
        if n & 0x80:
            n, i = int.from_bytes(r[10:10 + (n & 0x7F)], "big"), 10 + (n & 0x7F)
        assert len(r) == i + n
        data += r[i:]
        blocks += 1
        if r[3]:  # the last block
            return b"\x00" + data, blocks
        r = a.apdu(b"\xc0\x02\xc1" + r[4:8])


def test_the_association_object_lists_every_object_with_read_only_access():
    tick, control, a = meter()
    v, blocks = get_long(a, 15, "0.0.40.0.0.255", 2)
    assert blocks == 4  # 1,650 bytes in blocks of at most 500 (the meter's PDU, 512, less a block's header)
    # 30 objects: 7 instantaneous, 13 energy, maximum demand, clock, name, the instantaneous and scaler profiles,
    # disconnect control, 4 associations (the current one, the public client's, the meter reader's, the utility's)
    assert v[:3] == b"\x00\x01\x1e"
    # the first: class 3 version 0 1.0.12.7.0.255, attributes 1-3 read-only, method 1 (reset) no access
    first = (b"\x02\x04\x12\x00\x03\x11\x00\x09\x06\x01\x00\x0c\x07\x00\xff\x02\x02"
             b"\x01\x03\x02\x03\x0f\x01\x16\x01\x00\x02\x03\x0f\x02\x16\x01\x00\x02\x03\x0f\x03\x16\x01\x00"
             b"\x01\x01\x02\x02\x0f\x01\x16\x00")
    assert v[3:3 + len(first)] == first
    assert b"\x12\x00\x46\x11\x00\x09\x06\x00\x00\x60\x03\x0a\xff" in v  # class 70 0.0.96.3.10.255 is listed
    assoc = b"\x12\x00\x0f\x11\x01\x09\x06\x00\x00\x28\x00\x00\xff"  # class 15 version 1 0.0.40.0.0.255
    i = v.index(assoc) + len(assoc)
    assert v[i + 2:i + 4] == b"\x01\x09" and b"\x0f\x07\x16\x00" in v[i:i + 70]  # 9 attributes, the secret no access
    assert get_long(a, 15, "0.0.40.0.1.255", 2)[0] == v  # IS 15959's name for the public client's association
    made = a.get(15, cosem.obis("0.0.40.0.0.255"), 2, None, cosem.PUBLIC_CLIENT)  # made element by element as
    assert not isinstance(made, (bytes, list)) and next(made) == b"\x01\x1e"  # it goes out: never whole on the heap
    assert get(a, 15, "0.0.40.0.0.255", 3) == b"\x00\x02\x02\x0f\x10\x12\x00\x01"  # client SAP 16, server SAP 1
    assert get(a, 15, "0.0.40.0.0.255", 4) == b"\x00\x09\x07\x60\x85\x74\x05\x08\x01\x01"
    assert get(a, 15, "0.0.40.0.0.255", 5)[:8] == b"\x00\x02\x06\x04\x18\x00\x10\x14"  # GET, blocks, selective
    assert get(a, 15, "0.0.40.0.0.255", 6) == b"\x00\x09\x07\x60\x85\x74\x05\x08\x02\x00"  # no authentication
    assert get(a, 15, "0.0.40.0.0.255", 7) == b"\x01\x03"  # the secret: read-write denied
    assert get(a, 15, "0.0.40.0.0.255", 8) == b"\x00\x16\x02"  # associated
    assert get(a, 15, "0.0.40.0.0.255", 1) == b"\x00\x09\x06\x00\x00\x28\x00\x00\xff"
    assert get(a, 1, "0.0.40.0.0.255", 2) == b"\x01\x09"  # its name under another class: class inconsistent
    # the meter reader's association, not the one in force: client SAP 32, low-level security, not associated
    assert get(a, 15, "0.0.40.0.2.255", 3) == b"\x00\x02\x02\x0f\x20\x12\x00\x01"
    assert get(a, 15, "0.0.40.0.2.255", 6) == b"\x00\x09\x07\x60\x85\x74\x05\x08\x02\x01"
    assert get(a, 15, "0.0.40.0.2.255", 8) == b"\x00\x16\x00"
    assert get(a, 15, "0.0.40.0.1.255", 8) == b"\x00\x16\x02"
    # the utility settings' association (IS 15959's 0.0.40.0.3.255): client SAP 48, context with ciphering, HLS-GMAC
    assert get(a, 15, "0.0.40.0.3.255", 3) == b"\x00\x02\x02\x0f\x30\x12\x00\x01"
    assert get(a, 15, "0.0.40.0.3.255", 4) == b"\x00\x09\x07\x60\x85\x74\x05\x08\x01\x03"
    assert get(a, 15, "0.0.40.0.3.255", 6) == b"\x00\x09\x07\x60\x85\x74\x05\x08\x02\x05"
    assert get(a, 15, "0.0.40.0.3.255", 8) == b"\x00\x16\x00"
    assert get(a, 15, "0.0.40.0.3.255", 9) == b"\x00\x09\x06" + bytes(6)  # no security setup object
    utility = get_long(a, 15, "0.0.40.0.3.255", 2)[0]  # its object list: the relay's methods 1 and 2 accessible
    relay_methods = b"\x01\x02\x02\x02\x0f\x01\x16\x01\x02\x02\x0f\x02\x16\x01"
    assert utility[:3] == v[:3] and relay_methods in utility and relay_methods not in v
    without_relay = dlms_objects.Objects(tick, None, b"MKT0000000000042", lambda: 330)
    assert (70, dlms_objects.DISCONNECT) not in list(without_relay.names()) and len(list(without_relay.names())) == 29


def test_a_meter_that_pushes_has_an_alert_push_setup_the_reader_reads_and_nobody_writes():
    tick, control, _ = meter()
    setup = cosem.obis("0.4.25.9.0.255")
    plain = dlms_objects.Objects(tick, control, b"MKT0000000000042", lambda: 330)
    assert (40, setup) not in list(plain.names())
    assert plain.get(40, setup, 2) == cosem.OBJECT_UNDEFINED  # a meter that pushes nothing has none
    objects = dlms_objects.Objects(tick, control, b"MKT0000000000042", lambda: 330,
                                   push=({"ip": "10.64.0.1", "port": 1337, "dlms_port": 4059}, 3, 60))
    assert list(objects.names())[-5] == (40, setup)  # listed before the associations
    reader = cosem.READER_CLIENT
    assert objects.get(40, setup, 1) == b"\x09\x06" + setup
    assert objects.get(40, setup, 2) == cosem.READ_WRITE_DENIED  # the public client: its name only
    assert objects.get(40, setup, 3) == cosem.READ_WRITE_DENIED
    assert objects.get(1, setup, 2) == 9  # its name under another class: class inconsistent
    # the pushed values: the device id (IS 15959's 0.0.96.1.2.255, attribute 2), the setup's own name, the clock's
    # time, the Event Status Word (0.0.94.91.18.255)
    pushed = bytes(objects.get(40, setup, 2, None, reader))
    assert pushed[:2] == b"\x01\x04" and len(pushed) == 2 + 4 * 18, pushed
    assert pushed[2:20] == b"\x02\x04\x12\x00\x01\x09\x06\x00\x00\x60\x01\x02\xff\x0f\x02\x12\x00\x00"
    assert pushed[20:27] == b"\x02\x04\x12\x00\x28\x09\x06" and pushed[27:33] == setup and pushed[34] == 1
    assert pushed[38:43] == b"\x02\x04\x12\x00\x08" and pushed[45:51] == cosem.obis("0.0.1.0.0.255")
    assert pushed[56:61] == b"\x02\x04\x12\x00\x01" and pushed[63:69] == cosem.obis("0.0.94.91.18.255")
    # UDP to the head-end's address and DLMS port, xDLMS APDUs; no window, no random delay; 3 retries 60 s apart
    assert objects.get(40, setup, 3, None, reader) == b"\x02\x03\x16\x01\x09\x0e10.64.0.1:4059\x16\x00"
    assert objects.get(40, setup, 4, None, reader) == b"\x01\x00"
    assert objects.get(40, setup, 5, None, reader) == b"\x12\x00\x00"
    assert objects.get(40, setup, 6, None, reader) == b"\x11\x03"
    assert objects.get(40, setup, 7, None, cosem.UTILITY_CLIENT) == b"\x12\x00\x3c"
    assert objects.get(40, setup, 8, None, reader) == cosem.READ_WRITE_DENIED
    a = cosem.Association(objects.get)
    assert a.apdu(AARQ)[0] == 0x61
    listed, _ = get_long(a, 15, "0.0.40.0.0.255", 2)
    element = b"\x02\x04\x12\x00\x28\x11\x00\x09\x06" + setup  # class 40, version 0
    i = listed.index(element) + len(element)
    # to the public client: attribute 1 read-only, 2-7 no access (the head-end's address), method 1 (push) no access
    assert listed[i:i + 4] == b"\x02\x02\x01\x07" and listed[i + 4:i + 11] == b"\x02\x03\x0f\x01\x16\x01\x00"
    assert listed[i + 11:i + 18] == b"\x02\x03\x0f\x02\x16\x00\x00"
    assert listed[i + 53:i + 61] == b"\x01\x01\x02\x02\x0f\x01\x16\x00"
    # a SET of its destination: not for the public client (nor the others: the head-end is a signed SMP command's)
    assert a.apdu(b"\xc1\x01\xc1\x00\x28" + setup + b"\x03\x00\x02\x03\x16\x01\x09\x00\x16\x00") == b"\xd8\x02\x02"


T0 = 1764547200  # 2025-12-01 00:00:00 UTC: 05:30 local at +330 minutes


def _event_meter():
    from app import events

    now = [T0]
    log = events.EventLog(clock=lambda: now[0])
    for dt, code in ((0, 101), (60, 102), (120, 151), (180, 410), (240, 301), (300, 302), (360, 101), (420, 102)):
        now[0] = T0 + dt
        log.add(code, "test")
    log.clock = None  # the RTC lost: events with no time
    log.add(102, "time unknown")
    log.add(251, "cover")
    tick, control, _ = meter()
    objects = dlms_objects.Objects(tick, control, b"MKT0000000000042", lambda: 330, log)
    a = cosem.Association(objects.get)
    assert a.apdu(AARQ)[0] == 0x61
    return objects, a, log


def _entry(e0, e1, c0=1, c1=0):
    return b"\x02" + bytes((0x02, 0x04, 0x06)) + e0.to_bytes(4, "big") + b"\x06" + e1.to_bytes(4, "big") \
        + b"\x12" + c0.to_bytes(2, "big") + b"\x12" + c1.to_bytes(2, "big")


def _range(lo, hi):
    clock = b"\x02\x04\x12\x00\x08\x09\x06\x00\x00\x01\x00\x00\xff\x0f\x02\x12\x00\x00"
    dt = dlms_objects.date_time
    return b"\x01\x02\x04" + clock + b"\x09\x0c" + dt(lo, 330) + b"\x09\x0c" + dt(hi, 330) + b"\x01\x00"


def get_sel(a, ln, selection):
    r = a.apdu(b"\xc0\x01\xc1\x00\x07" + cosem.obis(ln) + b"\x02\x01" + selection)
    assert r[:3] == b"\xc4\x01\xc1", r
    return r[3:]


def row(at, code, snap=b"\x00\x00\x00\x00"):
    """An event profile's row: the time and code, then the current, voltage, power factor and import energy at the
    event (null-data each by default: a log with no metering behind it)."""
    return b"\x02\x06\x09\x0c" + dlms_objects.date_time(at, 330) + b"\x12" + code.to_bytes(2, "big") + snap


def test_event_profiles_are_the_rings_is15959_events_by_category():
    def body():
        objects, a, log = _event_meter()
        names = list(objects.names())
        assert len(names) == 45 and (7, cosem.obis("0.0.99.98.5.255")) in names
        assert (7, cosem.obis("1.0.94.91.7.255")) in names  # the event profiles' scaler profile
        power = get(a, 7, "0.0.99.98.2.255", 2)
        assert power == b"\x00\x01\x05" + row(T0, 101) + row(T0 + 60, 102) + row(T0 + 360, 101) \
            + row(T0 + 420, 102) + row(None, 102)
        assert get(a, 7, "0.0.99.98.6.255", 2) == b"\x00\x01\x02" + row(T0 + 240, 301) + row(T0 + 300, 302)
        assert get(a, 7, "0.0.99.98.3.255", 2) == b"\x00\x01\x01" + row(T0 + 120, 151)  # the clock set
        assert get(a, 7, "0.0.99.98.5.255", 2) == b"\x00\x01\x01" + row(None, 251)  # the cover, time unknown
        assert get(a, 7, "0.0.99.98.0.255", 2) == b"\x00\x01\x00"  # no voltage event; 410 (this kit's) in none
        assert get(a, 1, "0.0.96.11.2.255", 2) == b"\x00\x12\x00\x66"  # the last power event: 102
        assert get(a, 1, "0.0.96.11.0.255", 2) == b"\x00\x12\x00\x00"  # none yet: 0
        assert get(a, 7, "0.0.99.98.2.255", 7) == b"\x00\x06\x00\x00\x00\x05"  # entries in use
        assert get(a, 7, "0.0.99.98.2.255", 8) == b"\x00\x06\x00\x00\x00\x40"  # the ring's 64
        assert get(a, 7, "0.0.99.98.2.255", 3) == (  # capture objects: the clock's time, the last-event code, then
            b"\x00\x01\x06\x02\x04\x12\x00\x08\x09\x06\x00\x00\x01\x00\x00\xff\x0f\x02\x12\x00\x00"  # I, V, PF, kWh
            b"\x02\x04\x12\x00\x01\x09\x06\x00\x00\x60\x0b\x02\xff\x0f\x02\x12\x00\x00"
            + b"".join(b"\x02\x04\x12\x00\x03\x09\x06" + cosem.obis(ln) + b"\x0f\x02\x12\x00\x00"
                       for ln in ("1.0.11.7.0.255", "1.0.12.7.0.255", "1.0.13.7.0.255", "1.0.1.8.0.255")))
        assert get(a, 7, "0.0.99.98.7.255", 2) == b"\x01\x04"  # no such category
        assert get(a, 1, "0.0.99.98.2.255", 2) == b"\x01\x09"  # a profile's name under another class

    _with_workdir(body)


def test_event_profiles_select_by_entry_and_by_range():
    def body():
        objects, a, log = _event_meter()
        ln = "0.0.99.98.2.255"
        assert get_sel(a, ln, _entry(2, 3)) == b"\x00\x01\x02" + row(T0 + 60, 102) + row(T0 + 360, 101)
        assert get_sel(a, ln, _entry(4, 0)) == b"\x00\x01\x02" + row(T0 + 420, 102) + row(None, 102)  # to the last
        codes = get_sel(a, ln, _entry(1, 2, 2, 2))  # the code column only
        assert codes == b"\x00\x01\x02\x02\x01\x12\x00\x65\x02\x01\x12\x00\x66"
        assert get_sel(a, ln, _entry(1, 1, 5)) == b"\x00\x01\x01\x02\x02\x00\x00"  # PF and energy: not known here
        assert get_sel(a, ln, _entry(1, 1, 7)) == b"\x01\x0c"  # no 7th column
        assert get_sel(a, ln, _entry(9, 0)) == b"\x00\x01\x00"  # past the end: none
        # by range on the clock (local date-times), both ends included; an event with no time is never in one
        assert get_sel(a, ln, _range(T0 + 60, T0 + 360)) == b"\x00\x01\x02" + row(T0 + 60, 102) + row(T0 + 360, 101)
        assert get_sel(a, ln, _range(T0 + 1000, T0 + 2000)) == b"\x00\x01\x00"
        # refused: a malformed or unsupported selection, selective access on anything but a profile's buffer
        assert get_sel(a, ln, _entry(0, 2)) == b"\x01\x0c"  # entries count from 1
        assert get_sel(a, ln, _entry(3, 2)) == b"\x01\x0c"
        assert get_sel(a, ln, b"\x02\x02\x04\x06") == b"\x01\x0c"  # cut short
        assert get_sel(a, ln, b"\x03\x00") == b"\x01\x0c"  # selector 3: not offered
        unknown = _range(T0, T0 + 60)[:-16] + b"\xff" * 12 + b"\x01\x00"  # a date-time not specified
        assert get_sel(a, ln, unknown) == b"\x01\x0c"
        r = a.apdu(b"\xc0\x01\xc1\x00\x03" + cosem.obis("1.0.12.7.0.255") + b"\x02\x01" + _entry(1, 0))
        assert r == b"\xc4\x01\xc1\x01\x03"  # a register: read-write denied

    _with_workdir(body)


def test_event_profiles_read_the_compartments_a_refusal_flood_cannot_turn_over():
    def body():
        from app import events

        now = [T0]
        log = events.EventLog(capacity=8, clock=lambda: now[0], logs=events.LOGS)
        log.add(251, "cover")
        for k in range(12):  # the power category: more than the ring holds
            now[0] = T0 + 60 * (k + 1)
            log.add(101 + k % 2)
        for _ in range(40):
            log.add(405, "bad token")  # the ring: refusals only now
        tick, control, _ = meter()
        a = cosem.Association(dlms_objects.Objects(tick, control, b"MKT0000000000042", lambda: 330, log).get)
        assert a.apdu(AARQ)[0] == 0x61
        assert all(e[1] == 405 for e in log.ring)
        power = get(a, 7, "0.0.99.98.2.255", 2)
        assert power == b"\x00\x01\x0c" + b"".join(row(T0 + 60 * (k + 1), 101 + k % 2) for k in range(12))
        assert get(a, 7, "0.0.99.98.5.255", 2) == b"\x00\x01\x01" + row(T0, 251)
        assert get(a, 1, "0.0.96.11.2.255", 2) == b"\x00\x12\x00\x66"  # the last power event: 102
        assert get(a, 7, "0.0.99.98.2.255", 7) == b"\x00\x06\x00\x00\x00\x0c"  # entries in use
        assert get(a, 7, "0.0.99.98.2.255", 8) == b"\x00\x06\x00\x00\x00\x32"  # a compartment's 50
        assert get(a, 7, "0.0.99.98.5.255", 8) == b"\x00\x06\x00\x00\x00\x0a"  # the tamper compartment's 10
        assert get_sel(a, "0.0.99.98.2.255", _entry(12, 0)) == b"\x00\x01\x01" + row(T0 + 720, 102)

    _with_workdir(body)


def test_the_instantaneous_profile_is_one_row_of_the_registers_and_its_scaler_profile_their_scalers():
    def body():
        tick, _, a = meter()
        columns = (("1.0.12.7.0.255", 3), ("1.0.11.7.0.255", 3), ("1.0.13.7.0.255", 3), ("1.0.14.7.0.255", 3),
                   ("1.0.9.7.0.255", 3), ("1.0.1.7.0.255", 3), ("1.0.1.8.0.255", 3), ("1.0.9.8.0.255", 3),
                   ("1.0.1.6.0.255", 4), ("1.0.1.6.0.255", 4), ("1.0.2.8.0.255", 3))
        captures = get(a, 7, "1.0.94.91.0.255", 3)
        assert captures[:3] == b"\x00\x01\x0c"  # 12 columns: the clock first
        assert captures[3:21] == b"\x02\x04\x12\x00\x08\x09\x06\x00\x00\x01\x00\x00\xff\x0f\x02\x12\x00\x00"
        assert b"\x12\x00\x04\x09\x06\x01\x00\x01\x06\x00\xff\x0f\x05" in captures  # maximum demand's time
        assert get(a, 7, "1.0.94.91.0.255", 2)[19:22] == b"\x00\x00\x00"  # before the first reading: null values
        r = tick.reading
        r.voltage, r.current, r.p, r.s, r.pf, r.frequency = 230.12, 4.321, 990.0, 995.0, 0.995, 49.98
        tick.ms = 1
        tick.regs.add(0, 3600 * 1000 * 1234)
        row = get(a, 7, "1.0.94.91.0.255", 2)
        assert row[:4] == b"\x00\x01\x01\x02" and row[4] == 12 and row[5:7] == b"\x09\x0c"  # one row, the clock
        cells = b"".join(get(a, cls, ln, 2)[1:] for ln, cls in columns[:8])
        assert row[5 + 14:5 + 14 + len(cells)] == cells  # the registers' own values, in the columns' order
        scalers = get(a, 7, "1.0.94.91.3.255", 2)
        assert scalers[:5] == b"\x00\x01\x01\x02\x0a"  # one row of 10: the registers', maximum demand's
        assert scalers[5:] == b"".join(get(a, cls, ln, 3)[1:] for ln, cls in columns[:9] + columns[10:])
        assert get(a, 7, "1.0.94.91.3.255", 3)[:3] == b"\x00\x01\x0a"
        assert get(a, 7, "1.0.94.91.0.255", 7) == b"\x00\x06\x00\x00\x00\x01"  # one entry
        sel = a.apdu(b"\xc0\x01\xc1\x00\x07" + cosem.obis("1.0.94.91.0.255") + b"\x02\x01" + _entry(1, 0))
        assert sel == b"\xc4\x01\xc1\x01\x03"  # no selective access on a snapshot

    _with_workdir(body)


def test_an_event_row_carries_the_supply_s_figures_at_its_reading_with_their_scalers_in_a_profile():
    def body():
        from app import events

        now = [T0]
        tick, control, _ = meter()
        log = events.EventLog(clock=lambda: now[0], logs=events.LOGS)
        log.tick = tick
        log.add(102, "before the first reading")  # the energy register only
        r = tick.reading
        r.voltage, r.current, r.pf = 231.47, 12.5, -0.874
        tick.ms = 1
        tick.regs.add(0, 3600 * 1000 * 1234)  # 1,234 Wh imported
        now[0] = T0 + 60
        log.add(301, "relay")
        a = cosem.Association(dlms_objects.Objects(tick, control, b"MKT0000000000042", lambda: 330, log).get)
        assert a.apdu(AARQ)[0] == 0x61
        energy = get(a, 3, "1.0.1.8.0.255", 2)[1:]  # (the registers' values, without the get's success byte)
        snap = b"".join(get(a, 3, ln, 2)[1:] for ln in ("1.0.11.7.0.255", "1.0.12.7.0.255", "1.0.13.7.0.255"))
        assert get(a, 7, "0.0.99.98.6.255", 2) == b"\x00\x01\x01" + row(T0 + 60, 301, snap + energy)
        assert get(a, 7, "0.0.99.98.2.255", 2) == b"\x00\x01\x01" + row(T0, 102, b"\x00\x00\x00\x15" + bytes(8))
        assert get_sel(a, "0.0.99.98.6.255", _entry(1, 1, 6, 6)) == b"\x00\x01\x01\x02\x01" + energy
        scalers = get(a, 7, "1.0.94.91.7.255", 2)  # one row: the four registers' scaler and unit
        assert scalers == b"\x00\x01\x01\x02\x04" + b"".join(get(a, 3, ln, 3)[1:] for ln in (
            "1.0.11.7.0.255", "1.0.12.7.0.255", "1.0.13.7.0.255", "1.0.1.8.0.255"))
        assert get(a, 7, "1.0.94.91.7.255", 3)[:3] == b"\x00\x01\x04"

    _with_workdir(body)


def test_a_profile_read_that_finds_no_room_is_tried_once_more_on_a_collected_heap():
    # an emulated ESP32 (its heap in pieces) answered an event profile's read "other reason" (250): the module and
    # its read did not fit where they landed, and room was there once the last read's code was collected
    tick, control, _ = meter()
    objects = dlms_objects.Objects(tick, control, b"MKT0000000000042", lambda: 330)
    real = objects._read
    calls = []

    def tight(*args):
        calls.append(args[1])
        if len(calls) == 1:
            raise MemoryError("memory allocation failed, allocating 1552 bytes")
        return real(*args)

    objects._read = tight
    v = objects.get(7, cosem.obis("1.0.94.91.3.255"), 2)  # the scaler profile
    assert isinstance(v, (bytes, list)) and len(calls) == 2
    calls.clear()

    def never(*args):
        calls.append(args[1])
        raise MemoryError("memory allocation failed, allocating 1552 bytes")

    objects._read = never  # no room on the collected heap either: temporary failure, ask again later
    assert objects.get(7, cosem.obis("1.0.94.91.3.255"), 2) == 2 and len(calls) == 2
    assert objects._depth == 0
    a = cosem.Association(objects.get)
    assert a.apdu(AARQ)[0] == 0x61
    assert get(a, 7, "1.0.94.91.3.255", 2) == b"\x01\x02"  # GET.response: data-access-result temporary-failure
