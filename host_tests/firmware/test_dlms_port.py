"""firmware/app/dlms_port.py on CPython and in the MicroPython VM (plain asserts; see conftest.py): the DLMS layers
load at a session's first flag and leave the heap (sys.modules and the app package) once no association is connected
and the line is quiet, at a fault, or when the SMP server needs their heap for a signed command (loader/smp.py
make_room); the client of a session ended that way is told DM and connects again. The line here is a byte sink:
host_tests/e2e/test_dlms_optical.py drives the real port of an emulated board."""

import sys
import time

from test_hdlc import GURUX_AARQ, GURUX_DISC, GURUX_SNRM

import fwtest
from app import dlms_port

UA, DM = 0x73, 0x1F


def port():
    line = fwtest.Line()
    return fwtest.optical_port(line), line


def send(p, data):
    for i in range(0, len(data), len(p.buf)):
        piece = data[i:i + len(p.buf)]
        p.buf[:len(piece)] = piece
        p.feed(len(piece))


def loaded():
    import app

    return [m for m in dlms_port.LAYERS if m in sys.modules or hasattr(app, m[4:])]


def control(frame):
    return frame[5]  # flag, format 2, destination (the client: 1 byte), source (the server: 1 byte), control


def run(coro_fn):
    """Run coro_fn() on asyncio: the port's idle watch is a task of the running loop."""
    import asyncio

    return asyncio.run(coro_fn())


def session_then_quiet(p, line):
    send(p, GURUX_SNRM)
    send(p, GURUX_AARQ)
    assert [control(f) for f in line.out] == [UA, 0x30] and line.out[1][11] == 0x61  # UA, then the AARE
    send(p, GURUX_DISC)
    assert control(line.out[-1]) == UA


def test_noise_without_a_flag_loads_nothing():
    async def body():
        p, line = port()
        send(p, bytes(range(0x00, 0x7E)) * 2)
        assert p.deframer is None and p.noise == 252 and p.loads == 0 and line.out == [] and loaded() == []

    run(body)


def test_a_session_loads_the_layers_and_a_quiet_line_after_disc_unloads_them():
    async def body():
        p, line = port()
        session_then_quiet(p, line)
        assert p.loads == 1 and loaded() == list(dlms_port.LAYERS)
        assert not p.idle(time.ticks_add(p.last_ms, p.idle_ms - 1))  # quiet, but not long enough yet
        assert p.idle(time.ticks_add(p.last_ms, p.idle_ms))
        assert p.unload() and p.deframer is None and p.link is None and loaded() == []
        assert not p.unload()  # nothing left to take
        send(p, GURUX_SNRM)  # the next session loads them again
        assert control(line.out[-1]) == UA and p.loads == 2 and loaded() == list(dlms_port.LAYERS)
        p.unload()

    run(body)


def test_a_connected_link_stays_loaded_until_its_inactivity_timeout():
    async def body():
        p, line = port()
        send(p, GURUX_SNRM)
        send(p, GURUX_AARQ)
        quiet = time.ticks_add(p.last_ms, p.idle_ms * 4)
        assert not p.idle(quiet)  # a client between two reads: its association stays
        gone = time.ticks_add(p.last_ms, p.link.timeout_ms + 1)
        assert p.idle(gone)  # it went away without DISC: the link's timeout lets it go
        p.unload()

    run(body)


def test_the_smp_servers_make_room_ends_a_session_and_its_client_is_told_dm():
    async def body():
        p, line = port()
        send(p, GURUX_SNRM)
        send(p, GURUX_AARQ)
        server = p.ctx.server
        assert server.releasers == [p.give_heap]
        assert server.make_room() and p.released == 1 and loaded() == []
        assert not server.make_room()  # nothing more to give
        send(p, GURUX_AARQ)  # the client, unaware, goes on: an I-frame on a link that is not connected
        assert control(line.out[-1]) == DM and p.loads == 2
        send(p, GURUX_SNRM)  # and connects again
        assert control(line.out[-1]) == UA
        p.unload()

    run(body)


def test_a_fault_in_the_layers_is_counted_and_drops_them():
    async def body():
        p, line = port()
        send(p, GURUX_SNRM)

        def broken(apdu):
            raise ValueError("a bug in a layer")

        p.link.on_apdu = broken
        send(p, GURUX_AARQ)
        assert p.faults == 1 and p.deframer is None and loaded() == []
        send(p, GURUX_SNRM)  # the client starts again and is served
        assert control(line.out[-1]) == UA and p.faults == 1
        p.unload()

    run(body)


def test_layers_that_find_no_room_at_first_load_after_a_collection_and_the_snrm_is_answered():
    # on the emulated ESP32 (its heap in pieces, the line under load) loading the layers once raised MemoryError
    # ("allocating 1552 bytes"): the SNRM was dropped and the client waited 20 s for an answer
    async def body():
        p, line = port()
        real = p._load
        tries = []

        def tight():
            tries.append(1)
            if len(tries) == 1:
                raise MemoryError("memory allocation failed, allocating 1552 bytes")
            return real()

        p._load = tight
        send(p, GURUX_SNRM)
        assert len(tries) == 2 and control(line.out[-1]) == UA and p.faults == 0 and p.loads == 1
        p.unload()

    run(body)


