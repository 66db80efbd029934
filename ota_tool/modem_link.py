"""A `modem://` link's datagrams: a Quectel BG95/BG96-dialect USB modem driven with AT commands over pyserial, as a
`Datagrams` endpoint (ota_tool/smp_udp.py) under the same SMP-over-UDP logic as a UDP socket.

Opening it: wait until the modem answers `AT` (it may still be booting), `ATE0`, numeric `+CME ERROR`s, the SIM
(`AT+CPIN?`), registration (`AT+CEREG?`, with `+CEREG` URCs on: stat 1 home or 5 roaming go on; 2 searching and 0
not searching are waited for; 3 denied ends at once), the PDP context (`AT+QIACT?`; `AT+QICSGP` with the APN if one
is given, then `AT+QIACT=1`), then a "UDP SERVICE" socket on the local port (`AT+QIOPEN=1,<id>,"UDP SERVICE",
"127.0.0.1",0,<lport>,0`, buffer access mode, its `+QIOPEN: <id>,<err>`). A datagram goes out with
`AT+QISEND=<id>,<len>,"<ip>",<port>`, the `> ` prompt and its raw bytes (`SEND FAIL`, the radio's buffer full, is
tried again after a moment: the datagram did not leave); one comes in after `+QIURC: "recv",<id>` through
`AT+QIRD=<id>` until `+QIRD: 0`. Only datagrams from the meter's address and port are kept (others are counted in
`strangers`). Every failure is a ModemError naming it in plain words (the CLI's exit code for it: cli/exits.py).

A library: no printing, no exit codes. The byte stream is cut into events by ota_tool/at_reader.py."""

from __future__ import annotations

import asyncio
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .at_reader import AtReader, Datagram, Event, Line, Prompt
from .errors import BadInput, ModemError, NoDevice

BAUD = 115200  # a USB modem's AT port ignores the rate; pyserial needs one
CONTEXT = 1  # the PDP context the link uses (BG95/BG96: 1..16)
SOCKET_ID = 0  # the connectID of the link's socket (0..11)
READY_WAIT_S = 10.0  # a modem just plugged in answers AT within this (BG95: RDY after about 5 s)
PROBE_S = 0.5  # `AT` again this often until it is answered
SETTLE_S = 0.2  # after the first answer: a late one to an earlier probe must not pass for the next command's
COMMAND_S = 5.0  # most commands answer within this
CONTEXT_S = 150.0  # AT+QIACT=1 and +QIOPEN answer within 150 s (Quectel's maximum response times)
SEND_S = 10.0  # AT+QISEND's prompt, then SEND OK
REGISTER_WAIT_S = 30.0  # how long a link waits for registration at the least (the CLI's --timeout if longer)
REGISTER_POLL_S = 1.0  # AT+CEREG? this often while searching (a +CEREG URC wakes the wait sooner)
SEND_FAIL_TRIES = 4  # sends of one datagram the modem answers SEND FAIL before the link gives up
SEND_FAIL_WAIT_S = 1.0  # wait before the next (times the try: the radio's queue drains at the link's rate)
RECEIVE_POLL_S = 5.0  # a receive waiting this long reads the socket anyway (a URC lost on the line)
RX_QUEUE_MAX = 64  # datagrams from the meter waiting to be taken; more are dropped (counted in `overflow`)
SEND_MAX = 1460  # bytes per AT+QISEND on a "UDP SERVICE" socket
LOCAL_PORTS = (49152, 65535)  # the dynamic range: the socket's local port when the link names none
WRITE_S = 5.0  # a write to the AT port that takes longer: the modem is stuck
FINALS = ("OK", "ERROR", "SEND OK", "SEND FAIL", "NO CARRIER")
ERROR_PREFIXES = ("+CME ERROR:", "+CMS ERROR:")
URC_PREFIXES = ("+QIURC:", "+QIOPEN:", "+CEREG:", "+QIND:", "+QUSIM:", "+CPIN:", "RDY", "APP RDY", "POWERED DOWN")

