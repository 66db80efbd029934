"""Test-side DLMS client: gurux-dlms's GXDLMSClient (GPLv2, a test-only extra the package never imports) over a
serial port with pyserial, as a utility engineer's tool reads a meter through an optical probe head (frames are read
by their length field: IEC 62056-46 has no byte stuffing, a flag may appear inside a frame), or over UDP with the
IEC 62056-47 wrapper, as a head-end reads a meter through its NB-IoT module (DlmsUdpClient)."""

from __future__ import annotations

import socket
import time

import serial
from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication, DataType, InterfaceType, Security
from gurux_dlms.GXCiphering import GXCiphering


class NoAnswer(TimeoutError):
    pass


class Disconnected(ConnectionError):
    """The meter answered DM: no association holds the link (it ended, or the meter gave its heap away)."""


DM = 0x1F  # the control field of a DM frame, poll/final bit set


def exchange(send, c: GXDLMSClient, frames) -> GXReplyData:
    """gurux's request `frames` through `send` (one frame to the meter, its answer frame back), then RR polls while
    the answer has more segments: the reply gurux parsed."""
    reply = GXReplyData()
    answer = b""
    for k, fr in enumerate(frames):
        answer = send(fr)
        if k < len(frames) - 1:
            c.getData(GXByteBuffer(answer), GXReplyData())
    while True:
        c.getData(GXByteBuffer(answer), reply)
        if not reply.isMoreData():
            return reply
        answer = send(c.receiverReady(reply))


def gurux_client(interface, client: int = 16, server: int = 1, secret: str | None = None,
                 keys: tuple[bytes, bytes] | None = None, title: bytes = b"HEADEND1") -> GXDLMSClient:
    if keys is not None:
        c = GXDLMSClient(True, 48, server, Authentication.HIGH_GMAC, None, interface)
        c.settings.cipher = GXCiphering(title)
        c.settings.cipher.security = Security.AUTHENTICATION_ENCRYPTION
        c.settings.cipher.blockCipherKey = bytearray(keys[0])
        c.settings.cipher.authenticationKey = bytearray(keys[1])
        return c
    if secret is None:
        return GXDLMSClient(True, client, server, Authentication.NONE, None, interface)
    return GXDLMSClient(True, 32, server, Authentication.LOW, secret, interface)


class DlmsClient:
    def __init__(self, port: str, baud: int = 9600, timeout: float = 10.0, client: int = 16, server: int = 1,
                 secret: str | None = None, keys: tuple[bytes, bytes] | None = None, title: bytes = b"HEADEND1"):
        """The public client (SAP 16, no authentication); with a secret the meter reader (SAP 32, low-level
        security); with keys (EK, AK) the utility settings (SAP 48, high-level security with GMAC, every APDU
        authenticated and encrypted under them, system title `title`)."""
        self.port = serial.Serial(port, baud, timeout=0.2)
        self.timeout = timeout
        self.c = gurux_client(InterfaceType.HDLC, client, server, secret, keys, title)

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> DlmsClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def frame(self, timeout: float | None = None) -> bytes:
        """The next whole frame the meter sends (flags included); NoAnswer after `timeout` (default: the client's)."""
        wait = self.timeout if timeout is None else timeout
        end = time.monotonic() + wait
        buf = bytearray()
        while time.monotonic() < end:
            b = self.port.read(1)
            if not b:
                continue
            if not buf:
                if b == b"\x7e":
                    buf += b
                continue
            if len(buf) == 1 and b == b"\x7e":
                continue  # back-to-back flags
            buf += b
            if len(buf) >= 3:
                need = (((buf[1] & 7) << 8) | buf[2]) + 2  # the length counts between the flags
                if len(buf) >= need:
                    return bytes(buf)
        raise NoAnswer(f"no frame from the meter in {wait} s (got {bytes(buf).hex()})")

    def exchange(self, frames) -> GXReplyData:
        return exchange(self.send, self.c, frames)

    def send(self, fr) -> bytes:
        """One frame to the meter, its answer back; Disconnected when the answer is DM."""
        self.port.write(bytes(fr))
        answer = self.frame()
        if answer[5] == DM:  # flag, format (2), the client's address (1 byte), the server's (1 byte), control
            raise Disconnected("the meter answered DM: the link is not connected")
        return answer

    def connect(self) -> None:
        # a fresh start: gurux keeps its HDLC frame numbers across a new SNRM unless its session is dropped first
        # (after a DM the meter's link starts from 0 and would not take the old numbers)
        self.c.disconnectRequest()
        self.c.parseUAResponse(self.exchange([self.c.snrmRequest()]).data)
        self.c.parseAareResponse(self.exchange(self.c.aarqRequest()).data)
        if self.c.getIsAuthenticationRequired():  # HLS: the client's f(StoC), and the meter's f(CtoS) checked
            self.c.parseApplicationAssociationResponse(self.exchange(self.c.getApplicationAssociationRequest()).data)

    def read(self, obj, *attrs: int):
        for attr in attrs:
            reply = self.exchange(self.c.read(obj, attr))
            if reply.error:
                raise LookupError(f"{obj.logicalName} attribute {attr}: data-access-result {reply.error}")
            self.c.updateValue(obj, attr, reply.value)
        return obj

    def write(self, obj, *attrs: int) -> None:
        """SET attributes `attrs` of `obj` from its fields, as gurux encodes them; LookupError naming the
        data-access-result when one is not success."""
        for attr in attrs:
            reply = self.exchange(self.c.write(obj, attr))
            if reply.error:
                raise LookupError(f"{obj.logicalName} attribute {attr}: data-access-result {reply.error}")

    def method(self, obj, index: int) -> None:
        """Invoke method `index` of `obj` with the parameter integer 0 (class 70's remote_disconnect and
        remote_reconnect take it); LookupError naming the action-result when it is not success."""
        reply = self.exchange(self.c.method(obj, index, 0, DataType.INT8))
        if reply.error:
            raise LookupError(f"{obj.logicalName} method {index}: action-result {reply.error}")

    def objects(self):
        """The association's object list (0.0.40.0.0.255 attribute 2), parsed by gurux: what a DLMS tool reads first."""
        reply = self.exchange([self.c.getObjectsRequest()])
        if reply.error:
            raise LookupError(f"0.0.40.0.0.255 attribute 2: data-access-result {reply.error}")
        return self.c.parseObjects(reply.data, True)

    def disconnect(self) -> bytes:
        self.exchange(self.c.releaseRequest())
        self.port.write(bytes(self.c.disconnectRequest()))
        return self.frame()


