"""SMP over UDP with retransmission: one raw SMP frame per datagram (STANDARDS.md), an RTT estimate with an
adaptive retransmission timeout (RFC 6298: floor, cap, doubling on every retry, Karn's rule), replies matched to
their request by sequence number, group and command (a stale or stray reply is counted and dropped), and requests
sent again only when the caller says they are safe to repeat.

smpclient's SMPUDPTransport is stop-and-wait without retransmission: its receive() hands back whatever datagram
comes next (a late reply to an earlier request leaves the client one sequence number behind for good) and its
send() splits a large frame over several datagrams (a meter reads one request per datagram). This transport replaces
it behind the same SMPTransport interface the serial link uses, so smpclient's SMPClient drives it unchanged. The
datagrams themselves come from a `Datagrams` endpoint: a UDP socket here (`UdpSocket`, smpclient's UDP client), or
a USB modem's socket (ota_tool/modem_link.py); the SMP logic above them is one. `local_port` binds the host's own
port: a BC660K-style meter sends only to the head-end address:port its socket was opened with."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from smp import header as smphdr
from smpclient.transport import SMPTransport
from smpclient.transport._udp_client import Addr, UDPClient

from .errors import BadInput
from .link_url import SMP_UDP_PORT

# RFC 6298 (TCP's retransmission timer), scaled for a radio link whose round trip is 0.5-10 s: the first request
# waits RTO_INITIAL before it is sent again; then srtt + 4 * rttvar, never below the floor nor above the cap
RTO_INITIAL = 3.0
RTO_FLOOR = 0.5
RTO_CAP = 60.0
RTO_GRANULARITY = 0.01  # G: the clock's granularity
RTT_ALPHA = 1 / 8
RTT_BETA = 1 / 4
DATAGRAM_MAX = 512  # bytes of SMP frame per datagram on the BC660K path (its AT send takes 512 B of payload)
DATAGRAM_MIN = 64  # below this no upload chunk fits beside its request's fields
RESPONSE_OPS = (1, 3)  # SMP read response, write response
CLOSE_TURNS = 100  # turns of the event loop a closing socket is given (asyncio closes it on the next one)


class Rto:
    """The retransmission timeout of one link (RFC 6298 section 2). `sample(rtt)` with the round trip of a request
    answered without being sent again (Karn's rule: a retransmitted request's reply cannot be told from the
    first); `backoff()` doubles it after a timeout."""

    def __init__(self, initial: float = RTO_INITIAL, floor: float = RTO_FLOOR, cap: float = RTO_CAP):
        if not (0 < floor <= cap and floor <= initial):
            raise BadInput(
                f"retransmission timer floor {floor:g} s, first {initial:g} s, cap {cap:g} s: "
                "the floor must be above 0 and the cap at least the floor"
            )
        self.floor = floor
        self.cap = cap
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.rto = self._clamp(initial)

    def _clamp(self, v: float) -> float:
        return min(self.cap, max(self.floor, v))

    def sample(self, rtt: float) -> None:
        rtt = max(0.0, rtt)
        if self.srtt is None:
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            self.rttvar = (1 - RTT_BETA) * self.rttvar + RTT_BETA * abs(self.srtt - rtt)
            self.srtt = (1 - RTT_ALPHA) * self.srtt + RTT_ALPHA * rtt
        self.rto = self._clamp(self.srtt + max(RTO_GRANULARITY, 4 * self.rttvar))

    def backoff(self) -> None:
        self.rto = self._clamp(self.rto * 2)


@dataclass(frozen=True)
class FrameId:
    """What ties a reply to its request: the reply's op is the request's plus one, same group, sequence, command."""

    op: int
    group: int
    sequence: int
    command: int

    @classmethod
    def of(cls, frame: bytes) -> FrameId | None:
        if len(frame) < smphdr.Header.SIZE:
            return None
        return cls(frame[0] & 7, (frame[4] << 8) | frame[5], frame[6], frame[7])

    def reply(self) -> FrameId:
        return FrameId(self.op + 1, self.group, self.sequence, self.command)


def frame_length(frame: bytes) -> int:
    """The length of the SMP frame whose header starts `frame` (header included)."""
    return ((frame[2] << 8) | frame[3]) + smphdr.Header.SIZE


def whole(frame: bytes) -> bool:
    """A datagram that is exactly one SMP frame: its header's length matches what follows."""
    return len(frame) >= smphdr.Header.SIZE and frame_length(frame) == len(frame)


