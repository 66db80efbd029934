"""firmware/app/dlms_wrapper.py's WrapperPort on CPython and in the MicroPython VM (plain asserts; see conftest.py): DLMS
through the IEC 62056-47 UDP wrapper, as the meter serves it on port 4059 through its NB-IoT module (app/network_link.py
starts it): each datagram one APDU behind the 8-byte header, answered with the wPorts swapped and within one datagram;
datagrams that are no wrapper for this server are dropped and counted; one association at a time, ended by RLRQ or its
inactivity; the layers load at a session's first datagram and leave the heap with it, shared with the optical port's
session when both run. host_tests/emulator/test_dlms_wrapper_e2e.py drives the real module and link."""

import asyncio
import sys
import time

import fwtest
from app import dlms_port

GET_VOLTAGE = bytes.fromhex("c001c1000301000c0700ff0200")  # class 3, 1.0.12.7.0.255, attribute 2
GET_IMPORT = bytes.fromhex("c001c1000301000108" + "00ff0200")  # class 3, 1.0.1.8.0.255 (import energy), attribute 2
GET_OBJECTS = bytes.fromhex("c001c1000f0000280000ff0200")  # class 15, 0.0.40.0.0.255 (the association), attribute 2
RLRQ = bytes.fromhex("6200")


def header(d):
    """(version, source wPort, destination wPort, length) of a wrapper datagram."""
    return tuple((d[i] << 8) | d[i + 1] for i in range(0, 8, 2))


def loaded():
    import app

    return [m for m in dlms_port.LAYERS if m in sys.modules or hasattr(app, m[4:])]


def ask(p, apdu, client=16):
    """The port's answer to one wrapped request: (header, APDU), or None when it answers nothing."""
    r = p.reply(memoryview(fwtest.wrap(apdu, client)))  # as the socket gives it
    if r is None:
        return None
    r = bytes(r)
    assert header(r) == (1, 1, client, len(r) - 8), r
    return header(r), r[8:]


def test_an_association_over_the_wrapper_answers_with_the_wports_swapped():
    p = fwtest.wrapper_port(fwtest.Datagrams())
    _, aare = ask(p, fwtest.AARQ_PUBLIC)
    assert aare[0] == 0x61 and p.assoc.associated and p.loads == 1
    assert aare[-4:-2] == b"\x01\xf8"  # the meter's largest PDU: the module's datagram (512) less the header
    assert ask(p, fwtest.AARQ_PUBLIC)[1] == aare and p.repeated == 1  # sent again (its answer lost): the same AARE
    _, r = ask(p, GET_IMPORT)
    assert r[:4] == b"\xc4\x01\xc1\x00" and r[4] == 0x15, r  # GET.response normal, data: long64-unsigned (Wh)
    assert ask(p, RLRQ)[1] == b"\x63\x03\x80\x01\x00" and not p.assoc.associated
    _, r = ask(p, GET_VOLTAGE)  # no association now: an ExceptionResponse, service not allowed
    assert r == b"\xd8\x01\x01", r
    p.close()
    assert loaded() == []


def test_datagrams_that_are_no_wrapper_for_this_server_are_dropped_unanswered():
    p = fwtest.wrapper_port(fwtest.Datagrams())
    good = fwtest.wrap(GET_VOLTAGE)
    for bad in (fwtest.wrap(GET_VOLTAGE, version=2), fwtest.wrap(GET_VOLTAGE, server=2), good[:-1], good + b"\x00",
                good[:7], good[:8], b"", bytes(8) + GET_VOLTAGE):
        assert p.reply(memoryview(bad)) is None, bad
    assert p.malformed == 8 and p.loads == 0 and p.assoc is None and loaded() == []  # nothing loaded for them
    p.close()


