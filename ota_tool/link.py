"""A meter's SMP link, named by a link URL (ota_tool/link_url.py): a serial port through smpclient's serial
transport, or SMP over UDP with retransmission (ota_tool/smp_udp.py) through smpclient's client, its datagrams on a
UDP socket of this computer or through a USB modem (ota_tool/modem_link.py); connect, request, and errors turned
into OtaError. A serial link also keeps the text the meter printed between SMP frames (its
console: log lines, a traceback)."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable
from typing import Any

from smp import header as smphdr
from smp.exceptions import SMPException
from smpclient import SMPClient
from smpclient.exceptions import SMPBadSequence
from smpclient.generics import error, error_v1, error_v2, success
from smpclient.requests.os_management import MCUMgrParametersRead
from smpclient.transport.serial import SMPSerialTransport

from . import link_url
from .errors import EACCESSDENIED, BadInput, DeviceRefused, DeviceTimeout, NoDevice, NoSmpReply, NotAuthorised
from .link_url import BAUD_RATES, MAX_TIMEOUT
from .modem_link import REGISTER_WAIT_S, ModemDatagrams
from .smp_udp import DATAGRAM_MAX, RTO_FLOOR, RTO_INITIAL, FrameId, Rto, SmpUdpTransport

DEFAULT_TIMEOUT = 5.0
# what a frame lost or damaged on the line looks like to smpclient: no answer, an answer to an earlier request, or
# bytes that do not decode (bad delimiter, CRC, CBOR)
LINE_ERRORS = (TimeoutError, SMPBadSequence, SMPException, ValueError)
CONNECT_TRIES = 3  # connects whose first answer was lost or damaged on the line
READ_RETRIES = 3  # a read (or an echo) changes nothing: sent again this often when it or its answer is lost
BUSY_RETRIES = 5  # a read the meter answers "busy" (its heap is in use) is asked again this often
BUSY_WAIT_S = 0.5
RETRY_WAIT_CAP_S = 60.0  # a request sent again on a serial link waits twice as long each time, up to this
CONSOLE_KEPT = 16384  # bytes of console text a link keeps (the newest)
REPL_SIGNS = (b">>> ", b"raw REPL")  # the meter's console at MicroPython's prompt: its app is stopped, no retry helps
CHUNK_WAIT = 2.0  # a 2 KB chunk is answered in about 0.2 s at 115200 baud: longer means it was lost


def check_timeout(timeout: float) -> float:
    if not (isinstance(timeout, int | float) and math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
        raise BadInput(f"timeout {timeout!r}: give seconds above 0 and at most {MAX_TIMEOUT:g}")
    return float(timeout)


def check_baud(baud: int) -> int:
    if baud not in BAUD_RATES:
        raise BadInput(f"baud rate {baud!r} is not a serial line rate; use one of "
                       + ", ".join(map(str, BAUD_RATES)))
    return baud


def available_ports() -> list[str]:
    """The serial ports this computer has (pyserial's list), for a message naming them."""
    try:
        from serial.tools import list_ports

        return sorted(p.device for p in list_ports.comports())
    except Exception:  # pyserial's enumeration is best effort on some systems
        return []


def check_port(port: str) -> str:
    """A port named by a path must exist; fail at once naming the ports that do (a meter-emu port is
    STATE/console)."""
    if not port:
        raise BadInput("--port is empty")
    if (port.startswith("/") or os.sep in port) and not os.path.exists(port):
        ports = available_ports()
        raise NoDevice(f"no port {port}; " + (f"this computer has {', '.join(ports)}" if ports else
                                              "this computer lists no serial ports")
                       + " (an emulated meter's port is STATE/console, while `meter-emu run` runs)")
    return port


class _Client(SMPClient):
    """smpclient's client, keeping the meter's MCUmgr parameters that its connect reads (it keeps only buf_size):
    the upload's window needs buf_count, and asking again costs a round trip."""

    params: Any = None

    async def request(self, request: Any, timeout_s: float | None = None) -> Any:
        rsp = await super().request(request, timeout_s)
        if isinstance(request, MCUMgrParametersRead) and success(rsp):
            self.params = rsp
        return rsp


class _SerialTransport(SMPSerialTransport):
    """smpclient's serial transport, with a reply to an earlier request dropped instead of taken for this one's:
    a request sent again after a timeout (a new sequence number) must not fail on the late answer to the try before
    it (smpclient raised SMPBadSequence, which ended the new try at once: each late answer then ended the next try,
    and a slow meter never got one through). The caller's timeout ends the wait."""

    stale = 0

    async def send_and_receive(self, data: bytes) -> bytes:  # type: ignore[misc]  # smpclient marks it final
        want = FrameId.of(data)
        await self.send(data)
        while True:
            frame = await self.receive()
            if want is None or FrameId.of(frame) == want.reply():
                return frame
            self.stale += 1


class MeterLink:
    """`port` is a link URL: a serial device path, udp://HOST[:PORT] or modem:///DEVICE?to=ADDR. `timeout`: how
    long one request waits for its answer (on UDP, retransmissions of a request that is safe to repeat happen
    inside it; a modem waits for registration this long, REGISTER_WAIT_S at the least). `datagram_max`: on UDP,
    the largest SMP frame one datagram carries."""

    def __init__(self, port: str, baud: int = 115200, timeout: float = DEFAULT_TIMEOUT,
                 note: Callable[[str], None] | None = None, datagram_max: int = DATAGRAM_MAX):
        self.url = link_url.parse(port)
        self.port = check_port(port) if self.url.kind == link_url.SERIAL else str(self.url)
        self.baud = check_baud(baud)
        self.timeout = check_timeout(timeout)
        self.note = note  # told of what the link does on its own (a retry after "busy")
        self.datagram_max = datagram_max
        self.console = bytearray()
        self.console_total = 0  # bytes of console text taken since the link opened (self.console keeps the newest)
        self._client: _Client | None = None
        self._transport: Any = None
        self._params: tuple[int, int] | None = None
        # the upload's retransmission timer: adaptive on UDP; on a serial line a chunk's answer takes a known time
        self.rto = (Rto(min(RTO_INITIAL, self.timeout), min(RTO_FLOOR, self.timeout)) if self.udp else
                    Rto(min(self.timeout, CHUNK_WAIT), min(self.timeout, CHUNK_WAIT), max(self.timeout, CHUNK_WAIT)))

    @property
    def udp(self) -> bool:
        """SMP over UDP: on this computer's socket or through a modem."""
        return self.url.kind in (link_url.UDP, link_url.MODEM)

    async def __aenter__(self) -> MeterLink:
        if self.udp:
            return await self._open_udp()
        # smpclient's connect opens the port and reads the meter's buffer parameters: an answer lost or damaged on
        # the line there is tried again, as any read's; only the port itself failing is "no device"
        for attempt in range(CONNECT_TRIES):
            self._transport = _SerialTransport(baudrate=self.baud)
            self._client = _Client(self._transport, self.port, timeout_s=self.timeout)
            try:
                await self._client.connect()
                return self
            except LINE_ERRORS as e:
                self._take_console()
                try:
                    await self._client.disconnect()
                except Exception:  # the port may be half open: nothing more to close
                    pass
                if attempt == CONNECT_TRIES - 1:
                    raise DeviceTimeout(f"{self.port}: no valid answer to the first request "
                                        f"({type(e).__name__}: {e})") from e
                await asyncio.sleep(0.1)
            except Exception as e:  # pyserial raises SerialException for a missing or busy port
                raise NoDevice(f"cannot open {self.port}: {e}") from e
        return self

    async def _open_udp(self) -> MeterLink:
        # one timer for the link; `?from=` binds the host's own port (the modem socket's, on a modem link)
        endpoint = None
        if self.url.kind == link_url.MODEM:
            endpoint = ModemDatagrams(self.url.path, self.url.host, self.url.port, self.url.local_port,
                                      self.url.params.get("apn"), max(self.timeout, REGISTER_WAIT_S))
        self._transport = SmpUdpTransport(self.url.port, self.datagram_max, self.rto, self.url.local_port, endpoint)
        self._client = _Client(self._transport, self.url.host, timeout_s=self.timeout)
        try:
            await self._client.connect()
        except OSError as e:  # a host name that does not resolve, no route to it
            raise NoDevice(f"cannot reach {self.port}: {e.strerror or e}") from e
        except TimeoutError as e:
            raise NoDevice(f"cannot open a UDP socket to {self.port} (timed out)") from e
        return self

    async def params(self) -> tuple[int, int]:
        """The meter's SMP buffer size and count (os group's MCUmgr parameters), read once per link."""
        if self._params is None:
            assert self._client is not None
            rsp = self._client.params or await self.request(MCUMgrParametersRead(), "mcumgr parameters",
                                                                  retries=READ_RETRIES)
            self._params = (int(rsp.buf_size), max(1, int(rsp.buf_count or 1)))
        return self._params

    async def send(self, data: bytes) -> None:
        """One frame out (the upload's window uses the transport directly)."""
        await self._transport.send(data)

    async def receive(self) -> bytes:
        return await self._transport.receive()

    def decode(self, req: Any, frame: bytes) -> Any:
        """A reply frame to `req` as its response or error type (smpclient's decoding); ValueError if neither."""
        from pydantic import ValidationError

        for kind in (req._Response, req._ErrorV1, req._ErrorV2):
            try:
                return kind.loads(frame)
            except ValidationError:
                continue
        raise ValueError(f"a reply to {type(req).__name__} that decodes as none of its types")

    async def __aexit__(self, *exc: Any) -> None:
        self._take_console()
        if self._client is not None:
            await self._client.disconnect()

    def _take_console(self) -> None:
        buf = getattr(self._transport, "_serial_buffer", None)  # smpclient keeps non-SMP bytes here
        if buf:
            self.console += buf
            self.console_total += len(buf)
            buf.clear()
            del self.console[:-CONSOLE_KEPT]

    def console_lines(self, n: int = 20) -> list[str]:
        """The last `n` lines the meter printed between SMP frames on this link."""
        self._take_console()
        text = self.console.decode("utf-8", "replace").replace("\r", "")
        return [ln for ln in text.split("\n") if ln.strip()][-n:]

    async def request(self, req: Any, what: str, retries: int = 0, wait_s: float | None = None) -> Any:
        """Send one request; `retries` > 0 only for requests that are safe to repeat (reads, idempotent writes),
        so a frame lost or corrupted on the line is sent again, and a "busy" answer is asked again after a
        moment (the note callback is told). `wait_s`: how long the first try waits (default: the link's timeout)."""
        assert self._client is not None
        busy = 0
        attempt = 0
        sent_again = 0
        if self.udp:  # the transport sends again what is safe to repeat, within the timeout: a read always is
            self._transport.resend = retries > 0 or req.header.op == smphdr.OP.READ
            sent_again = self._transport.retransmissions
        while True:
            self._take_console()
            taken = self.console_total
            try:
                # each try waits twice as long as the last (as the UDP link's retransmission timer does): a meter
                # whose work on the request outlasts the timeout (a slow or loaded one) answers an earlier try late,
                # and a try that waits no longer than the one before would never see an answer
                wait = wait_s if attempt == 0 or self.udp else min((wait_s or self.timeout) * 2 ** attempt,
                                                                    RETRY_WAIT_CAP_S)
                rsp = await self._client.request(req, wait)
            except LINE_ERRORS as e:
                self._take_console()
                fresh = min(self.console_total - taken, 200)  # what the meter printed during this try
                at_prompt = fresh > 0 and any(sign in self.console[-fresh:] for sign in REPL_SIGNS)
                # over UDP the transport has resent within the timeout already; a request safe to repeat still
                # gets its retries, each a whole timeout: a radio reconnecting after idle takes up to 15 s on NB-IoT
                if attempt >= retries or at_prompt:
                    if self.console:
                        tail = self.console[-80:].decode("utf-8", "replace").strip().splitlines()
                        raise NoSmpReply(f"{what}: {self.port} answers, but no SMP reply within {self.timeout:g} s "
                                         f"(it printed {tail[-1][:60]!r} …): a REPL or a stopped app? "
                                         f"`mpremote connect {self.port} reset`") from e
                    tries = self._transport.retransmissions - sent_again + 1 if self.udp else retries + 1
                    raise DeviceTimeout(f"{what}: no valid answer from {self.port} within {self.timeout:g} s"
                                        + (f" ({tries} tries)" if tries > 1 else "")) from e
                attempt += 1
                await asyncio.sleep(0.1)
                continue
            if success(rsp):
                return rsp
            err = _refusal(rsp, what)
            if isinstance(err, DeviceRefused) and err.busy and retries and busy < BUSY_RETRIES:
                busy += 1
                if self.note is not None:
                    self.note(f"{what}: the meter is busy, asking again ({busy}/{BUSY_RETRIES})")
                await asyncio.sleep(BUSY_WAIT_S * busy)
                continue
            raise err


def _refusal(rsp: Any, what: str) -> Exception:
    if error(rsp):
        if error_v2(rsp):
            return DeviceRefused(what, int(rsp.err.rc), int(rsp.err.group))
        if error_v1(rsp):
            if int(rsp.rc) == EACCESSDENIED:
                return NotAuthorised(f"{what}: the meter refused (not authorised, rc {EACCESSDENIED})")
            return DeviceRefused(what, int(rsp.rc))
    return DeviceRefused(what, 1)


def run(coro: Any) -> Any:
    return asyncio.run(coro)
