"""firmware/app/load_profile.py and the block load profile's path through app/registers.py, on CPython and in the
MicroPython VM (plain asserts; see conftest.py): rows per demand period in a file per day, what a power cut or damage
leaves, the days kept, and the profile as a DLMS client reads it (app/dlms_profiles.py through app/cosem.py)."""

import os

import fwtest
from app import cosem, dlms_objects, dsp, load_profile, registers
from app.tick import Tick

AARQ = bytes.fromhex("601da109060760857405080101be10040e01000000065f1f0400401e5dffff")
DAY = 86400
T0 = 1780000200 - 1780000200 % DAY  # a UTC midnight in 2026


def _rows(lo=None, hi=None):
    return list(load_profile.rows(lo, hi))


def test_a_closed_period_leaves_its_averages_and_energies():
    r = registers.Registers()
    assert r.demand(100, 900, 90000) is None and r.closed is None  # the first period after a start only opens one
    for _ in range(9):  # 900 s of 100-s readings: 230 V for 450 s then 240 V, 5 A throughout
        r.integrate(100 * 1000 * 1150, 100 * 1000 * 100, 100 * 1000 * 1200, 1)
        r.average(230.0 if _ < 4 else 240.0, 5.0, 100000)
    r.integrate(100 * 1000 * 1150, 0, 100 * 1000 * 1200, 1)
    r.average(240.0, 5.0, 100000)
    r.integrate(-100 * 1000 * 360, 0, 0, 1)  # and 36 kJ exported: 10 Wh
    assert r.demand(101, 900, 90900) is not None
    end, v, i, imp, vah, exp = r.closed
    assert end == 90900 and v == 23600 and i == 5000, r.closed  # (4 * 230 + 6 * 240) / 10 = 236.00 V
    assert imp == 319444 and vah == 333333 and exp == 10000, r.closed  # mWh: 1.15 MJ * 10 / 3600, ...
    r.closed = None
    r.integrate(3600 * 1000, 0, 0, 1)
    assert r.demand(102, 900, None) is not None and r.closed is None  # a period that ended at an unknown time: no row
    r.integrate(3600 * 1000, 0, 0, 1)
    assert r.demand(103, 900, 92700) is not None and r.closed is None  # nor one that began at an unknown time
    r.average(230.0, 1.0, 1000)
    r.integrate(3600 * 1000, 0, 0, 1)
    assert r.demand(104, 900, 93600) is not None
    assert r.closed[0] == 93600 and r.closed[3] == 1000 and r.closed[1] == 23000  # only the period's own energy
    r.closed = None
    r.integrate(3600 * 1000, 0, 0, 1)
    assert r.demand(102, 900, 91800) is not None and r.closed is None  # the clock set back: the period has no true end
    r.integrate(3600 * 1000, 0, 0, 1)
    assert r.demand(110, 900, 99000) is not None and r.closed[0] == 92700  # a clock set on: stamped with its own end