# registration states of +CEREG (3GPP TS 27.007)
REGISTERED = (1, 5)  # home, roaming
STAT_SEARCHING = 2
STAT_DENIED = 3
STAT_WORDS = {0: "not searching for a network", 2: "searching", 3: "denied", 4: "state unknown"}

# +CME ERROR codes in plain words: 3GPP TS 27.007 (SIM, network) and Quectel's TCP/IP socket range 550-574
CME_WORDS = {
    3: "operation not allowed", 4: "operation not supported", 10: "no SIM", 11: "the SIM asks for its PIN",
    12: "the SIM asks for its PUK", 13: "SIM failure", 14: "the SIM is busy", 15: "wrong SIM", 30: "no network service",
    50: "bad parameter", 302: "the modem is busy", 304: "no data context (PDN inactive)",
    550: "unknown socket error", 551: "operation blocked", 552: "invalid socket parameter", 553: "out of memory",
    554: "cannot create the socket", 555: "not supported", 556: "cannot bind the socket", 563: "socket id in use",
    566: "the local port is taken or the socket was refused", 567: "the socket was closed", 568: "the modem is busy",
    569: "timed out", 570: "no data context (the network is down)", 572: "operation not allowed",
    573: "the network is unreachable", 574: "the port is busy",
    602: "no radio connection",
}
NO_SIM = 10
SIM_FAILURES = (13, 15)  # SIM failure, wrong SIM
_FIELDS = re.compile(r'"[^"]*"|[^,]+')


def cme_words(result: str) -> str:
    """A final result line in plain words: `+CME ERROR: 10` -> "no SIM (+CME ERROR: 10)"."""
    for p in ERROR_PREFIXES:
        if result.startswith(p):
            code = result[len(p):].strip()
            if code.isdigit():
                return f"{CME_WORDS.get(int(code), 'error')} ({result})"
            return code or result  # verbose mode (AT+CMEE=2) says it in words already
    return result


def fields(line: str) -> list[str]:
    """The comma-separated values after `+NAME: `, quotes kept."""
    return [f.strip() for f in _FIELDS.findall(line.partition(":")[2])]


class AtError(ModemError):
    """A command the modem answered ERROR or +CME ERROR; `code` is the CME number, if any."""

    def __init__(self, command: str, result: str):
        m = re.search(r"(\d+)\s*$", result) if result.startswith(ERROR_PREFIXES) else None
        self.code = int(m.group(1)) if m else None
        self.result = result
        super().__init__(f"the modem refused {command}: {cme_words(result)}")


@dataclass
class Reply:
    lines: list[str] = field(default_factory=list)
    datagrams: list[Datagram] = field(default_factory=list)
    result: str = ""


class _Pending:
    def __init__(self, collect: str) -> None:
        loop = asyncio.get_running_loop()
        self.collect = collect
        self.reply = Reply()
        self.prompt: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[str] = loop.create_future()


