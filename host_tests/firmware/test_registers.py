import fwtest
from app import registers


def test_small_increments_carry_into_watt_hours_exactly():
    r = registers.Registers()
    for _ in range(7200):
        r.add(registers.IMPORT, 1000)  # 1 W for 1 s, 7200 times: 2 Wh
    assert r.wh[registers.IMPORT] == 2 and r.mj[registers.IMPORT] == 0 and r.mwh(registers.IMPORT) == 2000
    r.add(registers.IMPORT, 1800)
    assert r.mwh(registers.IMPORT) == 2000 and r.mj[registers.IMPORT] == 1800
    r.add(registers.IMPORT, -5)  # never decreases
    assert r.mj[registers.IMPORT] == 1800


def test_integrate_splits_import_export_reactive_and_zones():
    r = registers.Registers()
    r.integrate(3600000, 1800000, 4000000, 3)
    r.integrate(-3600000, -1800000, 4000000, 3)
    assert r.mwh(registers.IMPORT) == 1000 and r.mwh(registers.EXPORT) == 1000
    assert r.mwh(registers.Q_IMPORT) == 500 and r.mwh(registers.Q_EXPORT) == 500
    assert r.wh[registers.APPARENT] == 2 and r.mwh(registers.ZONE_FIRST + 2) == 1000
    assert registers.OBIS[registers.ZONE_FIRST + 2] == "1.0.1.8.3.255"


def test_maximum_demand_over_whole_periods():
    r = registers.Registers()
    assert r.demand(10, 900, 9000) is None  # opens the first period
    r.add(registers.IMPORT, 900 * 1000 * 2000)  # 2 kW for 900 s
    assert r.demand(11, 900, 9900) == 2000.0 and r.md_w == 2000.0 and r.md_at == 9900
    r.add(registers.IMPORT, 900 * 1000 * 500)
    assert r.demand(12, 900, 10800) == 500.0 and r.md_w == 2000.0
    assert r.demand(12, 900, 10800) is None


def _saved(r):
    p = registers.Persist()
    p.save(r)
    return p


def test_persist_alternates_and_the_newest_valid_record_wins():
    def body():
        r = registers.Registers()
        p = registers.Persist()
        r.add(registers.IMPORT, 5 * registers.MJ_PER_WH)
        p.save(r)
        r.add(registers.IMPORT, 5 * registers.MJ_PER_WH)
        p.save(r)
        assert p.seq == 2
        back = registers.Registers()
        q = registers.Persist()
        assert q.load(back) == "ok" and back.wh[registers.IMPORT] == 10 and q.seq == 2
        # the newer file torn at every length: the older one is used, one interval behind, never less
        with open(registers.FILES[0], "rb") as f:
            newest = f.read()
        for cut in range(len(newest)):
            with open(registers.FILES[0], "wb") as f:
                f.write(newest[:cut])
            back = registers.Registers()
            status = registers.Persist().load(back)
            # zero bytes: the cut came before the first byte, the file holds nothing and counts as absent
            assert status == ("ok" if cut == 0 else "one-bad") and back.wh[registers.IMPORT] == 5, cut
        for k in range(len(newest)):
            bad = bytearray(newest)
            bad[k] ^= 0x01
            with open(registers.FILES[0], "wb") as f:
                f.write(bytes(bad))
            back = registers.Registers()
            assert registers.Persist().load(back) == "one-bad" and back.wh[registers.IMPORT] == 5, k

    fwtest.in_workdir(body, "meter")


def test_no_files_is_new_and_no_valid_file_is_lost():
    def body():
        r = registers.Registers()
        assert registers.Persist().load(r) == "new"
        for path in registers.FILES:
            fwtest.write(path, b"garbage")
        assert registers.Persist().load(r) == "lost" and r.wh == [0] * registers.COUNT

    fwtest.in_workdir(body, "meter")


def test_keys_of_a_newer_format_are_carried_over():
    def body():
        rec = registers.Registers().record(7)
        rec["v"] = 2
        rec["credit"] = {"balance": 1234}
        fwtest.write(registers.FILES[1], registers.encode(rec))
        r = registers.Registers()
        p = registers.Persist()
        assert p.load(r) == "ok" and p.seq == 7
        p.save(r)
        back = registers.decode(open(registers.FILES[0], "rb").read())
        assert back["credit"] == {"balance": 1234} and back["seq"] == 8

    fwtest.in_workdir(body, "meter")