def test_rows_go_to_a_file_per_day_and_read_back_in_order():
    def body():
        assert _rows() == [] and load_profile.count() == 0 and load_profile.days() == []
        rows = [(T0 + k * 900, 23000 + k, 4000 + k, 250000 + k, 260000, k) for k in range(1, 100)]  # past midnight
        for row in rows:
            load_profile.capture(row)
        assert load_profile.days() == [T0 // DAY, T0 // DAY + 1]
        assert _rows() == rows and load_profile.count() == 99
        assert os.stat(load_profile.DIR + "/" + str(T0 // DAY))[6] == 95 * load_profile.SIZE  # 00:15 ... 23:45
        # by range: both ends included; a range inside one day does not read the other's file
        assert _rows(T0 + 900 * 10, T0 + 900 * 12) == rows[9:12]
        assert _rows(T0 + DAY, None) == rows[95:]
        assert _rows(T0 + 2 * DAY, None) == []

    fwtest.in_workdir(body, "meter")


def test_figures_beyond_a_field_are_its_limit_never_wrapped():
    row = load_profile.unpack(load_profile.pack((T0, 70000.0, -5, 2 ** 40, 1, 2)))
    assert row == (T0, 0xFFFF, 0, 0xFFFFFFFF, 1, 2)


def _with_a_damaged_third_row(rows):
    """Capture `rows` (all of one UTC day), then flip a bit of the third one's average current: its CRC fails. The
    day's file path."""
    for row in rows:
        load_profile.capture(row)
    path = load_profile.DIR + "/" + str(T0 // DAY)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[load_profile.SIZE * 2 + 5] ^= 0x40
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_a_damaged_or_part_row_is_skipped_and_the_rest_read():
    def body():
        rows = [(T0 + k * 900, 23000, 1000, k, k, 0) for k in range(1, 6)]
        path = _with_a_damaged_third_row(rows)
        with open(path, "ab") as f:
            f.write(b"\x01\x02\x03")  # and a part row after the last (a write the flash took in part)
        # every row held: the damaged one in its place as None (entry k stays the k-th row), the part row not at all;
        # by range: the readable rows in it
        assert _rows() == rows[:2] + [None] + rows[3:] and load_profile.count() == 5
        assert _rows(T0, T0 + DAY) == rows[:2] + rows[3:]
        late = (T0 + 6 * 900, 23000, 1000, 6, 6, 0)
        load_profile.capture(late)  # the next row after a part one starts where a row starts: read whole
        assert _rows() == rows[:2] + [None] + rows[3:] + [None, late] and load_profile.count() == 7
        assert list(load_profile.rows(None, None, load_profile.BLOCK, 5)) == [None, late]  # the first five skipped
        assert list(load_profile.rows(None, None, load_profile.BLOCK, 9)) == []
        assert load_profile.last() == late

    fwtest.in_workdir(body, "meter")


def test_a_new_days_first_row_removes_the_days_past_those_kept():
    def body():
        first = T0 // DAY
        for d in range(load_profile.DAYS + 3):
            load_profile.capture((T0 + d * DAY + 900, 23000, 1000, d, 0, 0))
        fwtest.write(load_profile.DIR + "/notes", b"not a day")  # not the profile's: left alone, never read
        kept = load_profile.days()
        assert kept == list(range(first + 3, first + load_profile.DAYS + 3)), kept
        assert [r[3] for r in _rows()] == list(range(3, load_profile.DAYS + 3))
        load_profile.capture((T0 + (load_profile.DAYS + 2) * DAY + 1800, 23000, 1000, 99, 0, 0))  # same day: no prune
        assert load_profile.days() == kept and "notes" in os.listdir(load_profile.DIR)

    fwtest.in_workdir(body, "meter")


def _meter(period=900):
    tick = Tick(dsp.Reading(), registers.Registers())
    objects = dlms_objects.Objects(tick, None, b"MKT0000000000042", lambda: 330, period=lambda: period)
    return objects, fwtest.reader_association(objects.get)  # the load profiles are the meter reader's


def _get(a, cls, ln, attr, selection=b""):
    r = a.apdu(b"\xc0\x01\xc1" + bytes((0, cls)) + cosem.obis(ln) + bytes((attr,)) + (
        b"\x01" + selection if selection else b"\x00"))
    return r


def _row(end, v, i, imp, vah, exp):
    return (b"\x02\x06\x09\x0c" + dlms_objects.date_time(end, 330) + b"\x12" + v.to_bytes(2, "big")
            + b"".join(b"\x06" + x.to_bytes(4, "big") for x in (i, imp, vah, exp)))


def _entry(e0, e1, c0=1, c1=0):
    return b"\x02\x02\x04\x06" + e0.to_bytes(4, "big") + b"\x06" + e1.to_bytes(4, "big") \
        + b"\x12" + c0.to_bytes(2, "big") + b"\x12" + c1.to_bytes(2, "big")


def _range(lo, hi):
    clock = b"\x02\x04\x12\x00\x08\x09\x06\x00\x00\x01\x00\x00\xff\x0f\x02\x12\x00\x00"
    dt = dlms_objects.date_time
    return b"\x01\x02\x04" + clock + b"\x09\x0c" + dt(lo, 330) + b"\x09\x0c" + dt(hi, 330) + b"\x01\x00"


def _whole(a, first):
    """A GET's data, through GET.request-next for as many blocks as it takes."""
    if first[:2] == b"\xc4\x01":
        assert first[3] == 0, first
        return first[4:]
    out = b""
    r = first
    while True:
        assert r[:2] == b"\xc4\x02" and r[8] == 0, r
        n, k = r[9], 10
        if n & 0x80:
            size = n & 0x7F
            n, k = int.from_bytes(r[10:10 + size], "big"), 10 + size
        out += r[k:k + n]
        if r[3]:
            return out
        r = a.apdu(b"\xc0\x02\xc1" + r[4:8])


def test_the_block_load_profile_as_a_dlms_client_reads_it():
    def body():
        objects, a = _meter()
        names = list(objects.names())
        assert (7, cosem.obis("1.0.99.1.0.255")) in names and (7, cosem.obis("1.0.94.91.4.255")) in names
        assert (3, cosem.obis("1.0.1.29.0.255")) in names
        assert _get(a, 3, "1.0.12.27.0.255", 2) == b"\xc4\x01\xc1\x01\x02"  # no row yet: temporary failure
        assert _whole(a, _get(a, 7, "1.0.99.1.0.255", 2)) == b"\x01\x00"
        rows = [(T0 + k * 900, 23000 + k, 4000, 250000 + k, 260000, k) for k in range(1, 41)]
        for row in rows:
            load_profile.capture(row)
        whole = _whole(a, _get(a, 7, "1.0.99.1.0.255", 2))  # 40 rows of 44 bytes: in blocks
        assert whole == b"\x01\x28" + b"".join(_row(*r) for r in rows)
        assert _get(a, 7, "1.0.99.1.0.255", 4) == b"\xc4\x01\xc1\x00\x06\x00\x00\x03\x84"  # capture period 900 s
        assert _get(a, 7, "1.0.99.1.0.255", 7) == b"\xc4\x01\xc1\x00\x06\x00\x00\x00\x28"  # 40 in use
        assert _get(a, 7, "1.0.99.1.0.255", 8)[-4:] == (load_profile.DAYS * 96).to_bytes(4, "big")
        capture = _get(a, 7, "1.0.99.1.0.255", 3)
        assert capture.startswith(b"\xc4\x01\xc1\x00\x01\x06") and cosem.obis("1.0.9.29.0.255") in capture
        # by entry and by range (local date-times, both ends included), columns by entry
        assert _whole(a, _get(a, 7, "1.0.99.1.0.255", 2, _entry(2, 3))) == b"\x01\x02" + _row(*rows[1]) + _row(*rows[2])
        assert _whole(a, _get(a, 7, "1.0.99.1.0.255", 2, _entry(40, 0, 3, 3))) == b"\x01\x01\x02\x01\x06" + (
            4000).to_bytes(4, "big")
        assert _whole(a, _get(a, 7, "1.0.99.1.0.255", 2, _range(rows[4][0], rows[6][0]))) == b"\x01\x03" + b"".join(
            _row(*r) for r in rows[4:7])
        assert _whole(a, _get(a, 7, "1.0.99.1.0.255", 2, _entry(41, 0))) == b"\x01\x00"
        assert _get(a, 7, "1.0.99.1.0.255", 2, _entry(0, 1)) == b"\xc4\x01\xc1\x01\x0c"  # entries count from 1
        # the registers: the newest row's figures, scalers and units (V, A, Wh, VAh, Wh)
        assert _get(a, 3, "1.0.12.27.0.255", 2) == b"\xc4\x01\xc1\x00\x12" + (23040).to_bytes(2, "big")
        assert _get(a, 3, "1.0.2.29.0.255", 2) == b"\xc4\x01\xc1\x00\x06" + (40).to_bytes(4, "big")
        assert _get(a, 3, "1.0.11.27.0.255", 3) == b"\xc4\x01\xc1\x00\x02\x02\x0f\xfd\x16\x21"
        assert _get(a, 3, "1.0.9.29.0.255", 3) == b"\xc4\x01\xc1\x00\x02\x02\x0f\xfd\x16\x1f"
        scalers = _whole(a, _get(a, 7, "1.0.94.91.4.255", 2))
        assert scalers == b"\x01\x01\x02\x05" + b"".join(cosem.scaler_unit(s, u) for s, u in (
            (-2, 35), (-3, 33), (-3, 30), (-3, 31), (-3, 30)))
        # a meter without the profile (no period given) has none of it
        plain = dlms_objects.Objects(Tick(dsp.Reading(), registers.Registers()), None, b"MKT0", lambda: 330)
        assert plain.get(7, cosem.obis("1.0.99.1.0.255"), 2) == cosem.OBJECT_UNDEFINED
        assert (7, cosem.obis("1.0.99.1.0.255")) not in list(plain.names())

    fwtest.in_workdir(body, "meter")


def test_the_public_client_sees_the_load_profiles_listed_but_reads_only_their_names():
    # a household's days, half-hour by half-hour, are the meter reader's (client SAP 32, its secret)
    def body():
        objects, reader = _meter()
        load_profile.capture((T0 + 900, 23000, 4000, 250000, 260000, 1))
        load_profile.billing((T0, 961, 250000) + (31250,) * 8 + (260000, 1, 3000, T0 - 3600))
        a = cosem.Association(objects.get)
        assert a.apdu(AARQ, cosem.PUBLIC_CLIENT)[0] == 0x61 and a.associated
        for cls, ln in ((7, "1.0.99.1.0.255"), (7, "1.0.99.2.0.255"), (7, "1.0.98.1.0.255"), (7, "1.0.94.91.4.255"),
                        (7, "1.0.94.91.5.255"), (7, "1.0.94.91.6.255"), (3, "1.0.12.27.0.255"), (3, "1.0.11.27.0.255"),
                        (3, "1.0.1.29.0.255"), (3, "1.0.9.29.0.255"), (3, "1.0.2.29.0.255"), (3, "1.0.13.0.0.255")):
            for attr in range(2, 9 if cls == 7 else 4):
                assert _get(a, cls, ln, attr) == b"\xc4\x01\xc1\x01\x03", (ln, attr)  # read-write denied
            assert _get(a, cls, ln, 1) == b"\xc4\x01\xc1\x00\x09\x06" + cosem.obis(ln)
            assert _get(a, cls, ln, 2, _entry(1, 1)) == b"\xc4\x01\xc1\x01\x03"
            assert _get(reader, cls, ln, 2)[:4] in (b"\xc4\x01\xc1\x00", b"\xc4\x02\xc1\x01")  # the reader's data
        assert _get(a, 3, "1.0.12.7.0.255", 3)[:4] == b"\xc4\x01\xc1\x00"  # an instantaneous value: public
        # the object list each client reads names them all; the public client's gives the profiles' attributes
        # 2-8 and the registers' 2-3 no access (and the buffer no selective access), the reader's read-only
        public = _whole(a, _get(a, 15, "0.0.40.0.0.255", 2))
        theirs = _whole(reader, _get(reader, 15, "0.0.40.0.0.255", 2))

        def rights(listing, ln):
            i = listing.index(b"\x09\x06" + cosem.obis(ln)) + 8
            return listing[i:i + 120]

        buffer_public = b"\x02\x03\x0f\x02\x16\x00\x00"
        buffer_reader = b"\x02\x03\x0f\x02\x16\x01\x01\x02\x0f\x01\x0f\x02"
        assert buffer_public in rights(public, "1.0.99.1.0.255") and buffer_reader in rights(theirs, "1.0.99.1.0.255")
        assert b"\x0f\x02\x16\x00" in rights(public, "1.0.1.29.0.255")[:20]
        assert b"\x0f\x02\x16\x01" in rights(theirs, "1.0.1.29.0.255")[:20]
        assert buffer_public in rights(public, "1.0.98.1.0.255") and buffer_reader in rights(theirs, "1.0.98.1.0.255")
        assert len(public) == len(theirs) - 15  # only the buffer's selective access differs in size (3 profiles)

    fwtest.in_workdir(body, "meter")


def test_the_daily_profile_keeps_a_row_a_day_and_at_least_64_days():
    def body():
        daily = load_profile.DAILY
        big = 2 ** 40 + 5  # registers beyond 32 bits: the daily rows keep them whole
        for d in range(100):  # local midnights (+05:30): 18:30 UTC the day before
            load_profile.daily((T0 + d * DAY - 19800, big + d, 2 * d, 3 * d), False)
        got = list(load_profile.rows(None, None, daily))
        assert 64 <= len(got) <= 96 and got[-1] == (T0 + 99 * DAY - 19800, big + 99, 198, 297), got[-1]
        assert [r[1] - big for r in got] == list(range(100 - len(got), 100))
        assert len(load_profile.keys(daily)) == daily.keep and load_profile.count(daily) == len(got)
        # the first reading after a start takes the day's row only when the profile has none for that day yet
        load_profile.daily((T0 + 99 * DAY - 19800, 1, 1, 1), True)
        assert load_profile.last(daily)[1] == big + 99 and load_profile.count(daily) == len(got)
        load_profile.daily((T0 + 100 * DAY - 19800, big + 100, 0, 0), True)
        assert load_profile.last(daily)[1] == big + 100
        assert load_profile.unpack(load_profile.pack((T0, 2 ** 70, -1, 7), daily), daily) == (T0, 2 ** 64 - 1, 0, 7)

    fwtest.in_workdir(body, "meter")


def test_the_daily_load_profile_as_a_dlms_client_reads_it():
    def body():
        objects, a = _meter()
        names = list(objects.names())
        assert (7, cosem.obis("1.0.99.2.0.255")) in names and (7, cosem.obis("1.0.94.91.5.255")) in names
        midnights = [T0 + d * DAY - 19800 for d in range(1, 8)]
        for d, at in enumerate(midnights):
            load_profile.daily((at, 1000000 * d, 1100000 * d, 5 * d), False)
        want = b"".join(b"\x02\x04\x09\x0c" + dlms_objects.date_time(at, 330) + b"".join(
            b"\x15" + v.to_bytes(8, "big") for v in (1000000 * d, 1100000 * d, 5 * d)) for d, at in enumerate(midnights))
        assert _whole(a, _get(a, 7, "1.0.99.2.0.255", 2)) == b"\x01\x07" + want
        assert dlms_objects.date_time(midnights[0], 330)[5:8] == b"\x00\x00\x00"  # 00:00:00 local
        assert _get(a, 7, "1.0.99.2.0.255", 4) == b"\xc4\x01\xc1\x00\x06\x00\x01\x51\x80"  # capture period: a day
        assert _get(a, 7, "1.0.99.2.0.255", 7) == b"\xc4\x01\xc1\x00\x06\x00\x00\x00\x07"
        assert _get(a, 7, "1.0.99.2.0.255", 8) == b"\xc4\x01\xc1\x00\x06\x00\x00\x00\x60"  # 96 at most
        capture = _get(a, 7, "1.0.99.2.0.255", 3)
        assert capture.startswith(b"\xc4\x01\xc1\x00\x01\x04") and cosem.obis("1.0.2.8.0.255") in capture
        got = _whole(a, _get(a, 7, "1.0.99.2.0.255", 2, _range(midnights[2], midnights[3])))
        assert got[:2] == b"\x01\x02" and dlms_objects.date_time(midnights[2], 330) in got
        scalers = _whole(a, _get(a, 7, "1.0.94.91.5.255", 2))
        assert scalers == b"\x01\x01\x02\x03" + cosem.scaler_unit(-3, 30) + cosem.scaler_unit(-3, 31) \
            + cosem.scaler_unit(-3, 30)

    fwtest.in_workdir(body, "meter")


def test_a_clock_set_a_year_ahead_then_back_does_not_cost_the_profile_its_days():
    def body():
        for d in range(5):
            load_profile.capture((T0 + d * DAY + 900, 23000, 1000, d, 0, 0))
        load_profile.capture((T0 + 400 * DAY + 900, 23000, 1000, 400, 0, 0))  # a clock set a year ahead, a row
        load_profile.capture((T0 + 5 * DAY + 900, 23000, 1000, 5, 0, 0))  # then set right: its new day's first row
        assert load_profile.days() == [T0 // DAY + d for d in range(6)]  # the days kept, the future one gone
        assert load_profile.last()[3] == 5

    fwtest.in_workdir(body, "meter")


def test_a_damaged_row_keeps_its_entry_as_null_data_and_a_row_gone_mid_read_too():
    def body():
        objects, a = _meter()
        rows = [(T0 + k * 900, 23000, 4000, k, k, 0) for k in range(1, 6)]
        path = _with_a_damaged_third_row(rows)
        null = b"\x02\x06" + b"\x00" * 6
        assert _get(a, 7, "1.0.99.1.0.255", 7) == b"\xc4\x01\xc1\x00\x06\x00\x00\x00\x05"  # five held
        assert _whole(a, _get(a, 7, "1.0.99.1.0.255", 2, _entry(3, 3))) == b"\x01\x01" + null
        assert _whole(a, _get(a, 7, "1.0.99.1.0.255", 2, _entry(5, 5))) == b"\x01\x01" + _row(*rows[4])  # the newest
        assert _whole(a, _get(a, 7, "1.0.99.1.0.255", 2)) == b"\x01\x05" + b"".join(
            null if k == 2 else _row(*r) for k, r in enumerate(rows))
        assert _get(a, 3, "1.0.1.29.0.255", 2)[-4:] == (5).to_bytes(4, "big")  # the newest readable row's
        # the day's file removed between the count and the send (a new day's prune): the array stays as announced
        pieces = objects.get(7, cosem.obis("1.0.99.1.0.255"), 2, None, cosem.READER_CLIENT)
        head = next(pieces)
        os.remove(path)
        assert head == b"\x01\x05" and list(pieces) == [null] * 5

    fwtest.in_workdir(body, "meter")


def test_smp_group_65_reads_the_profiles_a_page_at_a_time_and_refuses_a_bad_request():
    def body():
        from app import meter_group
        from loader import smp

        grp = meter_group.MeterGroup(None, None)
        assert grp.profile({"kind": "block"}) == {"kind": "block", "held": 0, "rows": [], "more": False}
        rows = [(T0 + k * 900, 23000, 4000 + k, k, k, 0) for k in range(1, 21)]
        for row in rows:
            load_profile.capture(row)
        page = grp.profile({"kind": "block"})
        assert page["held"] == 20 and page["more"] and page["rows"] == [list(r) for r in rows[:16]]
        page = grp.profile({"kind": "block", "since": rows[15][0]})
        assert not page["more"] and page["rows"] == [list(r) for r in rows[16:]]
        assert grp.profile({"kind": "block", "since": rows[3][0], "limit": 2})["rows"] == [list(rows[4]), list(rows[5])]
        load_profile.daily((T0 - 19800, 2 ** 40, 5, 6), False)
        assert grp.profile({"kind": "daily"})["rows"] == [[T0 - 19800, 2 ** 40, 5, 6]]
        for bad in ({}, {"kind": "monthly"}, {"kind": b"block"}, {"kind": "block", "since": -1},
                    {"kind": "block", "since": 1.0}, {"kind": "block", "since": True}, {"kind": "block", "limit": 0},
                    {"kind": "block", "limit": 17}, {"kind": ["block"]}):
            try:
                grp.profile(bad)
                raise AssertionError("taken: %r" % (bad,))
            except smp.SmpError as e:
                assert e.rc == smp.EINVAL and e.group_rc == meter_group.RC_BAD_REQUEST, (bad, e.rc)

    fwtest.in_workdir(body, "meter")


def test_the_session_s_packed_names_are_is_15959_s():
    from app import dlms_names

    names = ("1.0.99.1.0.255", "1.0.99.2.0.255", "1.0.98.1.0.255", "1.0.94.91.4.255", "1.0.94.91.5.255",
             "1.0.94.91.6.255")  # app/dlms_load.py's order: the three profiles, then their scaler profiles
    assert dlms_names.LOAD_PROFILES == b"".join(cosem.obis(n) for n in names)
    assert dlms_names.LOAD_PROFILES[:dlms_names.SELECTIVE] == b"".join(cosem.obis(n) for n in names[:3])  # selective
    columns = ("1.0.12.27.0.255", "1.0.11.27.0.255", "1.0.1.29.0.255", "1.0.9.29.0.255", "1.0.2.29.0.255",
                 "1.0.13.0.0.255")  # the block load profile's columns in a row's order, then the billing period's pf
    assert dlms_names.LOAD_REGISTERS == b"".join(cosem.obis(n) for n in columns)
    assert dlms_names.among(dlms_names.LOAD_REGISTERS, cosem.obis("1.0.1.29.0.255"))
    assert not dlms_names.among(dlms_names.LOAD_REGISTERS, b"\x00\xff\x01\x00\x01\x1d")  # across two names
    assert not dlms_names.among(dlms_names.LOAD_REGISTERS, b"\x01\x00\x0c")  # part of one


def _billing_row(k, at):
    """A billing row as app/metering.py writes it: the billing date, the power factor (thousandths), the import
    register, import by zone 1-8, apparent, export (mWh, mVAh), the maximum demand (W) and its time (0: not known)."""
    return (at, 900 + k, 10 ** 6 * (k + 1)) + tuple(1000 * (k + 1) + z for z in range(8)) + (
        2 * 10 ** 6 * (k + 1), 7 * k, 1500 + k, at - 3600 if k else 0)


def test_the_billing_profile_keeps_a_row_a_billing_period_once():
    def body():
        billing = load_profile.BILLING
        months = [T0 + k * 31 * DAY for k in range(30)]  # thirty months' billing dates
        for k, at in enumerate(months):
            load_profile.billing(_billing_row(k, at))
        got = list(load_profile.rows(None, None, billing))
        assert 12 <= len(got) <= 26 and got[-1] == _billing_row(29, months[-1]), got[-1]
        assert len(load_profile.keys(billing)) == billing.keep and load_profile.count(billing) == len(got)
        # the same billing date again (a power cut before the registers said the period was billed): no second row
        load_profile.billing(_billing_row(30, months[-1]))
        assert load_profile.count(billing) == len(got) and load_profile.last(billing) == _billing_row(29, months[-1])
        # a new file whose one row is damaged: the newest readable row is the one before, in the file before, and
        # it still guards (before, last() looked in the newest file only and the guard let an older date in)
        later = months[-1] + 366 * DAY
        load_profile.billing(_billing_row(31, later))
        key = load_profile.keys(billing)[-1]
        assert key == later // billing.span
        with open(billing.path(key), "r+b") as f:
            f.seek(9)
            b = f.read(1)
            f.seek(9)
            f.write(bytes((b[0] ^ 1,)))
        assert load_profile.last(billing) == _billing_row(29, months[-1])
        held = load_profile.count(billing)
        load_profile.billing(_billing_row(32, months[-1]))
        assert load_profile.count(billing) == held

    fwtest.in_workdir(body, "meter")


def test_the_billing_profile_as_a_dlms_client_reads_it():
    def body():
        objects, a = _meter()
        names = list(objects.names())
        assert (7, cosem.obis("1.0.98.1.0.255")) in names and (7, cosem.obis("1.0.94.91.6.255")) in names
        assert (3, cosem.obis("1.0.13.0.0.255")) in names
        assert _get(a, 3, "1.0.13.0.0.255", 2) == b"\xc4\x01\xc1\x01\x02"  # no period billed yet: temporary failure
        months = [T0 + k * 31 * DAY - 19800 for k in range(1, 4)]
        for k, at in enumerate(months):
            load_profile.billing(_billing_row(k, at))

        def cells(k, at):
            row = _billing_row(k, at)
            return (b"\x09\x0c" + dlms_objects.date_time(at, 330) + b"\x12" + row[1].to_bytes(2, "big")
                    + b"".join(b"\x15" + v.to_bytes(8, "big") for v in row[2:13]) + b"\x06" + row[13].to_bytes(4, "big")
                    + b"\x09\x0c" + dlms_objects.date_time(row[14] or None, 330))

        want = b"".join(b"\x02\x0f" + cells(k, at) for k, at in enumerate(months))
        assert _whole(a, _get(a, 7, "1.0.98.1.0.255", 2)) == b"\x01\x03" + want
        assert dlms_objects.date_time(None, 330) in want  # the first row's demand time: not known
        assert _get(a, 7, "1.0.98.1.0.255", 4) == b"\xc4\x01\xc1\x00\x06\x00\x00\x00\x00"  # no capture period
        assert _get(a, 7, "1.0.98.1.0.255", 7) == b"\xc4\x01\xc1\x00\x06\x00\x00\x00\x03"
        assert _get(a, 7, "1.0.98.1.0.255", 8) == b"\xc4\x01\xc1\x00\x06\x00\x00\x00\x18"  # 24 at most
        capture = _whole(a, _get(a, 7, "1.0.98.1.0.255", 3))
        assert capture[:2] == b"\x01\x0f" and capture.endswith(  # the demand, then its time (attribute 5)
            b"\x02\x04\x12\x00\x04\x09\x06" + cosem.obis("1.0.1.6.0.255") + b"\x0f\x02\x12\x00\x00"
            + b"\x02\x04\x12\x00\x04\x09\x06" + cosem.obis("1.0.1.6.0.255") + b"\x0f\x05\x12\x00\x00")
        # by entry: the second row, columns 1-3 (the billing date, the power factor, the import register)
        got = _whole(a, _get(a, 7, "1.0.98.1.0.255", 2, _entry(2, 2, 1, 3)))
        assert got == b"\x01\x01\x02\x03" + cells(1, months[1])[:14 + 3 + 9], got
        got = _whole(a, _get(a, 7, "1.0.98.1.0.255", 2, _range(months[1], months[2])))
        assert got == b"\x01\x02" + b"".join(b"\x02\x0f" + cells(k, months[k]) for k in (1, 2))
        scalers = _whole(a, _get(a, 7, "1.0.94.91.6.255", 2))
        want = b"".join(_whole(a, _get(a, 3, ln, 3)) for ln in (
            "1.0.13.0.0.255", "1.0.1.8.0.255", "1.0.1.8.1.255", "1.0.1.8.2.255", "1.0.1.8.3.255", "1.0.1.8.4.255",
            "1.0.1.8.5.255", "1.0.1.8.6.255", "1.0.1.8.7.255", "1.0.1.8.8.255", "1.0.9.8.0.255", "1.0.2.8.0.255"))
        assert scalers == b"\x01\x01\x02\x0d" + want + _whole(a, _get(a, 4, "1.0.1.6.0.255", 3)), scalers
        assert _whole(a, _get(a, 3, "1.0.13.0.0.255", 3)) == cosem.scaler_unit(-3, 255)
        assert _get(a, 3, "1.0.13.0.0.255", 2) == b"\xc4\x01\xc1\x00\x12\x03\x86"  # the newest period's: 0.902

    fwtest.in_workdir(body, "meter")


def test_smp_group_65_reads_the_billing_profile_four_rows_a_page():
    def body():
        from app import meter_group

        grp = meter_group.MeterGroup(None, None)
        months = [T0 + k * 31 * DAY for k in range(6)]
        for k, at in enumerate(months):
            load_profile.billing(_billing_row(k, at))
        page = grp.profile({"kind": "billing"})
        assert page["held"] == 6 and page["more"] and page["rows"] == [list(_billing_row(k, months[k])) for k in range(4)]
        page = grp.profile({"kind": "billing", "since": months[3], "limit": 16})
        assert not page["more"] and page["rows"] == [list(_billing_row(k, months[k])) for k in (4, 5)]

    fwtest.in_workdir(body, "meter")
