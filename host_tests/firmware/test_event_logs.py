import os
import struct

import fwtest
from app import event_logs as el
from app import events as ev
from loader import store


def _log(now=None, capacity=ev.CAPACITY, ticks=None):
    kw = {}
    if ticks is not None:
        kw["ticks_ms"] = ticks
    log = ev.EventLog(capacity=capacity, clock=(lambda: now[0]) if now else None, logs=ev.LOGS, **kw)
    log.load()
    return log


ENTRY = 34  # bytes per entry in a log of this app's format (2)


def _rows(log, k):
    """Category k's DLMS rows, (RTC s, code) of each (the snapshot's columns left out)."""
    return [r[:2] for r in log.compartments("rows", k)]


def _each(log, now, code, n, t0):
    """`n` events of `code`, one a second from RTC second `t0`."""
    for k in range(n):
        now[0] = t0 + k
        log.add(code)


def _from_files():
    """The log after a boot, its ring emptied: what the logs' files alone hold."""
    log = _log()
    log._clear()
    return log


def _file_rows(log, k):
    """Category k's rows as its compartment file and the ring's newer events give them (app/event_logs.py's own)."""
    return [(e[2], e[1]) for e in el.EventLogs(ev.LOGS).entries(log, k)]


def test_each_is15959_category_keeps_its_own_compartment_and_this_kits_codes_stay_in_the_ring():
    assert [el.category(c) for c in (1, 50, 51, 101, 151, 201, 251, 301, 350)] == [0, 0, 1, 2, 3, 4, 5, 6, 6]
    assert [el.category(c) for c in (0, 351, 405, 408, 409, 0xFFFF)] == [None] * 6

    def body():
        now = [1000]
        log = _log(now)
        for code in (101, 102, 151, 405, 301, 302, 251, 410):
            now[0] += 10
            log.add(code, "x")
        assert _rows(log, 2) == [(1010, 101), (1020, 102)] and _rows(log, 3) == [(1030, 151)]
        assert _rows(log, 6) == [(1050, 301), (1060, 302)] and _rows(log, 5) == [(1070, 251)]
        assert _rows(log, 0) == [] and log.compartments("depth", 2) == el.depth_of(2) and log.compartments("depth", 5) == el.depth_of(5)
        import sys

        assert "app.event_logs" not in sys.modules  # its code leaves the heap after each add and read
        # what a boot reads back: the files, not the ring
        back = _from_files()  # after a boot, the logs' files alone
        assert _rows(back, 6) == [(1050, 301), (1060, 302)] and back.compartments("read", 6)[1] == 2

    fwtest.in_workdir(body, "meter")


def test_a_flood_of_refusals_pushes_no_is15959_event_out_of_its_log():
    # the gap docs/SECURITY.md listed: 405/408 as fast as anyone can send them turned the one ring over in minutes
    def body():
        ms = [0]
        now = [5000]
        log = _log(now, capacity=8, ticks=lambda: ms[0])
        log.add(ev.POWER_RESTORE, "power on")
        log.add(ev.COVER_OPEN, "cover")
        log.add(ev.LOAD_DISCONNECTED, "credit")
        for k in range(400):
            ms[0] += 1000
            log.add(ev.TOKEN_REJECTED if k % 2 else ev.COMMAND_REFUSED, "bad")
            log.flush_due()
        assert all(e[1] in ev.REFUSALS for e in log.ring)  # the ring has only refusals now
        assert _rows(log, 2) == [(5000, 102)] and _rows(log, 5) == [(5000, 251)] and _rows(log, 6) == [(5000, 301)]

    fwtest.in_workdir(body, "meter")


