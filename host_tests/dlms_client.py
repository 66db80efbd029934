"""Test-side DLMS client: gurux-dlms's GXDLMSClient (GPLv2, a test-only extra the package never imports) over a
serial port with pyserial, as a utility engineer's tool reads a meter through an optical probe head. Frames are
read by their length field (IEC 62056-46 has no byte stuffing: a flag may appear inside a frame)."""

from __future__ import annotations

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


class DlmsClient:
    def __init__(self, port: str, baud: int = 9600, timeout: float = 10.0, client: int = 16, server: int = 1,
                 secret: str | None = None, keys: tuple[bytes, bytes] | None = None, title: bytes = b"HEADEND1"):
        """The public client (SAP 16, no authentication); with a secret the meter reader (SAP 32, low-level
        security); with keys (EK, AK) the utility settings (SAP 48, high-level security with GMAC, every APDU
        authenticated and encrypted under them, system title `title`)."""
        self.port = serial.Serial(port, baud, timeout=0.2)
        self.timeout = timeout
        if keys is not None:
            self.c = GXDLMSClient(True, 48, server, Authentication.HIGH_GMAC, None, InterfaceType.HDLC)
            self.c.settings.cipher = GXCiphering(title)
            self.c.settings.cipher.security = Security.AUTHENTICATION_ENCRYPTION
            self.c.settings.cipher.blockCipherKey = bytearray(keys[0])
            self.c.settings.cipher.authenticationKey = bytearray(keys[1])
        elif secret is None:
            self.c = GXDLMSClient(True, client, server, Authentication.NONE, None, InterfaceType.HDLC)
        else:
            self.c = GXDLMSClient(True, 32, server, Authentication.LOW, secret, InterfaceType.HDLC)

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
