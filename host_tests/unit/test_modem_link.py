"""The host's modem driver (ota_tool/at_reader.py, ota_tool/modem_link.py): hypothesis over the modem's output cut at
random places (URCs and garbage between a response's lines, overlong lines, datagrams whose bytes hold CR, LF and
NUL, the send prompt), the driver's command matching with URCs inside responses, its errors in plain words, and a
modem that answers SEND FAIL, on a pty with a scripted module. The emulated field modem end to end:
host_tests/emulator/test_modem_link_e2e.py."""

from __future__ import annotations

import asyncio
import os
import threading
import tty

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ota_tool import modem_link
from ota_tool.at_reader import DATA_MAX, LINE_MAX, AtReader, Datagram, Line, Prompt
from ota_tool.errors import ModemError
from ota_tool.modem_link import AtError, AtPort, ModemDatagrams, cme_words

text = st.text(st.characters(min_codepoint=32, max_codepoint=255), min_size=1, max_size=60).filter(
    lambda t: t[:2].upper() != "AT" and not t.startswith((">", " ")) and not t.endswith(" ") and "QIRD" not in t
)
urc = st.sampled_from(['+QIURC: "recv",0', "+CEREG: 2", "+CEREG: 1", '+QIURC: "closed",1', "RDY", "+QIOPEN: 0,0"])
line = st.one_of(text, urc).map(lambda t: ("line", t))
datagram = st.tuples(
    st.from_regex(r"127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", fullmatch=True),
    st.integers(1, 65535),
    st.binary(min_size=1, max_size=200),
).map(lambda d: ("datagram", d))
# (not starting ">" after its CRs, as `text` does not: while a send waits for its prompt, a line starting ">" is the
# prompt, by the reader's rule; hypothesis found an overlong ">\x00..." read as one)
overlong = st.binary(min_size=LINE_MAX + 3, max_size=LINE_MAX + 300).map(lambda b: b.replace(b"\n", b"x")).filter(
    lambda b: not b.lstrip(b"\r").startswith(b">")
).map(lambda b: ("overlong", b))
echo = st.sampled_from(["AT", "ATE0", 'AT+QISEND=0,4,"1.2.3.4",1337', "AT+QIRD=0"]).map(lambda t: ("echo", t))
prompt = st.just(("prompt", None))
session = st.lists(st.one_of(line, line, datagram, overlong, echo, prompt), min_size=1, max_size=25)


def encode(item) -> bytes:
    kind, v = item
    if kind == "line":
        return b"\r\n" + v.encode("latin-1") + b"\r\n"
    if kind == "datagram":
        ip, port, data = v
        return f'\r\n+QIRD: {len(data)},"{ip}",{port}\r\n'.encode() + data + b"\r\n"
    if kind == "overlong":
        return b"\r\n" + v + b"\r\n"
    if kind == "echo":
        return v.encode() + b"\r"  # the modem echoes the command as it came, CR included
    return b"\r\n> "


def test_a_read_s_sender_may_come_unquoted_and_an_empty_read_is_a_line():
    r = AtReader()
    assert r.feed(b"\r\n+QIRD: 3,10.0.0.7,1337\r\n\n\r\x00\r\n\r\n+QIRD: 0\r\n") == [
        Datagram("10.0.0.7", 1337, b"\n\r\x00"), Line("+QIRD: 0")]


def pieces(stream: bytes, cuts: list[int]) -> list[bytes]:
    """`stream` cut at the (sorted) offsets `cuts`."""
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


def expected(item):
    kind, v = item
    if kind == "line":
        return Line(v)
    if kind == "datagram":
        return Datagram(*v)
    if kind == "prompt":
        return Prompt()
    return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session, st.data())
def test_any_cutting_of_the_modem_s_output_gives_the_same_events(items, data):
    # the stream is fed in segments ending at each prompt (the driver writes its datagram there, the modem waits),
    # each segment cut at random places
    segments: list[tuple[bytes, bool]] = []
    cur = b""
    for it in items:
        cur += encode(it)
        if it[0] == "prompt":
            segments.append((cur, True))
            cur = b""
    segments.append((cur, False))
    r = AtReader()
    got = []
    for seg, ends_in_prompt in segments:
        cuts = sorted(data.draw(st.lists(st.integers(0, len(seg)), max_size=8)))
        r.expect_prompt = ends_in_prompt
        for piece in pieces(seg, cuts):
            got += r.feed(piece)
            assert len(r._buf) <= max(LINE_MAX + 2, DATA_MAX)  # memory bound, whatever comes
    assert got == [e for e in map(expected, items) if e is not None]
    assert r.overlong == sum(1 for k, _ in items if k == "overlong")


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=1, max_size=20_000), st.integers(1, 4096))
def test_a_flood_of_junk_stays_in_bounded_memory(junk, size):
    r = AtReader()
    r.expect_prompt = False
    for i in range(0, len(junk), size):
        for ev in r.feed(junk[i : i + size]):
            assert isinstance(ev, Line | Datagram)
        assert len(r._buf) <= max(LINE_MAX + 2, DATA_MAX)


