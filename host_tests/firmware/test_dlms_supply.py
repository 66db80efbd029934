"""firmware/app/dlms_supply.py on CPython and in the MicroPython VM (plain asserts; see conftest.py): the limiter
(class 71, 0.0.17.0.0.255) and IS 15959's prepaid data (class 1, 0.0.94.96.19-25.255) as a DLMS client reads them,
over the app's own supply (app/supply.py), its signed settings and top-up tokens and its credit record in flash."""
from test_dlms_objects import AARQ
from test_supply import _run, _setup, at, env

import cbor
import fwtest
from app import cosem, credit_store, dlms_objects, supply
from app.dlms_names import date_time

TZ = 330
MONEY = ("0.0.94.96.21.255", "0.0.94.96.22.255", "0.0.94.96.23.255", "0.0.94.96.24.255", "0.0.94.96.25.255")


def _objects(meter, sup):
    """The model as app/dlms_port.py makes it: the supply given (no name plate, no load profiles here)."""
    return dlms_objects.Objects(meter.tick, sup.control, b"MKT0000000000042", lambda: TZ, sup.log, None, None, sup)


def _public(objects):
    a = cosem.Association(objects.get)
    assert a.apdu(AARQ)[0] == 0x61 and a.associated
    return a


def get(a, cls, ln, attr):
    r = a.apdu(b"\xc0\x01\xc1" + bytes((cls >> 8, cls & 0xFF)) + cosem.obis(ln) + bytes((attr, 0)))
    assert r[:3] == b"\xc4\x01\xc1", r
    return r[3:]  # 0x00 + data, or 0x01 + data-access-result


def _long(v):
    return b"\x00\x05" + (v & 0xFFFFFFFF).to_bytes(4, "big")


def test_the_limiter_is_the_load_limit_settings():
    def body():
        ctx, meter, sup, grp = _setup(settings=False)
        a = _public(_objects(meter, sup))
        assert get(a, 71, "0.0.17.0.0.255", 3) == _long(0)  # no limit set: 0 W, the meter's "off"
        grp.settings({"settings": cbor.loads(cbor.loads(env("settings"))["body"])["args"]["settings"],
                      "envelope": env("settings")})  # 3 kW for 10 s, back after 60 s
        assert get(a, 71, "0.0.17.0.0.255", 1) == b"\x00\x09\x06" + cosem.obis("0.0.17.0.0.255")
        # monitored_value: {class 3, active power 1.0.1.7.0.255, attribute 2}
        assert get(a, 71, "0.0.17.0.0.255", 2) == b"\x00\x02\x03\x12\x00\x03\x09\x06" + cosem.obis(
            "1.0.1.7.0.255") + b"\x0f\x02"
        for attr in (3, 4, 5):  # threshold active, normal, emergency: W, as the monitored value
            assert get(a, 71, "0.0.17.0.0.255", attr) == _long(3000)
        assert get(a, 71, "0.0.17.0.0.255", 6) == b"\x00\x06" + (10).to_bytes(4, "big")  # over the threshold, s
        assert get(a, 71, "0.0.17.0.0.255", 7) == b"\x00\x06" + (60).to_bytes(4, "big")  # the supply back after
        assert get(a, 71, "0.0.17.0.0.255", 8)[:5] == b"\x00\x02\x03\x12\x00"  # no emergency profile
        assert get(a, 71, "0.0.17.0.0.255", 9) == b"\x00\x01\x00"
        assert get(a, 71, "0.0.17.0.0.255", 10) == b"\x00\x03\x00"
        scripts = b"\x09\x06" + cosem.obis("0.0.10.0.106.255")
        assert get(a, 71, "0.0.17.0.0.255", 11) == (b"\x00\x02\x02\x02\x02" + scripts + b"\x12\x00\x01\x02\x02"
                                                   + scripts + b"\x12\x00\x02")
        assert get(a, 71, "0.0.17.0.0.255", 12) == b"\x01\x03"  # no such attribute
        assert get(a, 1, "0.0.17.0.0.255", 2) == b"\x01\x09"  # the meter's name, under another class
        assert get(a, 71, "0.0.17.0.1.255", 2) == b"\x01\x04"

    _run(body)