_ANSWER = {0x60: 0x61, 0x62: 0x63, 0xC0: 0xC4, 0xC3: 0xC7, 0xC8: 0xCC, 0xCB: 0xCF}  # request tag -> its answer's


def answers(req: bytes, ans: bytes) -> bool:
    """Whether wrapper datagram `ans` can be the answer to request `req`: the wPorts swapped, the answer's kind (an
    ExceptionResponse answers anything), the same invoke-id, and a GET-next's block the one after the request's.
    UDP may deliver a copy of an earlier answer late (the request sent again, the network's duplicate): taken for
    the next request's answer it would derail the session."""
    if len(ans) < 9 or ans[2:4] != req[4:6] or ans[4:6] != req[2:4]:
        return False
    if ans[8] == 0xD8:
        return True
    if _ANSWER.get(req[8]) != ans[8]:
        return False
    if req[8] in (0xC0, 0xC3) and (len(ans) < 11 or ans[10] != req[10]):
        return False
    if req[8] == 0xC0 and req[9] == 2:  # GET-next of block N: the block N + 1
        return ans[9] == 2 and len(ans) >= 16 and int.from_bytes(ans[12:16], "big") == int.from_bytes(req[11:15], "big") + 1
    return True


class DlmsUdpClient(DlmsClient):
    """The same client over UDP with the IEC 62056-47 wrapper: requests to the meter's (address, 4059) from the
    head-end's own (address, port), the one its module's socket answers. No link layer resends here: a request whose
    answer does not come within `wait` s is sent again, byte for byte, up to `tries` times in all (the meter answers
    an AARQ, a GET-next or a ciphered request that comes again with its first answer, docs/dlms.md), and a datagram
    that cannot be its answer (a late copy of an earlier one) is passed over (`answers`)."""

    def __init__(self, meter: tuple[str, int], local: tuple[str, int], timeout: float = 30.0, wait: float = 5.0,
                 tries: int = 4, **kw):
        self.meter = meter
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(local)
        self.timeout = timeout
        self.wait = wait
        self.tries = tries
        self.sent = self.resent = self.stale = 0
        self.c = gurux_client(InterfaceType.WRAPPER, **kw)

    def close(self) -> None:
        self.sock.close()

    def send(self, fr) -> bytes:
        data = bytes(fr)
        self.sock.setblocking(False)
        try:
            while self.sock.recv(2048):  # a late answer to an earlier request's try is not this one's
                pass
        except BlockingIOError:
            pass
        for k in range(self.tries):
            self.sent += 1
            self.resent += k > 0
            self.sock.sendto(data, self.meter)
            end = time.monotonic() + self.wait
            while (left := end - time.monotonic()) > 0:
                self.sock.settimeout(left)
                try:
                    answer, src = self.sock.recvfrom(2048)
                except TimeoutError:
                    break
                if src == self.meter and answers(data, answer):
                    return answer
                self.stale += 1
        raise NoAnswer(f"no answer from {self.meter} to {data.hex()} in {self.tries} tries of {self.wait} s")

    def connect(self) -> None:
        self.c.parseAareResponse(self.exchange(self.c.aarqRequest()).data)
        if self.c.getIsAuthenticationRequired():
            self.c.parseApplicationAssociationResponse(self.exchange(self.c.getApplicationAssociationRequest()).data)

    def disconnect(self) -> bytes:
        """RLRQ: the meter's RLRE (the wrapper has no link layer to disconnect)."""
        return self.send(self.c.releaseRequest()[0])