def test_a_rolling_compartment_keeps_its_newest_and_the_tamper_compartment_its_first_for_life():
    def body():
        now = [0]
        log = _log(now)
        for k in range(el.depth_of(2) + 7):
            now[0] = 100 + k
            log.add(ev.LOAD_CONNECTED if k % 2 else ev.LOAD_DISCONNECTED)
        rows = _rows(log, 6)
        assert len(rows) == el.depth_of(2) and rows[0][0] == 107 and rows[-1][0] == 100 + el.depth_of(2) + 6
        _each(log, now, ev.COVER_OPEN, el.depth_of(5) + 5, 1000)
        tamper = _rows(log, 5)
        assert tamper == [(1000 + k, 251) for k in range(el.depth_of(5))]  # the first ten, never replaced
        assert log.compartments("read", 5)[1] == el.depth_of(5) + 5  # the later ones counted
        for _ in range(3 * ev.CAPACITY):  # the ring turns over: the compartment does not change
            log.add(ev.POWER_RESTORE)
        assert _rows(log, 5) == tamper
        with open(el.EventLogs(ev.LOGS).path(5), "rb") as f:
            assert len(f.read()) == 17 + ENTRY * el.depth_of(5)

    fwtest.in_workdir(body, "meter")


def test_an_event_a_power_cut_kept_out_of_its_compartment_is_taken_from_the_ring():
    def body():
        now = [50]
        log = _log(now)
        log.add(ev.POWER_FAIL)
        logs, log.logs = log.logs, None  # the cut: the ring written, the compartment not
        log.add(ev.POWER_RESTORE)
        log.logs = logs
        assert _rows(log, 2) == [(50, 101), (50, 102)]  # a read shows it at once
        with open(el.EventLogs(ev.LOGS).path(2), "rb") as f:
            assert len(f.read()) == 17 + ENTRY
        now[0] = 60
        log.add(ev.POWER_FAIL)  # the category's next event writes it first
        log.logs = None
        assert _file_rows(log, 2) == [(50, 101), (50, 102), (60, 101)]
        with open(el.EventLogs(ev.LOGS).path(2), "rb") as f:
            assert len(f.read()) == 17 + 3 * ENTRY

    fwtest.in_workdir(body, "meter")


def test_a_damaged_compartment_is_rebuilt_from_the_ring_with_an_event_and_never_stops_the_start():
    def body():
        now = [70]
        log = _log(now)
        log.add(ev.POWER_RESTORE)
        path = el.EventLogs(ev.LOGS).path(2)
        ahead = b"EVL\x01\x02" + bytes(4) + b"\x00\x00\x00\x00\x80" + bytes(3)  # took sequence number 2**39
        late = b"EVL\x01\x02\x01" + bytes(11) + b"\x09" + bytes(7) + b"\x65\x00" + bytes(8)  # upto 0, an event 9
        for bad in (b"", b"EVL", b"XYZ\x01" + bytes(13), b"EVL\x01\x03" + bytes(12), b"EVL\x01\x02" + bytes(13) + b"x",
                    ahead, late):
            fwtest.write(path, bad)
            assert _rows(log, 2)[-1] == (70, 102)  # unreadable: the ring's view
            before = log.seq
            log.add(ev.POWER_RESTORE)  # as a boot does
            assert log.ring[-1][1] == ev.LOG_LOST and log.ring[-1][0] == before + 2, bad
            assert log.ring[-1][3].startswith("event log 2 damaged")
            power = [(e[2], e[1]) for e in log.ring if el.category(e[1]) == 2]
            with open(path, "rb") as f:
                assert len(f.read()) == 17 + ENTRY * len(power)  # rebuilt from what the ring still has
            log.logs, logs = None, log.logs
            assert _file_rows(log, 2) == power and len(power) > 1
            log.logs = logs
        # a code in the wrong category, a file of a newer app: the one is damage, the other kept untouched
        fwtest.write(path, b"EVL\x01\x02\x01\x00\x00\x00" + bytes(8) + b"\x05" + bytes(7) + b"\x33\x01" + bytes(8))
        assert (0, 307) not in _rows(log, 2)
        assert _rows(log, 2) == [(e[2], e[1]) for e in log.ring if el.category(e[1]) == 2]  # the ring's view
        newer = b"EVL\x03\x02" + bytes(12)
        fwtest.write(path, newer)
        log.add(ev.POWER_FAIL)
        with open(path, "rb") as f:
            assert f.read() == newer
        assert log.ring[-1][1] == ev.POWER_FAIL

    fwtest.in_workdir(body, "meter")


