import fwtest
from app import events as ev


def test_ring_keeps_the_newest_with_sequence_numbers_across_reboots():
    def body():
        now = [1000]
        log = ev.EventLog(capacity=5, clock=lambda: now[0])
        log.load()
        for k in range(8):
            now[0] += 1
            assert log.add(ev.LOAD_DISCONNECTED if k % 2 else ev.LOAD_CONNECTED, "credit") == k + 1
        assert [e[0] for e in log.ring] == [4, 5, 6, 7, 8] and log.ring[-1] == (8, 301, 1008, "credit")
        again = ev.EventLog(capacity=5)  # power cut and boot: the clock unknown until it is set
        again.load()
        assert again.ring == log.ring and again.add(ev.POWER_RESTORE) == 9
        assert again.ring[-1] == (9, 102, None, "") and [e[0] for e in again.since(7)] == [8, 9]
        assert again.since(0, limit=2) == again.ring[:2]
        again.add(ev.TOKEN_REJECTED, "x" * 200)
        assert len(again.ring[-1][3]) == ev.DETAIL_MAX

    fwtest.in_workdir(body, "meter")


def test_a_damaged_log_restarts_without_reusing_sequence_numbers():
    def body():
        log = ev.EventLog(capacity=4)
        log.load()
        for _ in range(30):
            log.add(ev.CREDIT_ALERT, "10")
        with open(ev.PATH, "rb") as f:
            raw = f.read()
        fwtest.write(ev.PATH, raw[: len(raw) // 2])  # flash damage: not what a power cut leaves (renames are atomic)
        back = ev.EventLog(capacity=4)
        back.load()
        assert back.ring[-1][1] == ev.LOG_LOST and back.ring[-1][0] > 30 and len(back.ring) == 1

    fwtest.in_workdir(body, "meter")


def test_a_damaged_logs_sequence_number_is_found_wherever_it_lies_in_the_file():
    # read in 128-byte pieces (the app's start has no room for the whole file on a fragmented heap): the key or its
    # digits may straddle a piece's end
    def body():
        for pad in (0, 1, 115, 120, 121, 122, 127, 128, 129, 250, 300):
            fwtest.write(ev.PATH, b"x" * pad + b'"seq": 4321, "ring": [')
            assert ev._highest_seq(ev.PATH) == 4321, pad
        fwtest.write(ev.PATH, b"x" * 121 + b'"seq": 12')  # the file ends inside the number
        assert ev._highest_seq(ev.PATH) == 12
        fwtest.write(ev.PATH, b"x" * 500)
        assert ev._highest_seq(ev.PATH) == 0
        assert ev._highest_seq("meter/none.json") == 0

    fwtest.in_workdir(body, "meter")


def test_a_rolled_back_app_keeps_a_newer_apps_ring_and_logs_in_ram():
    def body():
        from loader import store

        newer = b'{"kind": "events", "v": 2, "data": {"seq": 40, "floor": 40, "ring": [], "more": 1}}'
        fwtest.write(ev.PATH, newer)
        log = ev.EventLog(capacity=4)
        log.load()  # raised TooNew out of its first write, so out of the app's start-up (found by meter-fuzz)
        assert log.ring[-1][1] == ev.LOG_LOST and log.ring[-1][3] == "event log of a newer app kept"
        assert log.add(ev.POWER_RESTORE, "x") == log.ring[-1][0] and log.ring[-1][0] > 40
        with open(ev.PATH, "rb") as f:
            assert f.read() == newer  # never overwritten
        fwtest.raises(store.TooNew, store.read_record, ev.PATH, ev.RECORD, ev.RECORD_VERSION)

    fwtest.in_workdir(body, "meter")


def _stored(path=ev.PATH):
    back = ev.EventLog(path)
    back.load()
    return back


def test_a_flood_of_refusals_is_read_at_once_written_twice_per_burst_and_counted_beyond_its_share():
    def body():
        ms = [0]
        log = ev.EventLog(capacity=20, clock=lambda: 1000, ticks_ms=lambda: ms[0])
        log.load()
        log.add(ev.LOAD_CONNECTED, "boot")
        for k in range(ev.HELD_MAX + 5):
            ms[0] += 100
            log.add(ev.TOKEN_REJECTED if k % 2 else ev.COMMAND_REFUSED, "replayed")
        # every refusal is readable at once: the first and the burst's HELD_MAX reserved, the rest counted on the last
        assert [e[0] for e in log.ring] == list(range(1, ev.HELD_MAX + 3))
        assert log.ring[-1][3] == "replayed +4" and log.seq == ev.HELD_MAX + 2
        # the flash holds the first refusal only, and reserves the burst's numbers
        on_flash = _stored()
        assert [e[0] for e in on_flash.ring] == [1, 2] and on_flash.seq == 2 + ev.HELD_MAX
        log.flush_due()  # the burst has not ended: nothing written
        assert len(_stored().ring) == 2
        ms[0] += ev.HOLD_MS
        log.flush_due()
        after = _stored()
        assert after.ring == log.ring and after.seq == log.seq
        # a new burst starts with a new first refusal, written at once
        log.add(ev.TOKEN_REJECTED, "expired")
        assert _stored().ring[-1] == (ev.HELD_MAX + 3, ev.TOKEN_REJECTED, 1000, "expired")

    fwtest.in_workdir(body, "meter")


def test_a_power_cut_inside_a_burst_never_reuses_a_sequence_number():
    def body():
        ms = [0]
        log = ev.EventLog(clock=lambda: 5, ticks_ms=lambda: ms[0])
        log.load()
        for _ in range(3):
            log.add(ev.COMMAND_REFUSED, "supply.relay: no-envelope")
        seen = log.seq  # a reader saw 1..3; 2 and 3 are not on flash yet
        booted = _stored()  # the power cut
        assert [e[0] for e in booted.ring] == [1] and booted.add(ev.POWER_RESTORE, "power on") > seen
        # another event inside a burst writes what the burst held
        ms2 = [0]
        log2 = ev.EventLog(path="meter/ev2.json", ticks_ms=lambda: ms2[0])
        log2.load()
        log2.add(ev.TOKEN_REJECTED, "a")
        log2.add(ev.TOKEN_REJECTED, "b")
        log2.add(ev.TOPUP_ACCEPTED, "7: 100")
        assert [e[3] for e in _stored("meter/ev2.json").ring] == ["a", "b", "7: 100"]

    fwtest.in_workdir(body, "meter")


def test_a_lone_refusal_gives_its_reserved_numbers_back_when_its_burst_ends():
    def body():
        ms = [0]
        log = ev.EventLog(ticks_ms=lambda: ms[0])
        log.load()
        log.add(ev.TOKEN_REJECTED, "foreign")
        ms[0] = ev.HOLD_MS + 1
        log.flush_due()
        assert _stored().add(ev.POWER_RESTORE) == 2  # no gap after a boot

    fwtest.in_workdir(body, "meter")


def test_an_event_the_heap_cannot_write_stays_in_the_ring_and_is_written_at_a_later_reading():
    from loader import store

    def body():
        real = store.write_record
        fails = [2]

        def short_of_memory(*a):
            if fails[0]:
                fails[0] -= 1
                raise MemoryError("memory allocation failed")
            return real(*a)

        log = ev.EventLog(ticks_ms=lambda: 0)
        log.load()
        log.add(ev.LOAD_CONNECTED, "boot")
        store.write_record = short_of_memory
        try:
            assert log.add(ev.LOAD_DISCONNECTED, "credit") == 2  # the relay's event: never an exception
            assert log.ring[-1][:2] == (2, ev.LOAD_DISCONNECTED) and [e[0] for e in _stored().ring] == [1]
            log.flush_due()  # the next reading: written now
            assert [e[0] for e in _stored().ring] == [1, 2] and not log.unwritten
        finally:
            store.write_record = real

    fwtest.in_workdir(body, "meter")


def test_the_packed_ring_reads_the_stored_format_and_keeps_every_field():
    # the ring is packed in RAM (one bytearray); the file keeps its JSON format, so a ring an older app wrote loads
    # as it was, and what this one writes is the same JSON
    def body():
        from loader import store

        old = {"seq": 70, "floor": 72, "ring": [[k, 301 + k % 2, None if k == 8 else 1765000000 + k, "d%d" % k]
                                                 for k in range(7, 71)]}
        store.write_record(ev.PATH, ev.RECORD, ev.RECORD_VERSION, old)
        log = ev.EventLog(capacity=64)
        log.load()
        assert log.ring == [tuple(e) for e in old["ring"]] and log.seq == 72
        assert log.since(69) == [(70, 301, 1765000070, "d70")] and log.since(0, limit=2)[1] == (8, 301, None, "d8")
        log.add(ev.CLOCK_UNKNOWN, "héllo ✓ " + "x" * 60, at=None)  # UTF-8, cut at DETAIL_MAX characters
        assert log.ring[0][0] == 8 and len(log.ring) == 64
        assert log.ring[-1] == (73, ev.CLOCK_UNKNOWN, None, ("héllo ✓ " + "x" * 60)[: ev.DETAIL_MAX])
        again = _stored()
        assert again.ring == log.ring and again.seq == 73
        _, data = store.read_record(ev.PATH, ev.RECORD, ev.RECORD_VERSION)
        assert data["ring"][-1] == [73, ev.CLOCK_UNKNOWN, None, ("héllo ✓ " + "x" * 60)[: ev.DETAIL_MAX]]

    fwtest.in_workdir(body, "meter")


def test_a_refusal_the_heap_cannot_pack_leaves_the_ring_as_it_was():
    # found by `meter-fuzz attack` on a locked emulated meter: a MemoryError while a refusal was packed (a flood of
    # large requests leaves the heap short) left the newest-event offset past the end of the ring; the burst's next
    # refusal read it back and the app ended with "ValueError: buffer too small" (a reboot from one unsigned request)
    def body():
        real = ev.struct
        short = [0]

        class Struct:
            unpack_from = real.unpack_from

            @staticmethod
            def pack(*a):
                if short[0]:
                    short[0] -= 1
                    raise MemoryError("memory allocation failed")
                return real.pack(*a)

        log = ev.EventLog(ticks_ms=lambda: 0)
        log.load()
        log.add(ev.COMMAND_REFUSED, "first")  # a burst of refusals starts
        ev.struct = Struct
        try:
            short[0] = 1
            fwtest.raises(MemoryError, log.add, ev.COMMAND_REFUSED, "second")
            assert [e[3] for e in log.ring] == ["first"]
            log.add(ev.COMMAND_REFUSED, "third")  # read the newest back: the ring was left whole
            for k in range(ev.HELD_MAX):  # past the burst's reserved numbers: counted on the newest
                log.add(ev.COMMAND_REFUSED, "more %d" % k)
            newest = log.ring[-1]
            n = int(newest[3].split(" +")[-1])
            short[0] = 1
            fwtest.raises(MemoryError, log.add, ev.COMMAND_REFUSED, "lost")
            assert log.ring[-1] == newest
            log.add(ev.COMMAND_REFUSED, "counted")
        finally:
            ev.struct = real
        ring = log.ring
        assert ring[-1][3].endswith(" +%d" % (n + 1)) and ring[-1][0] == newest[0], ring[-1]
        assert [e[3] for e in ring][:2] == ["first", "third"]
        again = ev.EventLog(ticks_ms=lambda: 0)
        log.flush_due()
        again.load()
        assert [e[:2] for e in again.ring] == [e[:2] for e in _stored().ring]

    fwtest.in_workdir(body, "meter")