def starts(frame: bytes) -> bool:
    """A datagram that starts a reply longer than itself: a response header (reserved bits clear, op read or
    write response) whose length runs past the datagram's end."""
    return (len(frame) >= smphdr.Header.SIZE and frame[0] & 0xE0 == 0 and frame[0] & 7 in RESPONSE_OPS
            and frame_length(frame) > len(frame))


class Datagrams(Protocol):
    """One datagram endpoint towards one meter: what SMP over UDP needs of a UDP socket or of a modem's socket.
    `receive` gives the next datagram from the meter (from no one else); `drop_waiting` forgets those that arrived
    while nobody waited and says how many."""

    async def open(self, timeout_s: float) -> None: ...

    async def send(self, data: bytes) -> None: ...

    async def receive(self) -> bytes: ...

    def drop_waiting(self) -> int: ...

    async def close(self) -> None: ...


class UdpSocket:
    """A Datagrams endpoint on this computer's own UDP socket, connected to (host, port): smpclient's UDP client.
    Its protocol queues every ICMP error (a port unreachable for each datagram sent to a meter that is not
    listening) and nobody reads them: they are taken off at each send and receive, counted in `refusals`, the
    last one kept in `last_error`."""

    def __init__(self, host: str, port: int = SMP_UDP_PORT, local_port: int | None = None):
        self.host = host
        self.port = port
        self.local_port = local_port
        self.refusals = 0
        self.last_error: Exception | None = None
        self._client = UDPClient()

    async def open(self, timeout_s: float) -> None:
        local = None
        if self.local_port is not None:  # a head-end at a fixed address: the meter's module answers only that
            local = Addr(host="::" if ":" in self.host else "0.0.0.0", port=self.local_port)
        await asyncio.wait_for(self._client.connect(Addr(host=self.host, port=self.port), local), timeout_s)

    def _take_errors(self) -> None:
        q = self._client._protocol.error_queue
        while not q.empty():
            self.last_error = q.get_nowait()
            self.refusals += 1

    async def send(self, data: bytes) -> None:
        self._take_errors()
        self._client.send(bytes(data))

    async def receive(self) -> bytes:
        frame = await self._client.receive()
        self._take_errors()
        return frame

    def drop_waiting(self) -> int:
        q = self._client._protocol.receive_queue
        n = 0
        while not q.empty():
            q.get_nowait()
            n += 1
        self._take_errors()
        return n

    async def close(self) -> None:
        """Close the socket, and return only once it is closed: asyncio closes a datagram transport's socket on a
        later turn of its loop, and a link opened at once from the same `from=` port (ota push reconnecting after
        the meter's reset) would otherwise find the port still taken (EADDRINUSE)."""
        transport = getattr(self._client, "_transport", None)
        if transport is not None:
            sock = transport.get_extra_info("socket")
            self._client.disconnect()
            for _ in range(CLOSE_TURNS):
                if sock is None or sock.fileno() == -1:
                    break
                await asyncio.sleep(0)
            self._take_errors()