def test_a_full_compartment_drops_its_oldest_on_the_rewrite_and_reads_back_after_a_boot():
    def body():
        now = [0]
        log = _log(now)
        for k in range(el.depth_of(2) + 3):
            now[0] = k
            log.add(ev.POWER_RESTORE if k % 2 else ev.POWER_FAIL)
        back = _from_files()  # a boot reads the compartment from its file
        rows = _rows(back, 2)
        assert len(rows) == el.depth_of(2) and rows[0] == (3, 102) and rows[-1] == (el.depth_of(2) + 2, 101)
        assert back.compartments("read", 2)[1] == el.depth_of(2) + 3

    fwtest.in_workdir(body, "meter")


def test_a_ring_that_restarts_lower_goes_on_above_the_logs_and_keeps_them():
    # the ring file lost (or kept in RAM after a rollback): it restarted at numbers the logs had taken, and the
    # category's next event rebuilt its log from the ring (the first tamper events lost) or was skipped as logged
    def body():
        import os

        now = [1000]
        log = _log(now)
        for code in (251, 251, 101, 102, 251):
            log.add(code)
        first = log.compartments("entries", 5)
        os.remove(ev.PATH)  # flash damage: the ring's file gone
        again = _log(now)
        assert again.seq >= first[-1][0]  # its numbers go on above every log's
        again.add(ev.COVER_OPEN)
        assert again.compartments("entries", 5)[:3] == first and len(again.compartments("entries", 5)) == 4
        assert ev.LOG_LOST not in [e[1] for e in again.ring]

    fwtest.in_workdir(body, "meter")


def test_a_start_writes_what_a_power_cut_kept_out_of_a_log():
    def body():
        now = [2000]
        log = _log(now)
        log.add(ev.COVER_OPEN)
        log.logs = None  # the cut: the ring written, the tamper log not
        log.add(ev.COVER_OPEN)
        again = _log(now)  # the next start settles the logs from the ring
        again._clear()  # the file alone
        assert [e[0] for e in _file_entries(again, 5)] == [1, 2]

    fwtest.in_workdir(body, "meter")


def test_a_flipped_format_byte_is_damage_not_a_newer_apps_log():
    def body():
        now = [3000]
        log = _log(now)
        log.add(ev.POWER_RESTORE)
        fwtest.write(el.EventLogs(ev.LOGS).path(2), b"EVL\x07\x05" + bytes(12))  # format 7, but category 5's head
        log.add(ev.POWER_RESTORE)
        assert log.ring[-1][1] == ev.LOG_LOST and log.ring[-1][3].startswith("event log 2 damaged")

    fwtest.in_workdir(body, "meter")


def _file_entries(log, k):
    return el.EventLogs(ev.LOGS).entries(log, k)


def _tamper_log_older_than_the_ring(now):
    """A log whose first ten cover openings the ring no longer holds (only the file has them)."""
    log = _log(now)
    _each(log, now, ev.COVER_OPEN, el.depth_of(5), 1000)
    for _ in range(2 * ev.CAPACITY):
        log.add(ev.POWER_RESTORE)
    return log


def _damage(path, n, field, value):
    """Set field 0 (sequence number) or 1 (code) of the file's entry n."""
    with open(path, "rb") as f:
        raw = bytearray(f.read())
    at = 17 + ENTRY * n
    e = list(struct.unpack("<QHqHIhQ", raw[at: at + ENTRY]))
    e[field] = value
    raw[at: at + ENTRY] = struct.pack("<QHqHIhQ", *e)
    fwtest.write(path, bytes(raw))


def test_a_damaged_entry_is_dropped_and_the_tamper_log_keeps_its_good_ones():
    first = [(1000 + k, 251) for k in range(el.depth_of(5))]
    # the 4th entry's code made 11 (not a tamper code); the 6th's sequence number made 1 (below the 5th's)
    for n, field, value in ((3, 1, 11), (5, 0, 1)):
        def body(n=n, field=field, value=value):
            now = [0]
            log = _tamper_log_older_than_the_ring(now)
            _damage(el.EventLogs(ev.LOGS).path(5), n, field, value)
            kept = first[:n] + first[n + 1:]
            assert _rows(log, 5) == kept  # a read leaves the damaged one out, and only it
            now[0] = 5000
            log.add(ev.COVER_OPEN)  # the category's next event finds the damage: the good nine stay, with this one
            assert log.ring[-1][1] == ev.LOG_LOST and log.ring[-1][3].startswith("event log 5 damaged")
            assert _rows(log, 5) == kept + [(5000, 251)]
            again = _from_files()  # after a boot, from the file alone
            assert _rows(again, 5) == kept + [(5000, 251)]
            assert again.compartments("read", 5)[1] == el.depth_of(5) + 1  # the head's count, and the new one

        fwtest.in_workdir(body, "meter")