class AtPort:
    """One command at a time over a byte stream: `feed` the bytes the modem sent, `write` is how bytes go to it.
    Lines that start with the pending command's `+NAME:` are its answer; URCs (`+QIURC`, `+QIOPEN`, `+CEREG`, `RDY`,
    ...) go to `on_urc` whenever they come, in the middle of an answer too; other lines during a command without
    such a prefix (ATI) are its information lines; any other line is counted in `unsolicited` and dropped."""

    def __init__(self, write: Callable[[bytes], None], name: str, on_urc: Callable[[str], None]):
        self.reader = AtReader()
        self.name = name
        self.on_urc = on_urc
        self.unsolicited = 0
        self._write = write
        self._lock = asyncio.Lock()
        self._pending: _Pending | None = None
        self.gone: ModemError | None = None

    def feed(self, data: bytes) -> None:
        for ev in self.reader.feed(data):
            self._event(ev)

    def lost(self, why: str) -> None:
        """The port went away (unplugged): every wait ends with a ModemError."""
        self.gone = ModemError(f"the modem on {self.name} went away ({why}): is it still plugged in?")
        p = self._pending
        if p is not None:
            for f in (p.prompt, p.done):
                if not f.done():
                    f.set_exception(self.gone)

    def _event(self, ev: Event) -> None:
        p = self._pending
        if isinstance(ev, Prompt):
            if p is not None and not p.prompt.done():
                p.prompt.set_result(None)
            return
        if isinstance(ev, Datagram):
            if p is not None:
                p.reply.datagrams.append(ev)
            else:
                self.unsolicited += 1
            return
        assert isinstance(ev, Line)
        text = ev.text
        if p is not None and p.collect and text.startswith(p.collect):
            p.reply.lines.append(text)
        elif text.startswith(URC_PREFIXES):
            self.on_urc(text)
        elif p is None or p.done.done():
            self.unsolicited += 1
        elif text in FINALS or text.startswith(ERROR_PREFIXES):
            p.done.set_result(text)
        elif p.collect:
            self.unsolicited += 1  # a command whose answer has a prefix: any other line is noise
        else:
            p.reply.lines.append(text)

    def _send_bytes(self, data: bytes) -> None:
        if self.gone is not None:
            raise self.gone
        try:
            self._write(data)
        except (OSError, ValueError, TimeoutError) as e:
            self.lost(str(e) or type(e).__name__)
            assert self.gone is not None
            raise self.gone from e

    async def command(self, cmd: str, timeout: float = COMMAND_S, collect: str | None = None,
                      data: bytes | None = None, check: bool = True) -> Reply:
        """Send `cmd` and wait for its final result (OK, ERROR, +CME ERROR, SEND OK, SEND FAIL); with `data`, wait
        for the `> ` prompt first and send it. `collect`: the prefix of the answer's lines (default `+NAME:` of the
        command; "" for none). `check`: raise AtError for ERROR / +CME ERROR. ModemError when the modem does not
        answer within `timeout` seconds."""
        if collect is None:
            m = re.match(r"AT([+&][A-Z0-9]+)", cmd.upper())
            collect = m.group(1) + ":" if m else ""
        async with self._lock:
            p = self._pending = _Pending(collect)
            try:
                self.reader.expect_prompt = data is not None
                self._send_bytes(cmd.encode() + b"\r")
                if data is not None:
                    done, _ = await asyncio.wait((p.prompt, p.done), timeout=timeout,
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if not done:
                        raise ModemError(f"the modem on {self.name} did not prompt for the data of {cmd} "
                                         f"within {timeout:g} s")
                    if p.prompt.done():
                        p.prompt.result()
                        self._send_bytes(data)
                try:
                    p.reply.result = await asyncio.wait_for(asyncio.shield(p.done), timeout)
                except TimeoutError:
                    raise ModemError(f"the modem on {self.name} did not answer {cmd} within {timeout:g} s") from None
            finally:
                self.reader.expect_prompt = False
                self._pending = None
                for f in (p.prompt, p.done):
                    if not f.done():
                        f.cancel()
                    elif not f.cancelled():
                        f.exception()  # retrieved: a port lost while nobody waited on this one
        if check and p.reply.result not in ("OK", "SEND OK", "SEND FAIL"):
            raise AtError(cmd, p.reply.result)
        return p.reply


class SerialStream:
    """The modem's AT port through pyserial, read by the event loop (no thread): `start(feed, lost)` hands every
    byte that arrives to `feed`, and a port that fails to `lost`."""

    def __init__(self, device: str):
        import serial

        self.device = device
        try:
            self.ser = serial.Serial(device, BAUD, timeout=0, write_timeout=WRITE_S, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as e:
            raise NoDevice(f"no modem at {device}: {e}") from e
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, feed: Callable[[bytes], None], lost: Callable[[str], None]) -> None:
        fd = self.ser.fileno()

        def readable() -> None:
            try:
                data = os.read(fd, 4096)
            except OSError as e:
                data, why = b"", e.strerror or str(e)
            else:
                why = "end of file"
            if data:
                feed(data)
            else:
                self._stop()
                lost(why)

        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, readable)

    def write(self, data: bytes) -> None:
        self.ser.write(data)

    def _stop(self) -> None:
        if self._loop is not None and self.ser.is_open:
            self._loop.remove_reader(self.ser.fileno())
            self._loop = None

    def close(self) -> None:
        self._stop()
        self.ser.close()