def test_a_load_that_runs_out_of_room_part_way_leaves_no_layer_on_the_heap():
    # the layers it brought in before the MemoryError stayed in sys.modules (about 20 KB of an emulated ESP32's
    # heap, found there when a client's SNRM went unanswered): the next load had even less room
    async def body():
        p, line = port()

        def part_way():
            from app import cosem, hdlc  # noqa: F401 - in, then the next import finds no room

            raise MemoryError("memory allocation failed, allocating 1552 bytes")

        p._load = part_way
        send(p, GURUX_SNRM)
        assert p.faults == 1 and p.deframer is None and line.out == [] and loaded() == []

    run(body)


def _reader_frames(secret):
    """SNRM, then the meter reader's AARQ (client SAP 32, low-level security with `secret`) as its first I-frame."""
    from app import hdlc

    aarq = fwtest.aarq_reader(secret)
    buf = bytearray(128)
    out = []
    for control, info in ((0x93, None), (0x10, b"\xe6\xe6\x00" + aarq)):
        n = hdlc.encode(buf, 1, 1, 32, 1, control, info)
        out.append(bytes(buf[:n]))
    return out


def _diagnostic(frame):
    i = frame.index(b"\xa3\x05\xa1\x03\x02\x01")  # the AARE's acse-service-user diagnostic
    return frame[i + 6]


def test_the_meter_reader_s_secret_is_checked_and_guessing_locks_it_out_longer_each_time():
    def body():
        from app import dlms_secret, events

        async def go():
            parts = fwtest.meter_parts()
            log = parts[2].log = events.EventLog(path="meter/events.json")
            line = fwtest.Line()
            p = fwtest.optical_port(line, parts)
            ctx = p.ctx

            def associate(secret):
                for f in _reader_frames(secret):
                    send(p, f)
                return _diagnostic(line.out[-1])

            def locks():
                return [e[3] for e in log.ring if e[1] == events.READER_REFUSED]

            def lock_over():  # the lock's end is behind us now
                ctx.reader_tries[2] = time.ticks_add(time.ticks_ms(), -1)

            right = b"meter reader 1"
            assert associate(right) == 13 and ctx.reader_tries == [1, 0, None]  # none stored yet: wrong
            dlms_secret.save(ctx, dlms_secret.digest(ctx.meter_id, right))
            assert dlms_secret.is_set() and ctx.reader_tries == [0, 0, None]
            assert associate(right) == 0
            assert [associate(b"guess %d" % k) for k in range(3)] == [13, 13, 13] and locks() == [
                "reader locked 10 min after 3 wrong secrets"]  # one event per lock, not per guess
            assert associate(right) == 13 and len(locks()) == 1  # locked: refused unchecked, no more events
            p.unload()  # the session over, the lock is not: the app's context keeps it
            assert associate(right) == 13 and p.loads == 2
            # a restart (a power cut) lifts nothing: the count is on flash, and a meter that starts locked serves
            # the whole lock again
            ctx.reader_tries = None
            assert associate(right) == 13 and ctx.reader_tries[:2] == [3, 1] and ctx.reader_tries[2] is not None
            lock_over()
            assert [associate(b"guess %d" % k) for k in range(3)] == [13, 13, 13]
            assert locks()[-1] == "reader locked 20 min after 3 wrong secrets"  # the next lock twice as long
            lock_over()
            assert associate(right) == 0 and ctx.reader_tries == [0, 0, None]  # a right secret: back to the start
            assert dlms_secret.lock_ms(1) == 600000 and dlms_secret.lock_ms(9) == dlms_secret.lock_ms(20) == 86400000
            # a lock's end further ahead than a lock lasts is ticks that wrapped while nobody came (days): over
            for k in range(3):
                associate(b"guess %d" % k)
            ctx.reader_tries[2] = time.ticks_add(time.ticks_ms(), dlms_secret.lock_ms(1) + 60000)
            assert associate(right) == 0
            dlms_secret.save(ctx, None)
            assert not dlms_secret.is_set() and associate(right) == 13
            fwtest.write(dlms_secret.PATH, b"short")  # a file of another size: no secret, nothing breaks
            assert not dlms_secret.is_set() and associate(right) == 13
            p.unload()

        run(go)

    fwtest.in_workdir(body, "meter")


def test_a_secret_check_that_fails_is_a_refusal_never_an_exception():
    from app import cosem

    def broken(secret):
        raise OSError(28, "no space left")

    a = cosem.Association(lambda *args: cosem.OBJECT_UNDEFINED, lls=broken)
    assert _diagnostic(a.apdu(fwtest.AARQ_READER, cosem.READER_CLIENT)) == 13 and not a.associated
    a.lls = lambda secret: 1  # only True authenticates
    assert _diagnostic(a.apdu(fwtest.AARQ_READER, cosem.READER_CLIENT)) == 13


