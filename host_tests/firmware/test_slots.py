import hashlib
import os

import cbor
import fwtest
from loader import LOADER_API, slots

BOARD = "esp32_devkitc"
APP = {"app/__init__.py": b"VERSION = '1.0.0'\n", "app/main.py": b"def run(ctx):\n    pass\n"}


def _manifest(files, board=BOARD, api=LOADER_API, fmt=1):
    entries = []
    for p in sorted(files):
        entries.append({"path": p, "size": len(files[p]), "sha256": hashlib.sha256(files[p]).digest()})
    return cbor.dumps({"format": fmt, "board": board, "version": "1.0.0", "loader_api": api, "files": entries})


def _slot(name, files=None, manifest=None):
    files = APP if files is None else files
    for p in files:
        fwtest.write("slots/%s/%s" % (name, p), files[p])
    fwtest.write("slots/%s/manifest.cbor" % name, _manifest(files) if manifest is None else manifest)


def test_a_whole_slot_is_valid_and_selected():
    def body():
        _slot("a")
        m, why = slots.check("a", BOARD)
        assert why is None and m["version"] == "1.0.0"
        name, m, problems = slots.select(BOARD)
        assert name == "a" and problems == []

    fwtest.in_workdir(body)


def test_every_kind_of_damage_is_named():
    cases = [
        ("empty", None),
        ("no manifest", lambda: fwtest.write("slots/a/app/main.py", b"x")),
        ("manifest corrupt", lambda: _slot("a", manifest=b"\xff\x00")),
        ("wrong board", lambda: _slot("a", manifest=_manifest(APP, board="rpi_pico"))),
        ("loader api", lambda: _slot("a", manifest=_manifest(APP, api=LOADER_API + 1))),
        ("manifest format", lambda: _slot("a", manifest=_manifest(APP, fmt=2))),
        ("hash mismatch app/main.py", lambda: (_slot("a"), fwtest.write("slots/a/app/main.py", b"def run(ctx):\n    pasS\n"))),
        ("hash mismatch app/main.py", lambda: (_slot("a"), fwtest.write("slots/a/app/main.py", b"short"))),
        ("missing app/main.py", lambda: (_slot("a"), os.remove("slots/a/app/main.py"))),
        ("unlisted file app/evil.py", lambda: (_slot("a"), fwtest.write("slots/a/app/evil.py", b"x"))),
        ("manifest path", lambda: _slot("a", files={"../boot.py": b"x"})),
        ("manifest path", lambda: _slot("a", manifest=_manifest({"/main.py": b"x"}))),
    ]
    for want, make in cases:
        back = fwtest.workdir()
        try:
            if make is not None:
                make()
            m, why = slots.check("a", BOARD)
            if want == "manifest format":
                assert why == "manifest corrupt", why
            else:
                assert m is None and why == want, (want, why)
        finally:
            os.chdir(back)


def test_a_manifest_s_numbers_are_compared_by_type_and_value():
    # 1.0, True and 2.0 equal 1 and 2 in Python: a manifest that holds them is not the format it claims
    def sized(size):
        data = cbor.loads(_manifest(APP))
        data["files"][0]["size"] = size
        return cbor.dumps(data)

    cases = [("manifest corrupt", _manifest(APP, fmt=True)), ("manifest corrupt", _manifest(APP, fmt=1.0)),
             ("loader api", _manifest(APP, api=float(LOADER_API))), ("loader api", _manifest(APP, api=True)),
             ("hash mismatch app/__init__.py", sized(float(len(APP["app/__init__.py"]))))]
    for want, manifest in cases:
        back = fwtest.workdir()
        try:
            _slot("a", manifest=manifest)
            m, why = slots.check("a", BOARD)
            assert m is None and why == want, (want, why)
        finally:
            os.chdir(back)


def test_falls_back_to_the_other_slot_then_to_nothing():
    def body():
        _slot("b")
        fwtest.write("meter/slots.json", b'{"active": "a"}')
        name, m, problems = slots.select(BOARD)
        assert name == "b" and problems == [("a", "empty")]
        fwtest.write("slots/b/app/main.py", b"tampered")
        name, m, problems = slots.select(BOARD)
        assert name is None and len(problems) == 2

    fwtest.in_workdir(body)


def test_a_corrupt_pointer_file_means_slot_a():
    def body():
        _slot("a")
        fwtest.write("meter/slots.json", b'{"active": "zz"}')
        assert slots.read_state() == {"active": "a", "confirmed": "a", "test": None}
        fwtest.write("meter/slots.json", b"\x00\x01")
        assert slots.select(BOARD)[0] == "a"

    fwtest.in_workdir(body)


def test_file_hash_is_chunked_and_exact():
    def body():
        data = bytes(range(256)) * 9 + b"tail"
        fwtest.write("f.bin", data)
        assert slots.file_sha256("f.bin") == hashlib.sha256(data).digest()

    fwtest.in_workdir(body)


DEEP = "[" * 3000 + "]" * 3000  # past MicroPython's recursion limit for json.dump (the VM's; a board's is lower)


def test_a_pointer_file_keeps_only_its_own_fields_so_a_damaged_one_is_written_back_whole():
    # boot_choice writes the pointer dict back at each test boot: a value nested past the recursion limit anywhere
    # in the file made json.dump raise out of the start-up in MicroPython (found by meter-fuzz boot_records)
    from loader import update

    def body():
        fwtest.write(slots.STATE, '{"active": "a", "test": "b", "tries": 0, "x": %s, "trial": {"hash": "ab", '
                     '"version": "1", "outcome": "testing", "reason": %s}}' % (DEEP, DEEP))
        assert update.boot_choice() == ("b", True)
        st = slots.read_state()
        assert st == {"active": "a", "confirmed": "a", "test": "b", "tries": 1,
                      "trial": {"hash": "ab", "version": "1", "outcome": "testing"}}, st
        fwtest.write(slots.STATE, '{"active": "b", "test": "a", "tries": [0], "permanent": 1}')
        st = slots.read_state()
        assert st["tries"] == 1 and st["permanent"] is True and st["confirmed"] == "b"
        assert update.boot_choice() == ("b", False)  # a damaged count is a try made: reverted

    fwtest.in_workdir(body, "meter")


def test_the_update_journal_drops_entries_of_another_shape():
    from loader import journal, store

    def body():
        fwtest.write(journal.EVENTS, '[{"event": "installed", "detail": "slot b"}, %s, {"event": 5, "detail": ""}, '
                     '{"event": "x", "detail": "y", "more": %s}]' % (DEEP, DEEP))
        journal.event("rollback", "slot b not confirmed")
        assert store.read_json(journal.EVENTS) == [{"event": "installed", "detail": "slot b"},
                                                   {"event": "x", "detail": "y"},
                                                   {"event": "rollback", "detail": "slot b not confirmed"}]
        journal._pending[:] = []

    fwtest.in_workdir(body, "meter")
