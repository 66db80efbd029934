import os

import fwtest
from loader import early, mode, store


def test_write_atomic_replaces_and_leaves_no_temporary():
    def body():
        os.mkdir("meter")
        store.write_atomic("meter/x", b"one")
        store.write_atomic("meter/x", b"two")
        assert store.read_bytes("meter/x") == b"two"
        assert sorted(os.listdir("meter")) == ["x"]

    fwtest.in_workdir(body)


def test_read_json_missing_default_and_corrupt_error():
    def body():
        assert store.read_json("nope.json", {"a": 1}) == {"a": 1}
        fwtest.write("bad.json", b"{not json")
        e = fwtest.raises(ValueError, store.read_json, "bad.json")
        assert "corrupt bad.json" in str(e)

    fwtest.in_workdir(body)


def test_cleanup_removes_only_temporaries_left_by_a_power_cut():
    def body():
        fwtest.write("meter/slots.json", b"{}")
        fwtest.write("meter/slots.json.new", b"{half")
        fwtest.write("slots/a/app/x.py.new", b"half")
        fwtest.write("slots/a/app/x.py", b"whole")
        assert store.cleanup("meter") + store.cleanup("slots") == 2
        assert store.exists("meter/slots.json") and not store.exists("meter/slots.json.new")
        assert store.exists("slots/a/app/x.py") and not store.exists("slots/a/app/x.py.new")
        assert store.cleanup("absent") == 0

    fwtest.in_workdir(body)


def test_makedirs_and_is_dir():
    def body():
        store.makedirs("a/b/c")
        assert store.is_dir("a/b/c") and not store.is_dir("a/b/c/d")

    fwtest.in_workdir(body)


def test_mode_fresh_board_is_development_and_corrupt_fails_closed():
    def body():
        os.mkdir("meter")
        assert mode.current() == mode.DEVELOPMENT
        mode.store_mode(mode.LOCKED)
        assert mode.current() == mode.LOCKED
        fwtest.write(mode.PATH, b"{garbage")
        assert mode.current() == mode.LOCKED
        fwtest.write(mode.PATH, b'{"mode": "sideways"}')
        assert mode.current() == mode.LOCKED
        fwtest.write(mode.PATH, b"[1]")
        assert mode.current() == mode.LOCKED
        fwtest.raises(ValueError, mode.store_mode, "open")
        fwtest.write(mode.PATH, b"[" * 200000 + b"]" * 200000)  # found by meter-fuzz boot_records (on a 64 KB heap)
        assert mode.current() == mode.LOCKED

    fwtest.in_workdir(body)


def test_read_json_calls_a_file_nested_past_the_heap_corrupt():
    def body():
        fwtest.write("deep.json", b"[" * 200000 + b"]" * 200000)
        try:
            v = store.read_json("deep.json")
        except ValueError as e:  # CPython's recursion limit, a board's heap: corrupt, never another exception
            assert "corrupt deep.json" in str(e)
        else:
            assert isinstance(v, list)  # a heap large enough parses it (the unix VM's)

    fwtest.in_workdir(body)


def test_boot_counter_counts_and_recovers_from_a_corrupt_record():
    def body():
        os.mkdir("meter")
        assert early.count_boot() == 1
        assert early.count_boot() == 2
        fwtest.write(early.BOOTS, b"{torn")
        assert early.count_boot() == 1
        fwtest.write(early.BOOTS, b'{"boots": -5}')
        assert early.count_boot() == 1

    fwtest.in_workdir(body)


def test_versioned_records_let_an_older_app_refuse_newer_data_without_losing_it():
    def body():
        assert store.read_record("meter/reg.json", "registers", 1, {}) == (0, {})
        store.write_record("meter/reg.json", "registers", 2, {"wh": 10, "kvarh": 3})  # the newer app
        assert store.read_record("meter/reg.json", "registers", 2) == (2, {"wh": 10, "kvarh": 3})
        e = fwtest.raises(store.TooNew, store.read_record, "meter/reg.json", "registers", 1)  # rolled back app
        assert e.version == 2
        fwtest.raises(store.TooNew, store.write_record, "meter/reg.json", "registers", 1, {"wh": 0})
        assert store.read_record("meter/reg.json", "registers", 2) == (2, {"wh": 10, "kvarh": 3})  # untouched
        fwtest.raises(ValueError, store.read_record, "meter/reg.json", "tokens", 5)
        fwtest.write("meter/bad.json", b"{")
        fwtest.raises(ValueError, store.read_record, "meter/bad.json", "registers", 1)
        store.write_record("meter/bad.json", "registers", 1, [1])
        assert store.read_record("meter/bad.json", "registers", 1) == (1, [1])
        # the version is found in the record's fixed head; a record laid out otherwise is parsed whole
        with open("meter/bad.json", "rb") as f:
            assert f.read(32) == b'{"kind": "registers", "v": 1, "d'
        fwtest.write("meter/other.json", b'{"data": {"wh": 1}, "v": 12, "kind": "registers"}')
        fwtest.raises(store.TooNew, store.write_record, "meter/other.json", "registers", 11, {})
        store.write_record("meter/other.json", "registers", 12, {"s": "a \\ \"quoted\" text"})
        assert store.read_record("meter/other.json", "registers", 12) == (12, {"s": 'a \\ "quoted" text'})
        # a torn or damaged file that begins with a newer record's head is no record: replaced, not TooNew (a
        # supply-hold record cut so made the app's start-up raise in a loop; found by meter-fuzz boot_records)
        fwtest.write("meter/torn.json", b'{"kind": "registers", "v": 2, "data": {"wh": ')
        store.write_record("meter/torn.json", "registers", 1, {"wh": 1})
        assert store.read_record("meter/torn.json", "registers", 1) == (1, {"wh": 1})
        fwtest.write("meter/kind.json", b'{"kind": "registers2", "v": 9, "data": 1}')  # another kind: replaced
        store.write_record("meter/kind.json", "registers", 1, 2)
        assert store.read_record("meter/kind.json", "registers", 1) == (1, 2)

    fwtest.in_workdir(body, "meter")


def test_a_board_definition_damaged_past_its_id_is_refused_by_name():
    """loader/board.py: a board file whose numbers the start-up's arithmetic would not survive or would get wrong (a
    rating of 10**400 amps, an infinity) or nested deeper than any board's is refused with a ValueError naming the
    file, as a missing one is (every emulated meter's start loads a real board through it)."""
    import json

    from loader import board

    def load(text):
        board._board = None
        fwtest.write("meter/board.json", text)
        try:
            return board.load()
        finally:
            board._board = None

    def body():
        good = {"id": "x", "metering": {"ib_amps": 5, "imax_amps": 60.0, "nominal_voltage": 230}, "pins": [1, 2],
                "flag": True}
        assert load(json.dumps(good))["metering"]["imax_amps"] == 60.0
        for bad in (b'{"id": "x", "metering": {"ib_amps": 1' + b"0" * 400 + b"}}",  # 10**400
                    b'{"id": "x", "calibration": {"v_gain": -1' + b"0" * 400 + b"}}",
                    b'{"id": "x", "metering": {"ib_amps": 1e999}}',  # an infinity
                    b'{"id": "x", "pins": ' + b"[" * 7 + b"1" + b"]" * 7 + b"}"):  # nested too deep
            e = fwtest.raises(ValueError, load, bad)
            assert "damaged board definition at meter/board.json" in str(e), (bad[:40], e)
        assert "no board definition" in str(fwtest.raises(ValueError, load, b'{"pins": 1}'))

    fwtest.in_workdir(body, "meter")