def test_a_session_s_first_load_waits_for_room_and_says_so_when_there_is_none():
    # an emulated ESP32 (its heap in pieces) left a client's SNRM unanswered: the port's start tries the load again
    # after a collection, then after waits in which the app's other tasks let go of what they held
    def body():
        from app import events

        async def go():
            parts = fwtest.meter_parts()
            log = parts[2].log = events.EventLog(path="meter/events.json")
            p, line = fwtest.optical_port(fwtest.Line(), parts), None
            real = p._load
            tries = []

            def tight():
                tries.append(time.ticks_ms())
                if len(tries) < 4:
                    raise MemoryError("memory allocation failed, allocating 1552 bytes")
                return real()

            p._load = tight
            assert await p.start() and len(tries) == 4 and p.faults == 0 and p.deframer is not None
            assert time.ticks_diff(tries[-1], tries[0]) >= 2 * dlms_port.LOAD_WAIT_MS  # two of the tries waited
            p.unload()
            tries.clear()

            def none():
                tries.append(0)
                raise MemoryError("memory allocation failed, allocating 1552 bytes")

            p._load = none  # never any room
            assert not await p.start() and len(tries) == dlms_port.LOAD_TRIES and p.faults == 1
            assert [(e[1], e[3]) for e in log.ring] == [(events.OUT_OF_MEMORY, "dlms start: allocating 1552 bytes")]
            assert loaded() == [] and p.deframer is None
            assert not await p.start() and len(log.ring) == 1  # one such event a minute at most
            del line

        run(go)

    fwtest.in_workdir(body, "meter")


def test_a_session_ends_when_its_line_goes_quiet_and_takes_its_code_off_the_heap():
    if sys.implementation.name != "micropython":
        return
    import asyncio
    import io

    class Pollable(io.IOBase):
        """A line asyncio can wait on (select.poll through ioctl), as the UART the session reads: MicroPython's
        asyncio only (app/console.py's readable wait), so the [vm] run is the one that matters."""

        def __init__(self):
            self.rx = bytearray()
            self.out = []

        def ioctl(self, req, arg):
            if req == 3:  # MP_STREAM_POLL
                return (arg & 1 if self.rx else 0) | (arg & 4)
            return -1

        def readinto(self, buf):
            k = min(len(buf), len(self.rx))
            if not k:
                return None
            buf[:k] = self.rx[:k]
            self.rx = self.rx[k:]
            return k

        def write(self, buf):
            self.out.append(bytes(buf))
            return len(buf)

    async def body():
        line = Pollable()
        p = fwtest.optical_port(line)
        ctx = p.ctx
        p.idle_ms = 30  # the quiet a session waits for before it ends (5 s on a meter)
        p.buf[:len(GURUX_SNRM)] = GURUX_SNRM
        p.feed(len(GURUX_SNRM))

        async def client():
            for frame in (GURUX_AARQ, GURUX_DISC):
                line.rx += frame
                for _ in range(100):
                    if line.rx:
                        await asyncio.sleep_ms(5)
            return None

        task = asyncio.create_task(client())
        await asyncio.wait_for_ms(p.session(), 5000)  # generous: the session needs about two quiet periods
        await task
        assert [control(f) for f in line.out] == [UA, 0x30, UA]  # UA, the AARE, UA to the DISC
        assert ctx.server.releasers == [p._release]
        p.close()
        assert ctx.server.releasers == [] and loaded() == [] and "app.dlms_port" not in sys.modules

    asyncio.run(body())


def test_a_session_serves_the_name_plate_from_the_meters_identity_and_board():
    async def body():
        p, line = port()
        send(p, GURUX_SNRM)
        send(p, GURUX_AARQ)
        get = bytes.fromhex("e6e600c001c1000700005e5b0aff0200")  # the name plate's buffer
        frame = bytearray(64)
        from app import hdlc

        n = hdlc.encode(frame, 1, 1, 16, 1, 0x32 | 0x10, get)  # I-frame N(S)=1 N(R)=1, poll
        send(p, bytes(frame[:n]))
        apdu = line.out[-1][11:-3]  # after the flag, format, addresses, control, HCS and the LLC header
        assert apdu[:4] == b"\xc4\x01\xc1\x00" and apdu[4:8] == b"\x01\x01\x02\x05"  # one row of 5
        assert apdu[8:] == (b"\x09\x08meter-42" + b"\x09\x0bMKTmeter-42" + b"\x09\x08MeterKit" + b"\x09\x051.2.3"
                            + b"\x09\x065-60 A")
        import app

        # the profiles' module was on the heap for that read only
        assert "app.dlms_profiles" not in sys.modules and not hasattr(app, "dlms_profiles")
        p.unload()

    run(body)