def test_a_rolling_log_with_a_damaged_entry_keeps_the_others_and_the_ring_s_newer_ones_in_order():
    def body():
        now = [0]
        log = _log(now)
        _each(log, now, ev.LOAD_DISCONNECTED, 4, 7000)
        now[0] = 7005
        log.add(ev.LOAD_DISCONNECTED)
        for _ in range(ev.CAPACITY - 1):  # the ring turns over but for the last disconnection
            log.add(ev.POWER_RESTORE)
        _damage(el.EventLogs(ev.LOGS).path(6), 1, 1, 101)  # a power event's code in the control log
        now[0] = 7010
        log.add(ev.LOAD_CONNECTED)
        assert log.ring[-1][1] == ev.LOG_LOST
        rows = [(7000, 301), (7002, 301), (7003, 301), (7005, 301), (7010, 302)]
        assert _rows(log, 6) == rows
        log._clear()  # the ring gone: the file alone holds what it kept
        assert _rows(log, 6) == rows

    fwtest.in_workdir(body, "meter")


def test_a_log_write_that_failed_is_tried_again_at_a_reading_before_the_ring_turns_over():
    def body():
        now, ms = [100], [0]
        log = _log(now, ticks=lambda: ms[0])
        log.add(ev.LOAD_DISCONNECTED)
        blocker = el.EventLogs(ev.LOGS).path(6) + store.TMP_SUFFIX
        os.mkdir(blocker)  # the log's write fails (as on a full flash)
        now[0] = 200
        log.add(ev.LOAD_CONNECTED)
        assert log.ring[-1][1] == ev.LOAD_CONNECTED  # in the ring; the log's file kept its old content
        log.flush_due()
        os.rmdir(blocker)  # the room comes back
        ms[0] = el.RETRY_MS - 1
        log.flush_due()  # too soon: not tried yet
        with open(el.EventLogs(ev.LOGS).path(6), "rb") as f:
            assert len(f.read()) == 17 + ENTRY  # the disconnection only
        ms[0] = el.RETRY_MS
        log.flush_due()  # a reading: the log takes what it missed
        for _ in range(2 * ev.CAPACITY):  # then the ring turns over
            log.add(ev.POWER_RESTORE)
        again = _from_files()  # after a boot, the logs' files alone
        assert _rows(again, 6) == [(100, 301), (200, 302)]

    fwtest.in_workdir(body, "meter")


def test_one_damaged_sequence_number_costs_its_own_entry_only():
    first = [(1000 + k, 251) for k in range(el.depth_of(5))]

    def raised():  # the first entry's number raised to the 9th's (the ring no longer holds any of them)
        now = [0]
        log = _tamper_log_older_than_the_ring(now)
        _damage(el.EventLogs(ev.LOGS).path(5), 0, 0, 9)
        assert _rows(log, 5) == first[1:]
        now[0] = 5000
        log.add(ev.COVER_OPEN)
        assert _rows(log, 5) == first[1:] + [(5000, 251)]

    def lowered_to_the_next():  # the 3rd entry's number made the 4th's (the ring holds them all: it stands for them)
        now = [0]
        log = _log(now)
        _each(log, now, ev.COVER_OPEN, el.depth_of(5), 1000)
        _damage(el.EventLogs(ev.LOGS).path(5), 2, 0, 4)
        assert _rows(log, 5) == first

    fwtest.in_workdir(raised, "meter")
    fwtest.in_workdir(lowered_to_the_next, "meter")