def test_another_client_is_not_answered_while_an_association_holds_nor_keeps_it_alive():
    p = fwtest.wrapper_port(fwtest.Datagrams())
    ask(p, fwtest.AARQ_PUBLIC)
    assert ask(p, GET_VOLTAGE, client=32) is None and ask(p, fwtest.AARQ_READER, client=32) is None
    assert p.others == 2 and p.assoc.client == 16
    assert ask(p, GET_IMPORT)[1][:4] == b"\xc4\x01\xc1\x00"  # the association's own client still is
    now = p.last_ms = time.ticks_add(p.request_ms, p.inactivity_ms)  # its client silent for the inactivity timeout
    assert not p.held(now) and not p.assoc.associated
    assert ask(p, GET_VOLTAGE, client=32)[1] == b"\xd8\x01\x01"  # the port is free again: answered, with no
    _, aare = ask(p, fwtest.AARQ_PUBLIC)  # association for it; and a new association is made
    assert aare[0] == 0x61 and p.assoc.associated and p.assoc.client == 16, aare
    p.close()


def test_a_value_longer_than_a_datagram_goes_in_blocks_that_each_fit_one():
    p = fwtest.wrapper_port(fwtest.Datagrams())
    ask(p, fwtest.AARQ_PUBLIC)
    _, r = ask(p, GET_OBJECTS)
    data = b""
    number = 0
    while True:
        assert r[:3] == b"\xc4\x02\xc1" and len(r) <= 504, (len(r), r[:12])
        last, number = r[3], int.from_bytes(r[4:8], "big")
        k, n = (11, r[10] & 0x7F) if r[9] == 0x81 else (12, (r[10] << 8) | r[11]) if r[9] == 0x82 else (10, r[9])
        assert len(r) == k + n and r[8] == 0
        data += r[k:]
        if last:
            break
        nxt = bytes((0xC0, 0x02, 0xC1)) + number.to_bytes(4, "big")
        _, r = ask(p, nxt)
        if number == 1:  # the answer lost, the client asks again: the same block again, the transfer goes on
            assert ask(p, nxt)[1] == r and p.repeated == 1
    assert number >= 3 and data[0] == 0x01 and p.repeated == 1  # several blocks; the object list: an array
    data2 = b""
    _, r = ask(p, GET_OBJECTS)  # read whole again, nothing lost: the same value
    while True:
        k, n = (11, r[10] & 0x7F) if r[9] == 0x81 else (12, (r[10] << 8) | r[11]) if r[9] == 0x82 else (10, r[9])
        data2 += r[k:]
        if r[3]:
            break
        _, r = ask(p, bytes((0xC0, 0x02, 0xC1)) + r[4:8])
    assert data2 == data and p.repeated == 1
    p.close()


def test_the_heap_given_to_a_signed_command_ends_the_association():
    p = fwtest.wrapper_port(fwtest.Datagrams())
    ask(p, fwtest.AARQ_PUBLIC)
    assert p.give_heap() and p.assoc is None and p.released == 1 and loaded() == []
    assert ask(p, GET_VOLTAGE)[1] == b"\xd8\x01\x01"  # loaded again, with no association: the client connects again
    assert ask(p, fwtest.AARQ_PUBLIC)[1][0] == 0x61 and p.loads == 2
    p.close()


def test_both_ports_share_the_layers_and_they_go_once_neither_holds_them():
    parts = fwtest.meter_parts()
    w = fwtest.wrapper_port(fwtest.Datagrams(), parts)
    ask(w, fwtest.AARQ_PUBLIC)
    line = fwtest.Line()
    o = dlms_port.OpticalPort(*parts, line, bytearray(64))
    o.buf[:9] = bytes.fromhex("7ea0070321930f017e")  # gurux's SNRM
    o.feed(9)
    assert line.out and o.link is not None and parts[0].dlms_ports == 2 and loaded() == list(dlms_port.LAYERS)
    o.close()  # the optical session ends: the wrapper's goes on with the same modules
    assert parts[0].dlms_ports == 1 and "app.cosem" in sys.modules and "app.dlms_port" in sys.modules
    assert ask(w, GET_IMPORT)[1][:4] == b"\xc4\x01\xc1\x00"
    w.close()
    assert parts[0].dlms_ports == 0 and loaded() == [] and "app.dlms_port" not in sys.modules