@pytest.mark.parametrize(
    ("result", "words"),
    [
        ("+CME ERROR: 10", "no SIM (+CME ERROR: 10)"),
        ("+CME ERROR: 30", "no network service"),
        ("+CME ERROR: 566", "local port is taken"),
        ("+CME ERROR: 9999", "error (+CME ERROR: 9999)"),
        ("+CME ERROR: SIM not inserted", "SIM not inserted"),
        ("ERROR", "ERROR"),
    ],
)
def test_cme_errors_in_plain_words(result, words):
    assert words in cme_words(result)
    e = AtError("AT+CPIN?", result)
    assert "AT+CPIN?" in str(e) and words in str(e) and isinstance(e, ModemError)
    assert e.code == (int(result.rsplit(" ", 1)[1]) if result[-1].isdigit() else None)


def test_a_command_takes_its_answer_and_leaves_the_urcs_that_come_inside_it():
    async def go():
        urcs: list[str] = []
        sent: list[bytes] = []
        port = AtPort(sent.append, "/dev/test", urcs.append)
        task = asyncio.ensure_future(port.command("AT+CEREG?"))
        await asyncio.sleep(0)
        for piece in (b"\r\n+CE", b'REG: 0,2\r\n\r\n+QIURC: "recv",0\r\njunk\r', b"\n\r\n+CEREG: 1\r\n\r\nO", b"K\r\n"):
            port.feed(piece)
        reply = await task
        late = port.unsolicited
        port.feed(b"\r\nOK\r\n")  # an answer nobody waits for
        return sent, reply, urcs, late, port.unsolicited

    sent, reply, urcs, late, after = asyncio.run(go())
    assert sent == [b"AT+CEREG?\r"]
    # the +CEREG lines are the command's answer (its prefix), the URC form among them too; the recv URC is not
    assert reply.lines == ["+CEREG: 0,2", "+CEREG: 1"] and reply.result == "OK"
    assert urcs == ['+QIURC: "recv",0'] and late == 1 and after == 2  # the junk line, then the late OK


answer_line = st.from_regex(r'\+QIACT: 1,1,1,"10\.[0-9]{1,3}\.0\.1"', fullmatch=True)
garbage_line = text.filter(lambda t: not t.startswith(("+", "OK", "ERROR", "SEND", "NO CARRIER", "RDY", "APP RDY",
                                                       "POWERED")))
between = st.lists(st.one_of(urc.map(lambda u: ("urc", u)), garbage_line.map(lambda g: ("garbage", g))), max_size=3)
final = st.one_of(st.just("OK"), st.integers(0, 999).map(lambda n: f"+CME ERROR: {n}"))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(answer_line, between), max_size=4), final, between, st.data())
def test_a_command_s_answer_comes_whole_whatever_the_cuts_and_the_urcs_inside_it(answer, result, after, data):
    """AT+QIACT? answered by its +QIACT lines with URCs and garbage between them and after the final result, the
    whole stream cut at random places: the reply holds exactly the answer lines, every URC reaches on_urc in order,
    every garbage line is counted."""

    def lines(items) -> bytes:
        return b"".join(b"\r\n" + t.encode("latin-1") + b"\r\n" for t in items)

    stream = b"".join(lines([line, *(t for _, t in extra)]) for line, extra in answer) + lines([result])
    stream += lines(t for _, t in after)
    noise = [x for _, extra in answer for x in extra]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))

    async def go():
        urcs: list[str] = []
        port = AtPort(lambda b: None, "/dev/test", urcs.append)
        task = asyncio.ensure_future(port.command("AT+QIACT?", check=False))
        await asyncio.sleep(0)
        for piece in pieces(stream, cuts):
            port.feed(piece)
        return await task, urcs, port.unsolicited

    reply, urcs, unsolicited = asyncio.run(go())
    everything = noise + after
    assert reply.lines == [line for line, _ in answer] and reply.result == result
    assert urcs == [t for k, t in everything if k == "urc"]
    assert unsolicited == sum(1 for k, _ in everything if k == "garbage")