def test_the_prepaid_data_are_the_ledger_and_the_money_the_meter_readers():
    def body():
        ctx, meter, sup, grp = _setup(settings=False)
        public = _public(_objects(meter, sup))
        assert get(public, 1, "0.0.94.96.19.255", 2) == b"\x00\x11\x00"  # metering mode: import only
        assert get(public, 1, "0.0.94.96.20.255", 2) == b"\x00\x11\x00"  # payment mode: no tariff, postpaid
        for ln in MONEY:  # the money is the meter reader's and the utility's: the public client is refused
            assert get(public, 1, ln, 2) == b"\x01\x03", ln
            assert get(public, 1, ln, 1) == b"\x00\x09\x06" + cosem.obis(ln)  # (its name it may read)
        _, meter, sup, grp = _setup()
        reader = fwtest.reader_association(_objects(meter, sup).get)
        assert get(reader, 1, "0.0.94.96.20.255", 2) == b"\x00\x11\x01"  # a tariff: prepaid
        assert get(reader, 1, "0.0.94.96.21.255", 2) == _long(0)  # no top-up yet
        assert get(reader, 1, "0.0.94.96.22.255", 2) == b"\x00\x09\x0c" + date_time(None, TZ)
        assert grp.topup({"token": env("token1")})["balance"] == 10000
        meter.run(sup, 1, 0, at(1, 17))
        meter.run(sup, 600, 2900, at(1, 22))  # 483 paise used
        assert sup.store.ledger.balance == 10000 - 483
        assert grp.topup({"token": env("token2")})["balance"] == 10000 - 483 + 1000
        when, after = sup.store.last
        assert after == 10517 and get(reader, 1, "0.0.94.96.21.255", 2) == _long(1000)
        assert get(reader, 1, "0.0.94.96.22.255", 2) == b"\x00\x09\x0c" + date_time(when, TZ)
        assert get(reader, 1, "0.0.94.96.23.255", 2) == _long(10517)
        meter.run(sup, 600, 2900, at(1, 23))
        assert get(reader, 1, "0.0.94.96.24.255", 2) == _long(sup.store.ledger.balance) != _long(10517)
        assert get(reader, 1, "0.0.94.96.25.255", 2) == b"\x00\x09\x0c" + date_time(meter.tick.rtc, TZ)
        # the record read back by the next start answers the same
        again = supply.Supply(ctx, meter, set_rtc=lambda t: None)
        reader = fwtest.reader_association(_objects(meter, again).get)
        assert again.store.last == [when, 10517] and get(reader, 1, "0.0.94.96.23.255", 2) == _long(10517)

    _run(body)


def test_a_damaged_credit_record_answers_temporary_failure_for_the_money():
    def body():
        fwtest.write(credit_store.PATH, b"{not json")
        _, meter, sup, _ = _setup()
        assert sup.store.problem is not None
        reader = fwtest.reader_association(_objects(meter, sup).get)
        for ln in MONEY:
            assert get(reader, 1, ln, 2) == b"\x01\x02", ln  # the balance is not known: temporary failure
        assert get(reader, 1, "0.0.94.96.20.255", 2) == b"\x00\x11\x01"

    _run(body)


def test_a_record_without_the_last_top_up_loads_and_a_bad_one_is_refused():
    def body():
        s = credit_store.CreditStore()
        s.ledger.balance = 500
        s.save()
        with open(credit_store.PATH, "rb") as f:
            raw = f.read()
        assert b'"last": null' in raw
        fwtest.write(credit_store.PATH, raw.replace(b', "last": null', b""))  # as the app before this field wrote it
        back = credit_store.CreditStore()
        assert back.load() is None and back.ledger.balance == 500 and back.last is None
        for bad in (b'"last": [1, 2, 3]', b'"last": [true, 5]', b'"last": [5.0, 5]', b'"last": [-1, 5]',
                    b'"last": [5, 5.0]', b'"last": 7'):
            fwtest.write(credit_store.PATH, raw.replace(b'"last": null', bad))
            back = credit_store.CreditStore()
            assert back.load() == "bad last top-up" and back.ledger.balance == 0, bad

    _run(body)


