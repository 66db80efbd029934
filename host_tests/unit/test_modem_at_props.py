"""Property tests (CPython, hypothesis) for the modem driver's AT channel (firmware/app/modem_at.py): a generated
module session — responses with URCs and garbage between their lines and after their final result, overlong lines,
binary junk — read through the scripted stream cut at hypothesis' chosen places gives exactly the responses, URCs and
discard counts the session was built from. The same driver code runs on the VM in host_tests/firmware/test_modem.py
(fixed cuts there: hypothesis does not run in the VM)."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripted_module import Script, stream

from app.modem_at import INFO_LINES, AtChannel, AtError

LINE_MAX = 48
RESERVED = (b"OK", b"ERROR", b"+CME ERROR: ", b"+CMS ERROR: ", b"+R", b"+U")

body = st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")).filter(bool)
urc = body.map(lambda b: b"+U" + b[: LINE_MAX - 2])
info = body.map(lambda b: b"+R" + b[: LINE_MAX - 2])
garbage = st.one_of(
    body.filter(lambda b: not any(b.startswith(r) for r in RESERVED) and b.strip(b" ") == b and b[:1] != b">"),
    st.binary(min_size=LINE_MAX + 1, max_size=3 * LINE_MAX).map(
        lambda b: b"#" + b.replace(b"\r", b"").replace(b"\n", b"")
    ),
)
noise = st.lists(st.one_of(urc, garbage), max_size=3)
final = st.one_of(st.just(b"OK"), st.just(b"ERROR"), st.integers(0, 999).map(lambda n: b"+CME ERROR: %d" % n))
command = st.tuples(st.lists(st.tuples(info, noise), max_size=INFO_LINES + 2), final, noise)
session = st.lists(command, min_size=1, max_size=5)


def build(cmds):
    """The bytes the module sends for each command, and what the channel must make of them."""
    replies, expect_urcs, results = [], [], []
    overlong = unknown = dropped = 0
    for lines, fin, after in cmds:
        out = b""
        kept = []
        for line, extra in lines:
            out += b"\r\n" + line + b"\r\n"
            if len(kept) < INFO_LINES:
                kept.append(line)
            else:
                dropped += 1
            for x in extra:
                out += b"\r\n" + x + b"\r\n" if x[:1] != b"#" else x + b"\r\n"
        out += b"\r\n" + fin + b"\r\n"
        for x in after:
            out += b"\r\n" + x + b"\r\n"
        for x in [x for _, extra in lines for x in extra] + after:
            if x.startswith(b"+U"):
                expect_urcs.append(x)
            elif len(x) > LINE_MAX:
                overlong += 1
            else:
                unknown += 1
        replies.append(out)
        code = None if fin == b"OK" else (-1 if fin == b"ERROR" else int(fin[12:]))
        results.append((code, kept))
    return replies, (expect_urcs, results, overlong, unknown, dropped)


def drive(replies, cuts):
    urcs = []
    queue = list(replies)
    script = Script(lambda cmd: queue.pop(0), cuts)

    def on_urc(buf, n):
        if n >= 2 and bytes(buf[:2]) == b"+U":  # buf[n:] holds older lines: never read past n
            urcs.append(bytes(buf[:n]))
            return True
        return False

    at = AtChannel(stream(script), on_urc, LINE_MAX)

    async def main():
        results = []
        reader = asyncio.create_task(at.run())
        for i in range(len(replies)):
            try:
                await at.command(b"AT+Q%d" % i, 5000, prefix=b"+R")
                code = None
            except AtError as e:
                code = e.code
            results.append((code, list(at.info)))
            while script.out:  # the reply's tail is read before the next command goes out
                await asyncio.sleep(0)
        reader.cancel()
        return results

    results = asyncio.run(main())
    return urcs, results, at.overlong, at.unknown, at.info_dropped


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session, st.lists(st.integers(1, 70), min_size=1, max_size=20))
def test_any_fragmentation_gives_the_session_s_responses_urcs_and_counts(cmds, cuts):
    replies, expected = build(cmds)
    assert drive(replies, cuts) == expected


# -- the BC660K dialect and the transport: datagrams ----------------------------------------------------------------
def receive(parts, cuts):
    """Feed the module's output through the whole driver (channel, BC660K dialect, socket) cut by `cuts`, one part
    (a datagram's URC and what follows it) after the socket delivered the previous part's datagram, as a host that
    keeps up does (one that does not loses datagrams to the full queue: test_modem.py counts those); what the
    socket delivered and the driver's counters."""
    from app import modem, modem_bc660k

    script = Script(lambda cmd: b"", cuts)
    m = modem.Modem(stream(script), modem_bc660k)
    sock = modem.Socket(m, 0, "10.0.0.1", 1337, 1337)
    m.sockets[0] = sock
    got = []

    async def main():
        reader = asyncio.create_task(m.at.run())
        for part in parts:
            script.push(part)
            got.append(bytes(await sock.recv()))
        reader.cancel()

    asyncio.run(asyncio.wait_for(main(), 30))
    return got, (m.stat, m.at.overlong, sock.malformed, sock.dropped)


datagram = st.binary(max_size=512)
between = st.lists(
    st.one_of(
        st.integers(0, 5).map(lambda s: b"\r\n+CEREG: %d\r\n" % s),
        garbage.map(lambda g: b"\r\n" + g + b"\r\n"),
        st.just(b'\r\n+QIURC: "recv",0,4,"0G00"\r\n'),  # bad hex
    ),
    max_size=2,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(datagram, between), min_size=1, max_size=6),
    st.lists(st.integers(1, 200), min_size=1, max_size=10),
)
def test_datagrams_arrive_whole_and_in_order_whatever_the_cuts_and_urcs_between(items, cuts):
    from app import modem_bc660k

    parts = []
    stat, bad, overlong = -1, 0, 0
    for data, extra in items:
        part = b'\r\n+QIURC: "recv",0,%d,"%s"\r\n' % (len(data), data.hex().upper().encode())
        for x in extra:
            part += x
            if x.startswith(b"\r\n+CEREG: "):
                stat = int(x[10:-2])
            elif x.startswith(b'\r\n+QIURC: "recv"'):
                bad += 1
            elif len(x) - 4 > modem_bc660k.LINE_MAX:
                overlong += 1
        parts.append(part)
    # the last part's extras are read once a final datagram arrives after them
    parts.append(b'\r\n+QIURC: "recv",0,3,"454E44"\r\n')
    got, counters = receive(parts, cuts)
    assert got == [d for d, _ in items] + [b"END"]
    assert counters == (stat, overlong, bad, 0)