def test_a_session_serves_the_port_until_it_is_quiet_with_no_association():
    async def body():
        sock = fwtest.Datagrams()
        p = fwtest.wrapper_port(sock)
        p.idle_ms = 30  # the quiet a session waits for before it ends (5 s on a meter)

        async def client():
            for apdu in (GET_IMPORT, RLRQ):
                sock.inbox.append(fwtest.wrap(apdu))
                while sock.inbox:
                    await asyncio.sleep_ms(5)

        task = asyncio.create_task(client())
        assert await p.start()
        await p.answer(memoryview(fwtest.wrap(fwtest.AARQ_PUBLIC)))
        await asyncio.wait_for_ms(p.session(), 5000)  # generous: the session needs about two quiet periods
        await task
        assert [d[8] for d in sock.out] == [0x61, 0xC4, 0x63] and p.answered == 3
        p.close()
        assert loaded() == [] and "app.dlms_port" not in sys.modules

    asyncio.run(body())


def test_a_first_datagram_that_is_no_wrapper_loads_nothing():
    async def body():
        import loader
        from app import dlms_wrapper

        for name in dlms_port.LAYERS:  # (as on a meter before a session: another test may have left them)
            loader.forget(name)
        sock = fwtest.Datagrams()
        parts = fwtest.meter_parts()
        await dlms_wrapper.serve_wrapper(*parts, sock, memoryview(fwtest.wrap(GET_VOLTAGE, version=2)))
        assert sock.out == [] and loaded() == [] and parts[0].server.releasers == []
        assert "app.dlms_port" not in sys.modules and "app.dlms_wrapper" not in sys.modules

    asyncio.run(body())


def test_a_port_that_finds_no_room_for_its_buffer_registers_nothing():
    parts = fwtest.meter_parts()
    sock = fwtest.Datagrams(cap=1 << 40)  # (a buffer no heap has)
    try:
        fwtest.wrapper_port(sock, parts)
    except (MemoryError, OverflowError, ValueError):
        pass
    assert parts[0].server.releasers == [] and getattr(parts[0], "dlms_sessions", 0) == 0


def test_a_ciphered_set_that_comes_again_gets_its_first_answer_not_a_deciphering_error():
    """The utility association through the wrapper: a glo-SET whose answer was lost is sent again byte for byte; its
    counter is no longer above the client's last, so deciphering it again would refuse it although it was applied.
    The port answers it with the first answer and does not serve it twice."""
    from app import cosem, dlms_hls
    from hls_client import Client, aare_fields

    ek, ak = bytes(range(16)), bytes(range(16, 32))

    def body():
        fwtest.write(dlms_hls.PATH, ek + ak + bytes(4))
        parts = fwtest.meter_parts()
        puts = []
        parts[2].settings_problem = None
        p = fwtest.wrapper_port(fwtest.Datagrams(), parts)
        p.put = lambda *args: puts.append(args) or 0  # (the supply's settings: test_dlms_supply.py)
        title = dlms_hls.system_title(parts[0].meter_id)
        cl = Client(ek, ak)
        f = aare_fields(ask(p, cl.aarq(), 48)[1])
        assert f[0xA2] == b"\x02\x01\x00", f
        r, _ = cl.opened(ask(p, cl.pass3(f[0xAA][2:]), 48)[1], title)
        assert r[:4] == b"\xc7\x01\xc1\x00" and p.assoc.associated, r
        p.assoc.put = p.put
        put = cl.request(b"\xc1\x01\xc1\x00\x47" + cosem.obis("0.0.17.0.0.255") + b"\x03\x00\x05\x00\x00\x10\x68")
        first = ask(p, put, 48)[1]
        assert cl.opened(first, title)[0] == b"\xc5\x01\xc1\x00" and len(puts) == 1
        assert ask(p, put, 48)[1] == first and p.repeated == 1 and len(puts) == 1  # the same answer, not redone
        p.close()

    fwtest.in_workdir(body, "meter")