class ModemDatagrams:
    """A Datagrams endpoint (ota_tool/smp_udp.py) through the modem at `device`: datagrams to and from the meter
    at `to`:`port`, from the modem's local port `local_port` (None: one from the dynamic range). `apn`: the PDP
    context's access point, set when the modem has no active context. `register_wait`: seconds to wait for
    registration. Counters: `strangers` (datagrams from anyone else, dropped), `overflow` (datagrams dropped for a
    full queue), `send_fails` (SEND FAIL answers)."""

    def __init__(self, device: str, to: str, port: int, local_port: int | None = None, apn: str | None = None,
                 register_wait: float = REGISTER_WAIT_S, ready_wait: float = READY_WAIT_S):
        self.device = device
        self.to = to
        self.port = port
        self.local_port = local_port if local_port is not None else random.randint(*LOCAL_PORTS)
        self.apn = apn
        self.register_wait = register_wait
        self.ready_wait = ready_wait
        self.stat: int | None = None  # the last +CEREG stat seen
        self.strangers = 0
        self.overflow = 0
        self.send_fails = 0
        self._stream: SerialStream | None = None
        self._at: AtPort | None = None
        self._rx: asyncio.Queue[bytes] = asyncio.Queue()
        self._recv = asyncio.Event()  # +QIURC "recv": the socket has data
        self._stat_changed = asyncio.Event()
        self._opened: asyncio.Future[int] | None = None
        self._socket_open = False
        self._draining: asyncio.Task[None] | None = None
        self._last_drain = 0.0  # loop time the last AT+QIRD drain started

    @property
    def at(self) -> AtPort:
        if self._at is None:
            raise ModemError(f"the modem link on {self.device} is not open")
        return self._at

    # -- URCs ------------------------------------------------------------------------------------------------------
    def _urc(self, line: str) -> None:
        f = fields(line)
        if line.startswith("+QIURC:") and f and f[0] == '"recv"' and f[1:2] == [str(SOCKET_ID)]:
            self._recv.set()
            self._start_drain()
        elif line.startswith("+QIURC:") and f and f[0] in ('"closed"', '"pdpdeact"'):
            self._socket_open = False
        elif line.startswith("+QIOPEN:") and len(f) == 2 and f[0] == str(SOCKET_ID):
            if self._opened is not None and not self._opened.done() and f[1].isdigit():
                self._opened.set_result(int(f[1]))
        elif line.startswith("+CEREG:") and f and (len(f) == 1 or f[1].startswith('"')) and f[0].isdigit():
            self.stat = int(f[0])  # the URC form: +CEREG: <stat>[,"<tac>",...]
            self._stat_changed.set()

    def _lost(self, why: str) -> None:
        self.at.lost(why)
        self._rx.put_nowait(b"")  # wakes a receive that waits: it sees the port gone

    # -- opening ---------------------------------------------------------------------------------------------------
    async def open(self, timeout_s: float) -> None:
        """Everything up to an open socket; ModemError (NoDevice for a device that cannot be opened) naming what
        failed. `timeout_s` is not used: each step has its own time (the modem's maximum response times)."""
        self._stream = SerialStream(self.device)
        self._at = AtPort(self._stream.write, self.device, self._urc)
        self._stream.start(self._at.feed, self._lost)
        try:
            await self._wait_ready()
            await self.at.command("ATE0")
            await self.at.command("AT+CMEE=1")
            await self._check_sim()
            await self._wait_registered()
            await self._activate_context()
            await self._open_socket()
        except BaseException:
            await self.close()
            raise

    async def _wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + self.ready_wait
        while True:
            try:
                await self.at.command("AT", timeout=min(PROBE_S, max(0.05, end - loop.time())), check=False)
                await asyncio.sleep(SETTLE_S)  # a late answer to an earlier probe arrives now, when nobody waits
                return
            except ModemError:
                if self.at.gone is not None:
                    raise self.at.gone from None
                if loop.time() >= end:
                    raise ModemError(f"modem not answering on {self.device} (no answer to AT in "
                                     f"{self.ready_wait:g} s): is it the modem's AT port? (often the third of its "
                                     "ttyUSB ports)") from None

    async def _check_sim(self) -> None:
        try:
            r = await self.at.command("AT+CPIN?")
        except AtError as e:
            if e.code == NO_SIM:
                raise ModemError(f"no SIM in the modem on {self.device} ({e.result}): put one in") from None
            if e.code in SIM_FAILURES:
                raise ModemError(f"the modem's SIM does not work: {cme_words(e.result)}") from None
            raise
        state = fields(r.lines[-1])[0] if r.lines else ""
        if state != "READY":
            raise ModemError(f"the modem's SIM is locked ({state or 'no answer'}): unlock it with AT+CPIN=<PIN> "
                             "or use a SIM without a PIN")

    async def _query_stat(self) -> int:
        r = await self.at.command("AT+CEREG?")
        for line in r.lines:
            f = fields(line)
            if len(f) >= 2 and f[1].isdigit():
                self.stat = int(f[1])
        return self.stat if self.stat is not None else 4

    async def _wait_registered(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await self.at.command("AT+CEREG=1")
        while True:
            self._stat_changed.clear()
            stat = await self._query_stat()
            if stat in REGISTERED:
                return
            if stat == STAT_DENIED:
                raise ModemError("modem registration denied by the network (+CEREG stat 3): the SIM is not "
                                 "allowed on this network or APN; ask the operator, or try another SIM")
            waited = loop.time() - start
            if waited >= self.register_wait:
                raise ModemError(f"modem not registered: {STAT_WORDS.get(stat, f'stat {stat}')} for "
                                 f"{waited:.0f} s; check the antenna and coverage, or wait and try again "
                                 "(raise --timeout)")
            try:
                await asyncio.wait_for(self._stat_changed.wait(),
                                       min(REGISTER_POLL_S, self.register_wait - waited))
            except TimeoutError:
                pass

    async def _activate_context(self) -> None:
        r = await self.at.command("AT+QIACT?")
        if any(fields(x)[:1] == [str(CONTEXT)] for x in r.lines):
            return
        if self.apn is not None:
            await self.at.command(f'AT+QICSGP={CONTEXT},1,"{self.apn}","","",0')
        try:
            await self.at.command(f"AT+QIACT={CONTEXT}", timeout=CONTEXT_S)
        except AtError as e:
            hint = "" if self.apn else " (give the operator's APN: &apn=NAME)"
            raise ModemError(f"the modem could not open a data connection: {cme_words(e.result)}{hint}") from None

    async def _open_socket(self) -> None:
        cmd = f'AT+QIOPEN={CONTEXT},{SOCKET_ID},"UDP SERVICE","127.0.0.1",0,{self.local_port},0'
        for attempt in range(2):
            self._opened = asyncio.get_running_loop().create_future()
            try:
                await self.at.command(cmd, timeout=CONTEXT_S, collect="")
            except AtError as e:
                if e.code == 563 and attempt == 0:  # left open by an earlier run that ended without closing
                    await self.at.command(f"AT+QICLOSE={SOCKET_ID}", timeout=SEND_S, check=False)
                    continue
                raise ModemError(f"the modem could not open its UDP socket: {cme_words(e.result)}") from None
            try:
                err = await asyncio.wait_for(self._opened, CONTEXT_S)
            except TimeoutError:
                raise ModemError(f"the modem did not open its UDP socket within {CONTEXT_S:g} s") from None
            if err == 563 and attempt == 0:
                await self.at.command(f"AT+QICLOSE={SOCKET_ID}", timeout=SEND_S, check=False)
                continue
            if err != 0:
                raise ModemError(f"the modem could not open its UDP socket on local port {self.local_port}: "
                                 f"{CME_WORDS.get(err, 'error')} (+QIOPEN error {err})")
            self._socket_open = True
            self._last_drain = asyncio.get_running_loop().time()
            return

    # -- datagrams -------------------------------------------------------------------------------------------------
    async def send(self, data: bytes) -> None:
        """One datagram to the meter; ModemError when the modem cannot send it."""
        if not 0 < len(data) <= SEND_MAX:
            raise BadInput(f"a {len(data)} B datagram: the modem sends 1 to {SEND_MAX} B at a time")
        for attempt in range(1, SEND_FAIL_TRIES + 1):
            r = await self.at.command(f'AT+QISEND={SOCKET_ID},{len(data)},"{self.to}",{self.port}',
                                      timeout=SEND_S, data=bytes(data))
            if r.result == "SEND OK":
                return
            self.send_fails += 1
            if attempt < SEND_FAIL_TRIES:
                await asyncio.sleep(SEND_FAIL_WAIT_S * attempt)
        raise ModemError(f"the modem could not send (SEND FAIL {SEND_FAIL_TRIES} times): its radio is busy or "
                         "has lost the network; check the signal and try again")

    def _start_drain(self) -> None:
        if self._draining is None or self._draining.done():
            self._last_drain = asyncio.get_running_loop().time()
            self._draining = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        """AT+QIRD until the socket is empty; the meter's datagrams to the queue."""
        try:
            while self._socket_open and self.at.gone is None:
                self._recv.clear()
                r = await self.at.command(f"AT+QIRD={SOCKET_ID}", timeout=SEND_S, collect="+QIRD:")
                if not r.datagrams:
                    return
                for d in r.datagrams:
                    if d.ip != self.to or d.port != self.port:
                        self.strangers += 1
                    elif self._rx.qsize() >= RX_QUEUE_MAX:
                        self.overflow += 1
                    else:
                        self._rx.put_nowait(d.data)
        except ModemError:
            pass  # the receive that waits sees the port gone, or reads again at its next poll

    async def receive(self) -> bytes:
        """The next datagram from the meter."""
        while True:
            if self.at.gone is not None:
                raise self.at.gone
            if not self._socket_open:
                raise ModemError("the modem closed its UDP socket (the network dropped the data connection)")
            # the transport's waits are shorter than the poll: count from the last read, not from this wait
            if asyncio.get_running_loop().time() - self._last_drain >= RECEIVE_POLL_S:
                self._start_drain()
            try:
                data = await asyncio.wait_for(self._rx.get(), RECEIVE_POLL_S)
            except TimeoutError:
                self._start_drain()
                continue
            if data:
                return data

    def drop_waiting(self) -> int:
        n = 0
        while not self._rx.empty():
            self._rx.get_nowait()
            n += 1
        return n

    async def close(self) -> None:
        if self._draining is not None:
            self._draining.cancel()
        if self._socket_open and self._at is not None and self._at.gone is None:
            try:
                await self._at.command(f"AT+QICLOSE={SOCKET_ID}", timeout=SEND_S, check=False)
            except ModemError:
                pass  # closing anyway
        self._socket_open = False
        if self._stream is not None:
            self._stream.close()
            self._stream = None