def test_a_command_the_modem_refuses_raises_at_error_and_silence_a_modem_error():
    async def go():
        port = AtPort(lambda b: None, "/dev/test", lambda u: None)
        task = asyncio.ensure_future(port.command("AT+CPIN?"))
        await asyncio.sleep(0)
        port.feed(b"\r\n+CME ERROR: 10\r\n")
        with pytest.raises(AtError) as e:
            await task
        assert e.value.code == 10
        with pytest.raises(ModemError, match="did not answer AT within 0.05 s"):
            await port.command("AT", timeout=0.05)

    asyncio.run(go())


class ScriptedModem:
    """A BG95 on a pty that answers what the link's opening asks and every AT+QISEND with `send_result`."""

    def __init__(self, send_result: bytes = b"SEND FAIL"):
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.send_result = send_result
        self.sends = 0
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _answer(self, cmd: bytes) -> bytes:
        if cmd == b"AT+CPIN?":
            return b"\r\n+CPIN: READY\r\n\r\nOK\r\n"
        if cmd == b"AT+CEREG?":
            return b"\r\n+CEREG: 1,1\r\n\r\nOK\r\n"
        if cmd.startswith(b"AT+QIOPEN="):
            return b"\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n"
        if cmd.startswith(b"AT+QISEND="):
            self.sends += 1
            self._want = int(cmd.split(b",")[1])
            return b"\r\n> "
        return b"\r\nOK\r\n"

    def _serve(self) -> None:
        import select

        buf = b""
        self._want = 0
        while not self._stop:
            if not select.select([self.master], [], [], 0.05)[0]:
                continue
            try:
                buf += os.read(self.master, 4096)
            except OSError:
                return
            while True:
                if self._want:
                    if len(buf) < self._want:
                        break
                    buf, self._want = buf[self._want :], 0
                    os.write(self.master, b"\r\n" + self.send_result + b"\r\n")
                    continue
                if b"\r" not in buf:
                    break
                cmd, buf = buf.split(b"\r", 1)
                os.write(self.master, self._answer(cmd.strip()))

    def close(self) -> None:
        self._stop = True
        self._thread.join(5)
        os.close(self.master)
        os.close(self.slave)


def test_a_modem_that_answers_send_fail_is_tried_again_then_named(monkeypatch):
    monkeypatch.setattr(modem_link, "SEND_FAIL_WAIT_S", 0.01)
    modem = ScriptedModem()

    async def go():
        link = ModemDatagrams(modem.path, "10.64.0.17", 1337, local_port=40000)
        await link.open(5)
        try:
            with pytest.raises(ModemError, match=r"could not send \(SEND FAIL 4 times\)"):
                await link.send(b"\r\n\x00smp")
            return link.send_fails
        finally:
            await link.close()

    try:
        assert asyncio.run(go()) == modem_link.SEND_FAIL_TRIES
        assert modem.sends == modem_link.SEND_FAIL_TRIES
    finally:
        modem.close()


def test_a_pty_nobody_answers_is_named():
    master, slave = os.openpty()
    tty.setraw(slave)

    async def go():
        link = ModemDatagrams(os.ttyname(slave), "10.64.0.17", 1337, ready_wait=1.0)
        await link.open(5)

    try:
        with pytest.raises(ModemError, match=f"modem not answering on {os.ttyname(slave)}"):
            asyncio.run(go())
    finally:
        os.close(master)
        os.close(slave)


def test_a_modem_that_fails_while_ota_waits_for_the_meter_s_reset_is_named(monkeypatch):
    """After a push's reset, ota probes until the meter answers: when what failed was the modem, it says so at the
    end instead of "the meter did not come back"."""
    from ota_tool import push

    class Unplugged:
        def __init__(self, *a, **k) -> None:
            pass

        async def __aenter__(self):
            raise ModemError("the modem on /dev/ttyUSB2 went away (end of file): is it still plugged in?")

        async def __aexit__(self, *exc) -> None:
            pass

    monkeypatch.setattr(push, "MeterLink", Unplugged)
    with pytest.raises(ModemError, match="went away"):
        asyncio.run(push.after_reset("modem:///dev/ttyUSB2?to=10.0.0.1", 115200, 1.0, wait=0.3))
    with pytest.raises(ModemError, match="went away"):
        asyncio.run(push.await_verdict("modem:///dev/ttyUSB2?to=10.0.0.1", 115200, 1.0, b"h", wait=0.3))