def test_the_object_list_names_the_supply_s_objects_with_their_access():
    def body():
        _, meter, sup, _ = _setup()
        names = list(_objects(meter, sup).names())
        assert (71, cosem.obis("0.0.17.0.0.255")) in names
        assert [n for c, n in names if c == 1 and n[:4] == b"\x00\x00\x5e\x60"] == [
            cosem.obis("0.0.94.96.%d.255" % k) for k in range(19, 26)]
        a = _public(_objects(meter, sup))
        r = a.apdu(b"\xc0\x01\xc1\x00\x0f" + cosem.obis("0.0.40.0.0.255") + b"\x02\x00")
        blocks = r
        while blocks[:3] == b"\xc4\x02\xc1" and not blocks[3]:  # (in blocks: take them all)
            blocks = a.apdu(b"\xc0\x02\xc1" + blocks[4:8])
            r += blocks
        limiter = b"\x12\x00\x47\x11\x00\x09\x06" + cosem.obis("0.0.17.0.0.255") + b"\x02\x02\x01\x0b"
        assert limiter in r  # class 71 version 0, its 11 attributes

    _run(body)


def test_a_set_of_the_limiter_changes_the_supply_settings_as_the_signed_command_does():
    def body():
        from app import dlms_supply, events

        ctx, meter, sup, _ = _setup()  # the signed settings: 3 kW for 10 s, back after 60 s

        def put(*args):
            return dlms_supply.put(*args, TZ)

        assert put(sup, 71, 3, b"\x05" + (4200).to_bytes(4, "big")) == 0
        st = sup.status()["load_limit"]
        assert st["threshold_w"] == 4200 and sup.log.ring[-1][1] == events.SETTINGS_CHANGED
        assert sup.settings["tariff_p"] is not None and sup.prepaid is not None  # the rest of the settings kept
        assert put(sup, 71, 6, b"\x06" + (45).to_bytes(4, "big")) == 0
        assert put(sup, 71, 7, b"\x06" + (600).to_bytes(4, "big")) == 0
        assert put(sup, 71, 4, b"\x05\x00\x00\x00\x00") == 0  # threshold normal: the same limit; 0: none
        assert sup.limit.conf == dict(sup.limit.conf, threshold_w=0, over_s=45, lockout_s=600, max_trips=2)
        again = supply.Supply(ctx, meter, set_rtc=lambda t: None)  # written: the next start reads it back
        assert again.limit.conf["over_s"] == 45 and again.limit.conf["lockout_s"] == 600
        n = len(sup.log.ring)
        for attr, data, why in ((3, b"\x06\x00\x00\x10\x68", 12), (3, b"\x05\x00\x00\x10", 12),
                                (3, b"\x05\x00\x00\x10\x68\x00", 12), (6, b"\x05\x00\x00\x00\x2d", 12),
                                (3, b"\x05\xff\xff\xff\xff", 250), (5, b"\x05\x00\x00\x10\x68", 3),
                                (2, b"\x05\x00\x00\x10\x68", 3), (11, b"\x00", 3)):
            assert put(sup, 71, attr, data) == why, (attr, data)
        assert put(sup, 1, 2, b"\x05\x00\x00\x10\x68") == 3  # the balance: never
        assert len(sup.log.ring) == n and sup.limit.conf["threshold_w"] == 0  # nothing changed by the refusals

    _run(body)


def test_a_set_is_refused_while_the_settings_file_is_damaged_and_a_set_of_the_same_value_writes_nothing():
    def body():
        from app import dlms_supply, events, supply_settings

        fwtest.write(supply_settings.PATH, b'{"tariff": {"flat": 1000}, "from_a_newer_app": 1}')
        ctx, meter, sup, _ = _setup(settings=False)
        assert supply_settings.load()[1] is not None and sup.log.ring[-1][1] == events.SETTINGS_INVALID
        assert dlms_supply.put(sup, 71, 3, b"\x05\x00\x00\x10\x68", TZ) == 2  # temporary failure: nothing written
        with open(supply_settings.PATH, "rb") as f:
            assert b"from_a_newer_app" in f.read()
        _, meter, sup, _ = _setup()  # the signed settings (a whole file) end the problem
        assert supply_settings.load()[1] is None
        n = len(sup.log.ring)
        assert dlms_supply.put(sup, 71, 3, b"\x05" + (3000).to_bytes(4, "big"), TZ) == 0  # its limit already
        assert len(sup.log.ring) == n
        assert dlms_supply.put(sup, 71, 3, b"\x05" + (3100).to_bytes(4, "big"), TZ) == 0
        assert sup.log.ring[-1][1] == events.SETTINGS_CHANGED and sup.log.ring[-1][3].startswith("dlms: ")

    _run(body)


