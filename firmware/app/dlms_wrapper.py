# DLMS/COSEM through the NB-IoT module: the IEC 62056-47 UDP wrapper on the meter's port 4059, to its head-end
# (docs/dlms.md "The wrapper"). app/network_link.py awaits the socket's datagrams with nothing of DLMS on the heap; at
# one it brings in this module (and app/dlms_port.py, whose Port this builds on: the layers, the associations'
# checks, the heap given away), and serve_wrapper() serves the socket until no association holds it and it has been
# quiet for 5 s; then the DLMS code, this module included, leaves the heap, as after an optical session.
import asyncio
import time

from micropython import const

from app.dlms_port import SERVER, Port

WRAPPER_PORT = const(4059)  # the meter's UDP port for the wrapper (IANA's DLMS/COSEM port)
_WRAPPER_HEAD = const(8)  # version, source wPort, destination wPort, length: four 16-bit big-endian numbers
_INACTIVITY_MS = const(120000)  # an association over the wrapper with no request this long ends (HDLC's default too)


async def serve_wrapper(ctx, metering, supply, sock, req):
    """Serve the wrapper on `sock` (an app.modem Socket on port 4059) from its first datagram `req` until no
    association holds it; then the DLMS code, this module included, leaves the heap."""
    if not is_wrapper(req):  # a datagram that is no wrapper for this server loads nothing
        if not getattr(ctx, "dlms_sessions", 0):
            import loader

            loader.forget("app.dlms_wrapper")
            loader.forget("app.dlms_port")
        return
    port = WrapperPort(ctx, metering, supply, sock)
    try:
        if await port.start():
            await port.answer(req)
            await port.session()
    finally:
        port.close()


def is_wrapper(req):
    """Whether datagram `req` is a wrapper datagram for this server: version 1, destination wPort 1, the length its
    APDU has, and an APDU."""
    n = len(req)
    return (n > _WRAPPER_HEAD and not req[0] and req[1] == 1 and (req[4] << 8 | req[5]) == SERVER
            and (req[6] << 8 | req[7]) == n - _WRAPPER_HEAD)


class WrapperPort(Port):
    """The IEC 62056-47 UDP wrapper on an app.modem Socket: each datagram one APDU behind an 8-byte header (version
    1, the client's wPort (its SAP), the server's wPort (1), the APDU's length), answered in one datagram with the
    wPorts swapped. The APDUs fit a datagram: the AARE offers the module's datagram less the header as the meter's
    largest PDU, and GET with block transfer carries anything longer. One association at a time, as over HDLC: a
    request from another client while one holds is not answered (nor does it keep the association alive); an
    association with no request for _INACTIVITY_MS ends. UDP has no link layer to resend what the network lost (an
    NB-IoT link loses a datagram in 100 or 20, and a radio waking from idle takes 2-15 s), and a client asks again:
    an AARQ, a GET-next or a glo-ciphered request that comes again, byte for byte, right after its first coming gets
    the same answer again, not redone (an HLS challenge is not replaced under the client, the block after it is not
    skipped, a ciphered request is not a replay, an ACTION is not done twice); any other request is served again,
    which is harmless for them (GET, RLRQ). A datagram that is no wrapper for this server (a version
    other than 1, a length that does not match, another server wPort) is dropped and counted in `malformed`. The
    socket answers the head-end only (a BC660K "UDP" socket sends only to the address it was opened to): a spoofed
    source cannot make the meter an amplifier (app/network_link.py starts the wrapper on such a socket only)."""

    def __init__(self, ctx, metering, supply, sock):
        self._out = bytearray(sock.modem.max_datagram)  # the last answer, kept for a request that comes again
        # (made first: a MemoryError here leaves nothing registered, Port's releaser and session count included)
        super().__init__(ctx, metering, supply)
        self.sock = sock
        self.assoc = None  # the Association while the layers are in
        self.request_ms = self.last_ms  # when the association in force last had a request
        self.inactivity_ms = _INACTIVITY_MS
        self._out_n = 0
        self._again = None  # the last request whose answer is sent again, not redone, when it comes again
        self.answered = 0
        self.repeated = 0
        self.malformed = 0
        self.others = 0  # requests from another client while an association held (not answered)
        self.unsent = 0  # answers the link failed under (the client asks again)

    def _load(self):
        self.assoc = self.association(len(self._out) - _WRAPPER_HEAD)
        return self.assoc

    def _drop(self):
        was = self.assoc is not None
        self.assoc = None
        return was

    def held(self, now_ms):
        """Whether an association holds the port (one with no request for inactivity_ms is ended here)."""
        a = self.assoc
        if a is None or not (a.associated or a.pending):
            return False
        if time.ticks_diff(now_ms, self.request_ms) >= self.inactivity_ms:
            a.release()
            return False
        return True

    def idle(self, now_ms):
        """Whether the layers can go: no association holds the port and it has been quiet for idle_ms."""
        return not self.held(now_ms) and time.ticks_diff(now_ms, self.last_ms) >= self.idle_ms

    def reply(self, req):
        """The answer datagram to one request datagram (a memoryview of it out of self._out), or None."""
        if not is_wrapper(req):
            self.malformed += 1
            return None
        client = req[2] << 8 | req[3]
        now = self.last_ms
        a = self.assoc
        if a is None:
            a = self.load_again()
        if self.held(now) and client != a.client:
            self.others += 1
            return None
        self.request_ms = now
        apdu = req[_WRAPPER_HEAD:]
        out = self._out
        if self._again is not None and client == a.client and apdu == self._again:
            self.repeated += 1  # its answer was lost (or the request came twice): the same answer, nothing redone
            return memoryview(out)[:self._out_n]
        t = apdu[0]
        # AARQ, GET-next, glo-GET, glo-SET and glo-ACTION: answered again, not redone, when they come again
        again = t == 0x60 or (t == 0xC0 and len(apdu) > 1 and apdu[1] == 2) or t in (0xC8, 0xC9, 0xCB)
        self._again = None
        r = a.apdu(apdu, client)
        k = len(r)
        if k > len(out) - _WRAPPER_HEAD:  # (never: the AARE told the client the meter's largest PDU)
            raise ValueError("answer over a datagram")
        out[0:_WRAPPER_HEAD] = bytes((0, 1, 0, SERVER, client >> 8, client & 0xFF, k >> 8, k & 0xFF))
        out[_WRAPPER_HEAD:_WRAPPER_HEAD + k] = r
        self._out_n = _WRAPPER_HEAD + k
        if again:
            self._again = bytes(apdu)
        return memoryview(out)[:self._out_n]

    async def answer(self, req):
        """Answer one datagram (the socket's view of it, valid until the next recv)."""
        self.last_ms = time.ticks_ms()
        try:
            r = self.reply(req)
        except Exception as e:  # noqa: BLE001 - see fault()
            self.fault(e)
            return
        if r is None:
            return
        try:
            await self.sock.send(r)
            self.answered += 1
        except Exception:  # noqa: BLE001 - LinkDown, SendFailed, AtError: the client asks again
            self.unsent += 1

    async def session(self):
        """Receive and answer datagrams while the layers are in; return once the session is over (idle, a fault, or
        the heap given away and the port quiet)."""
        sock = self.sock
        while True:
            try:
                req = await asyncio.wait_for_ms(sock.recv(), self.idle_ms)
            except asyncio.TimeoutError:  # noqa: UP041 - MicroPython has no builtin TimeoutError
                if self.assoc is None or self.idle(time.ticks_ms()):
                    return
                continue
            await self.answer(req)