class SmpUdpTransport(SMPTransport):
    """An SMPTransport for one meter at (host, port), over a UDP socket or the `endpoint` given (a modem's).
    `resend`: whether send_and_receive may send its request again (the link sets it per request: only for requests
    that are safe to repeat). Counters: `retransmissions`, `stale` (replies to no waiting request, dropped), `runts`
    (datagrams that are no whole SMP frame, dropped)."""

    def __init__(
        self,
        port: int = SMP_UDP_PORT,
        datagram_max: int = DATAGRAM_MAX,
        rto: Rto | None = None,
        local_port: int | None = None,
        endpoint: Datagrams | None = None,
    ):
        if not DATAGRAM_MIN <= datagram_max <= 65507:
            raise BadInput(f"datagram size {datagram_max}: give {DATAGRAM_MIN} to 65507 bytes")
        self.port = port
        self.local_port = local_port  # the host's own UDP port; None: any free one
        self.datagram_max = datagram_max
        self.rto = rto or Rto()
        self.endpoint = endpoint  # None until connect makes a UDP socket
        self.resend = True
        self.retransmissions = 0
        self.stale = 0
        self.runts = 0

    async def connect(self, address: str, timeout_s: float, port: int | None = None) -> None:
        if self.endpoint is None:
            self.endpoint = UdpSocket(address, port or self.port, self.local_port)
        await self.endpoint.open(timeout_s)

    async def disconnect(self) -> None:
        if self.endpoint is not None:
            await self.endpoint.close()

    @property
    def max_unencoded_size(self) -> int:
        """The largest frame sent: the datagram cap, or the meter's buf_size when that is smaller."""
        buf = self._smp_server_transport_buffer_size
        return min(self.datagram_max, buf) if buf else self.datagram_max

    @property
    def mtu(self) -> int:
        return self.datagram_max

    async def send(self, data: bytes) -> None:
        if len(data) > self.max_unencoded_size:
            raise BadInput(f"a {len(data)} B request does not fit this link's {self.max_unencoded_size} B datagrams")
        assert self.endpoint is not None
        await self.endpoint.send(bytes(data))

    async def receive(self) -> bytes:
        """The next whole SMP frame: one datagram, or a reply the meter sent over several (the first starts with
        the header, whose length counts the rest: smpclient's UDP transport and SMP over BLE read it so). A
        datagram that neither is, starts nor continues a frame is counted in `runts` and dropped, and so is a
        frame left unfinished by a lost or reordered datagram (its request is sent again)."""
        assert self.endpoint is not None
        partial: bytearray | None = None
        need = 0
        while True:
            d = await self.endpoint.receive()
            if whole(d):
                if partial is not None:
                    self.runts += 1
                return d
            if starts(d):
                if partial is not None:
                    self.runts += 1
                partial, need = bytearray(d), frame_length(d)
            elif partial is not None and len(partial) + len(d) <= need:
                partial += d
                if len(partial) == need:
                    return bytes(partial)
            else:
                self.runts += 1
                partial = None

    def drop_waiting(self) -> None:
        """Forget datagrams that arrived while nobody waited (late replies, duplicates)."""
        if self.endpoint is not None:
            self.stale += self.endpoint.drop_waiting()

    async def send_and_receive(self, data: bytes) -> bytes:
        """Send one request and return its reply; replies to anything else are dropped. With `resend`, the request
        goes again each time the retransmission timer runs out (the timer doubles); the caller's own deadline
        ends the wait."""
        want = FrameId.of(data)
        if want is None:
            raise BadInput("an SMP request is at least its 8-byte header")
        self.drop_waiting()
        expect = want.reply()
        sent = time.monotonic()
        resent = False
        await self.send(data)
        while True:
            wait = self.rto.rto - (time.monotonic() - sent)
            try:
                frame = await asyncio.wait_for(self.receive(), max(wait, 0.001))
            except TimeoutError:
                if self.resend:
                    self.rto.backoff()
                    self.retransmissions += 1
                    resent = True
                    sent = time.monotonic()
                    await self.send(data)
                else:
                    sent = time.monotonic()  # a request sent once waits for the caller's deadline
                continue
            if FrameId.of(frame) != expect:
                self.stale += 1
                continue
            if not resent:
                self.rto.sample(time.monotonic() - sent)
            return frame