def test_new_limit_settings_during_a_trip_still_bring_the_supply_back():
    def body():
        from app import dlms_supply

        ctx, meter, sup, grp = _setup()  # 3 kW for 10 s trips; back after 60 s; two trips lock
        hw = ctx.hal
        meter.run(sup, 12, 3500, at(2, 12, 4), t0_ms=100000)
        assert not hw.contact and sup.control.reason == "load limit"
        assert dlms_supply.put(sup, 71, 3, b"\x05" + (5000).to_bytes(4, "big"), TZ) == 0  # a higher limit, mid-trip
        meter.run(sup, 61, 0, at(2, 12, 5), t0_ms=112000)
        assert hw.contact  # the trip's lockout ended with the supply back, as it would have without the SET
        assert sup.limit.trips == 1  # and the trip still counts toward the lock

    _run(body)


def test_a_set_of_the_clock_sets_it_as_the_signed_command_does_and_refuses_a_time_that_is_no_time():
    def body():
        from app import dlms_supply, events

        _, meter, sup, _ = _setup()
        set_to = []
        sup.clock.set_rtc = set_to.append  # (the RTC itself: the VM's and CPython's clocks are not the meter's)
        t = 1_800_000_000  # 2027-01-15 08:00:00 UTC, 13:30 at +330

        def put(dt):
            return dlms_supply.put(sup, 8, 2, b"\x09\x0c" + dt, TZ)

        local = date_time(t, TZ)  # as the meter sends its time: local, deviation not specified
        assert put(local) == 0 and set_to == [t] and sup.log.ring[-1][1] == events.CLOCK_SET
        # with a deviation (UTC = local + deviation): the same instant written as UTC+1
        cet = bytearray(date_time(t, 60))
        cet[9:11] = (-60 & 0xFFFF).to_bytes(2, "big")
        assert put(bytes(cet)) == 0 and set_to == [t, t]
        n = len(sup.log.ring)
        feb30 = bytearray(local)
        feb30[2:4] = b"\x02\x1e"
        late = bytearray(local)
        late[5] = 24
        wild = bytearray(local)
        wild[7] = 0xFF
        far = bytearray(local)
        far[9:11] = (721).to_bytes(2, "big")
        for bad in (bytes(feb30), bytes(late), bytes(wild), bytes(far), date_time(1_600_000_000, TZ)):
            assert put(bad) == 250, bad  # no such date, hour, second or deviation; before 2025
        assert dlms_supply.put(sup, 8, 2, b"\x09\x0b" + local[:11], TZ) == 12
        assert dlms_supply.put(sup, 8, 2, b"\x06\x00\x00\x00\x00", TZ) == 12
        assert set_to == [t, t] and len(sup.log.ring) == n

    _run(body)


def test_a_set_of_the_time_zone_changes_the_calendar_as_the_signed_command_does():
    def body():
        from app import dlms_supply, events, meter_settings
        from loader import store

        _, meter, sup, _ = _setup()

        def put(data):
            return dlms_supply.put(sup, 8, 3, data, TZ)

        n = len(sup.log.ring)
        assert meter.cfg["tz_offset_min"] == 330
        assert put(b"\x10\xfe\xb6") == 0 and len(sup.log.ring) == n  # -330, India's: as it is, nothing written
        assert put(b"\x10\xff\xc4") == 0  # -60: local time is UTC+1
        assert meter.cfg["tz_offset_min"] == 60 and sup.log.ring[-1][1] == events.SETTINGS_CHANGED
        assert sup.log.ring[-1][3] == "dlms: calendar"
        assert meter_settings.load() == (dict(meter_settings.load()[0], tz_offset_min=60), None)  # the next start's
        n = len(sup.log.ring)
        for data, why in ((b"\x12\xff\xc4", 12), (b"\x10\xff", 12), (b"\x10\xff\xc4\x00", 12),
                          (b"\x10\xfc\xb7", 250), (b"\x10\x02\xd1", 250)):  # -841: 14 h 1 min ahead; 721: behind
            assert put(data) == why, data
        raw = store.read_json(meter_settings.PATH, {})
        store.write_json(meter_settings.PATH, dict(raw, billing_day=31))  # a bad value: the next start's defaults
        assert put(b"\x10\xfe\xb6") == 2  # would be dropped with it: temporary failure, nothing used
        assert meter.cfg["tz_offset_min"] == 60 and len(sup.log.ring) == n

    _run(body)