def test_a_salvaged_log_counts_at_least_the_events_it_keeps():
    def body():
        now = [0]
        log = _log(now)
        _each(log, now, ev.COVER_OPEN, 3, 1000)
        path = el.EventLogs(ev.LOGS).path(5)
        _damage(path, 0, 1, 11)
        with open(path, "rb") as f:
            raw = bytearray(f.read())[: 17 + 2 * ENTRY]  # two entries (one bad) under a count of two
        raw[5:9] = struct.pack("<I", 2)
        fwtest.write(path, bytes(raw))
        now[0] = 2000
        log.add(ev.COVER_OPEN)
        assert log.ring[-1][1] == ev.LOG_LOST
        assert el.EventLogs(ev.LOGS)._head(5, log.seq) == (4, log.seq - 1, 4, 2)  # (total, upto, entries, format): sound
        before = len(log.ring)
        again = _log()  # the file the salvage wrote is sound: no second 409
        assert [e[1] for e in again.ring].count(ev.LOG_LOST) == 1 and len(again.ring) == before
        assert _rows(again, 5) == [(1000, 251), (1001, 251), (1002, 251), (2000, 251)]
        assert again.compartments("read", 5)[1] == 4

    fwtest.in_workdir(body, "meter")


def test_a_damaged_head_whose_rebuild_failed_is_rebuilt_at_a_later_reading():
    def body():
        now, ms = [100], [0]
        log = _log(now, ticks=lambda: ms[0])
        log.add(ev.LOAD_DISCONNECTED)
        path = el.EventLogs(ev.LOGS).path(6)
        fwtest.write(path, b"XYZ" + bytes(14))
        os.mkdir(path + store.TMP_SUFFIX)  # the rebuild's write fails
        now[0] = 200
        log.add(ev.LOAD_CONNECTED)
        os.rmdir(path + store.TMP_SUFFIX)
        ms[0] = el.RETRY_MS
        log.flush_due()
        assert log.unsettled is None
        assert log.ring[-1][1] == ev.LOG_LOST and log.ring[-1][3].startswith("event log 6 damaged")
        for _ in range(2 * ev.CAPACITY):
            log.add(ev.POWER_RESTORE)
        again = _from_files()  # after a boot, the logs' files alone
        assert _rows(again, 6) == [(100, 301), (200, 302)]

    fwtest.in_workdir(body, "meter")


def test_a_log_that_cannot_be_written_is_tried_less_and_less_often():
    def body():
        now, ms = [100], [0]
        log = _log(now, ticks=lambda: ms[0])
        os.mkdir(ev.LOGS)
        os.mkdir(el.EventLogs(ev.LOGS).path(6))  # as a flash that stays full: every write fails
        log.add(ev.LOAD_CONNECTED)
        tries = [0]
        due = log.unsettled
        for s in range(0, 86400, 10):  # a day of readings, one every 10 s
            ms[0] = s * 1000
            log.flush_due()
            if log.unsettled != due:
                tries.append(s)
                due = log.unsettled
        gaps = [tries[i + 1] - tries[i] for i in range(len(tries) - 1)]
        assert gaps[:4] == [10, 20, 40, 80] and max(gaps) == el.RETRY_MAX_MS // 1000, gaps
        assert len(tries) < 40  # not 8,640 writes a day
        os.rmdir(el.EventLogs(ev.LOGS).path(6))
        ms[0] += el.RETRY_MAX_MS
        log.flush_due()
        assert log.unsettled is None and log.retry_ms == 0
        assert _rows(log, 6) == [(100, 302)]

    fwtest.in_workdir(body, "meter")


def test_a_ring_whose_numbers_do_not_rise_is_not_trusted():
    def body():
        now = [0]
        log = _log(now)
        _each(log, now, ev.COVER_OPEN, 3, 1000)
        _damage(el.EventLogs(ev.LOGS).path(5), 1, 1, 11)
        store.write_record(ev.PATH, ev.RECORD, ev.RECORD_VERSION,
                           {"seq": 3, "floor": 3, "ring": [[3, 251, None, ""], [3, 251, 5, ""], [2, 251, 6, ""],
                                                           [9, 251, 7, ""]]})
        again = _log(now)
        assert [e[0] for e in again.ring if e[1] == 251] == [3]  # the repeat, the fall and the number above the
        rows = _rows(again, 5)  # record's are dropped; a read of the damaged log does not raise
        assert rows[0] == (1000, 251) and (None, 251) in rows

    fwtest.in_workdir(body, "meter")


class _Reading:
    voltage = 230.126
    current = 5.0004
    pf = -0.9816


class _Registers:
    def mwh(self, k):
        return 987654321 if k == 0 else 5  # the import register (index 0), the others


