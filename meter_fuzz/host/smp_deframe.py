"""Host extras of smp_deframe: a reference decoder of the console framing (the rules of lib/smp_serial.py's
docstring, written line by line from the smp package's framing constants, CPython's strict base64 and crcmod's
CRC-16/XMODEM as smp uses it), compared frame by frame and counter by counter with the firmware's; every frame the
firmware yields must also come out of the smp package's own encoding of it. Seeds: real requests framed by smp's
encoder and the firmware's, with noise, REPL text, split lines and broken CRCs."""

from __future__ import annotations

import base64
import binascii

from smp import packet as smp_packet

from meter_fuzz.probes.fuzzcore import Violation

_CHUNK = 128  # the firmware decodes a line in pieces of this many base64 characters (its docstring)
START = smp_packet.START_DELIMITER
CONT = smp_packet.CONTINUE_DELIMITER


class Reference:
    """The documented receiving rules, one whole line at a time."""

    def __init__(self, max_frame: int):
        self.max_frame = max_frame
        self.frames: list[bytes] = []
        self.format_errors = self.overflows = self.crc_errors = 0
        self.active = False
        self.buf = b""
        self.need = 0
        self.padded = False

    def counts(self) -> tuple[int, int, int, int]:
        return len(self.frames), self.format_errors, self.overflows, self.crc_errors

    def _error(self, kind: str) -> None:
        if kind == "big":
            self.overflows += 1
        else:
            self.format_errors += 1
        self.active = False

    def _piece(self, s: bytes) -> str | None:
        """Decode one piece of a line into the packet; an error kind or None."""
        if len(s) % 4 or self.padded:
            return "bad"
        try:
            d = base64.b64decode(s, validate=True)
        except binascii.Error:
            return "bad"
        if base64.b64encode(d) != s:
            return "bad"
        if self.need == 0:
            if len(d) < 2:
                return "bad"
            declared = int.from_bytes(d[:2], "big")
            if declared < 2:
                return "bad"
            if declared - 2 > self.max_frame:
                return "big"
            self.need = declared + 2
        if len(self.buf) + len(d) > self.need:
            return "bad"
        self.buf += d
        if s.endswith(b"="):
            self.padded = True
            if len(self.buf) != self.need:
                return "bad"
        return None

    def line(self, content: bytes, end: str) -> None:
        """One SMP line's characters, closed by "nl", cut by a "marker" or by the end of the stream ("eof"): only a
        '\\n' decodes a last piece shorter than a chunk."""
        full = len(content) - len(content) % _CHUNK if end != "nl" else len(content)
        for i in range(0, full, _CHUNK):
            err = self._piece(content[i:i + _CHUNK])
            if err:
                self._error(err)
                return
        if end == "eof":
            return
        if end == "marker":
            self._error("bad")
            return
        if self.need == 0:
            self._error("bad")
            return
        if len(self.buf) < self.need:
            return
        self.active = False
        body = self.buf[2:self.need - 2]
        if smp_packet.crc16_func(body) != int.from_bytes(self.buf[self.need - 2:self.need], "big"):
            self.crc_errors += 1
            return
        self.frames.append(body)

    def feed(self, stream: bytes) -> Reference:
        i, n = 0, len(stream)
        while i < n:
            k = _marker(stream, i, n)
            if k < 0 or k + 1 >= n:
                break
            pair = stream[k:k + 2]
            if pair not in (START, CONT):
                i = k + 1
                continue
            if pair == CONT and not self.active:
                self.format_errors += 1
                i = k + 2
                continue
            if pair == START:
                if self.active:
                    self.format_errors += 1
                self.active, self.buf, self.need, self.padded = True, b"", 0, False
            i = k + 2
            nl = stream.find(b"\n", i)
            end = n if nl < 0 else nl
            m = _marker(stream, i, end)
            if m >= 0:
                self.line(stream[i:m], "marker")
                i = m
            elif nl < 0:
                self.line(stream[i:], "eof")
                break
            else:
                self.line(stream[i:nl], "nl")
                i = nl + 1
        return self


def _marker(s: bytes, i: int, end: int) -> int:
    a, b = s.find(b"\x06", i, end), s.find(b"\x04", i, end)
    return b if a < 0 else a if b < 0 else min(a, b)


def differential(data: bytes, result) -> None:
    if isinstance(result, BaseException):
        return
    import smp_serial

    stream, max_frame, frames, counts = result
    ref = Reference(max_frame).feed(stream)
    if ref.frames != frames or ref.counts() != counts:
        raise Violation(f"the reference decoder yields {len(ref.frames)} frames {ref.frames[:2]!r} with counters "
                        f"{ref.counts()}, the firmware {len(frames)} frames {frames[:2]!r} with {counts}")
    for f in frames:
        d = smp_serial.Decoder(max_frame)
        got: list = []
        for line in smp_packet.encode(f):
            got += d.feed_bytes(line) or []
        if got != [f]:
            raise Violation(f"smp's own encoding of a yielded {len(f)}-byte frame does not decode back")


def seeds():
    """Inputs for the committed corpus: byte 0 is the feeding switch (see the probe's docstring)."""
    from smp import image_management, os_management

    reqs = [bytes(os_management.EchoWriteRequest(d="hello")),
            bytes(os_management.MCUMgrParametersReadRequest()),
            bytes(image_management.ImageStatesReadRequest()),
            bytes(image_management.ImageUploadWriteRequest(off=0, data=bytes(range(200)), len=4000,
                                                           sha=bytes(32)))]
    for k, r in enumerate(reqs):
        pkt = b"".join(smp_packet.encode(r))
        yield bytes([k]) + pkt  # whole, byte by byte, ...
        yield bytes([0x40 | (k + 8)]) + b"REPL>>> text\r\n" + pkt + b"\x06\x09AAA\n"  # noise, on_frame
        bad = bytearray(pkt)
        bad[-3] ^= 1  # a broken CRC
        yield bytes([k + 4]) + bytes(bad)
    big = b"".join(smp_packet.encode(bytes(300)))
    yield bytes([0x10]) + big  # max_frame 16: an overflow
    yield bytes([0x80, 20, 5, 1]) + bytes(range(20)) + b"\x06\x09QUJD\n\x04\x14noise"  # embedded, 8-char lines
    yield bytes([0xC3, 40, 0, 0]) + bytes(range(40)) + b"\x06"  # embedded after a lone marker