def test_each_logged_event_keeps_the_supply_s_figures_at_its_reading():
    from app import tick as tk

    def body():
        now = [500]
        log = _log(now)
        log.tick = tk.Tick(_Reading(), _Registers())
        log.add(ev.POWER_RESTORE)  # before the first reading after a start: the energy register only
        log.tick.ms = 1000
        now[0] = 600
        log.add(ev.LOAD_DISCONNECTED)
        logs, log.logs = log.logs, None  # a power cut between the ring's write and the log's
        log.add(ev.LOAD_CONNECTED)
        log.logs = logs
        assert log.compartments("rows", 2)[-1] == (500, 102, None, None, None, 987654321)
        assert log.compartments("rows", 6) == [(600, 301, 23013, 5000, -982, 987654321),
                                               (600, 302, None, None, None, None)]  # taken from the ring: none
        again = _from_files()  # from the files, after a boot
        assert again.compartments("rows", 6)[0] == (600, 301, 23013, 5000, -982, 987654321)
        assert again.compartments("read", 6)[0][0] == (log.ring[-2][0], 301, 600, 23013, 5000, -982, 987654321)
        # a value beyond its field is held at the field's limit, never wrapped
        _Reading.voltage, _Reading.current = 700.0, -1.0
        log.add(ev.LOAD_DISCONNECTED)
        assert log.compartments("rows", 6)[-1][2:4] == (65534, 0)
        for bad in (float("inf"), float("nan")):  # a reading that is not a number: the event is logged all the same
            _Reading.voltage = bad
            log.add(ev.LOAD_CONNECTED)
            assert log.compartments("rows", 6)[-1][1:] == (302, None, None, None, 987654321)
        _Reading.voltage, _Reading.current = 230.126, 5.0004

    fwtest.in_workdir(body, "meter")


def test_an_earlier_app_s_log_is_read_and_rewritten_in_this_format_with_nothing_lost():
    def body():
        now = [0]
        log = _log(now)
        for k in range(2 * ev.CAPACITY):  # the ring turns over: only the log has the first cover openings
            now[0] = 100 + k
            log.add(ev.COVER_OPEN if k < 3 else ev.POWER_RESTORE)
        seq = log.seq
        old = struct.pack("<3sBBIQ", b"EVL", 1, 5, 3, 3)  # format 1: 18-byte entries, no snapshot
        old += b"".join(struct.pack("<QHq", n + 1, 251, 100 + n) for n in range(3))
        fwtest.write(el.EventLogs(ev.LOGS).path(5), old)
        first = [(100, 251, None, None, None, None), (101, 251, None, None, None, None),
                 (102, 251, None, None, None, None)]
        assert log.compartments("rows", 5) == first  # read as it is
        now[0] = 900
        log.add(ev.COVER_OPEN)
        assert log.ring[-1][1] == ev.COVER_OPEN  # no damage found
        with open(el.EventLogs(ev.LOGS).path(5), "rb") as f:
            raw = f.read()
        assert raw[3] == 2 and len(raw) == 17 + 4 * ENTRY  # rewritten in this format
        assert log.compartments("rows", 5) == first + [(900, 251, None, None, None, None)]
        assert log.compartments("read", 5)[1] == 4 and log.seq == seq + 1

    fwtest.in_workdir(body, "meter")


def test_a_damaged_entry_costs_no_other_entry_its_figures():
    from app import tick as tk

    def body():
        now = [100]
        log = _log(now)
        log.tick = tk.Tick(_Reading(), _Registers())
        log.tick.ms = 1
        _each(log, now, ev.LOAD_DISCONNECTED, 4, 100)
        _damage(el.EventLogs(ev.LOGS).path(6), 1, 1, 11)  # the 2nd entry's code: the ring still holds its event
        now[0] = 110
        log.add(ev.LOAD_CONNECTED)
        figs = (23013, 5000, -982, 987654321)
        want = [(100, 301) + figs, (101, 301, None, None, None, None), (102, 301) + figs, (103, 301) + figs,
                (110, 302) + figs]
        assert log.compartments("rows", 6) == want
        again = _from_files()  # after a boot, the logs' files alone
        assert again.compartments("rows", 6) == want

    fwtest.in_workdir(body, "meter")
