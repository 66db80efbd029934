"""The SMP serial deframer (lib/smp_serial.py `Decoder`): whatever bytes a console cable can carry, base64 lines
with markers, a length and a CRC-16/XMODEM, fed in the fragments a UART hands the console.

Input: byte 0 picks how the stream is fed and to which decoder: bits 0-3 the fragment size (whole, byte by byte
through feed(), or one of CHUNKS), bits 4-5 the decoder's max_frame (the console's BUF_SIZE, or a small one so
overflows are reached), bit 6 the console's way of taking frames (on_frame, a view of the decoder's buffer), bit 7
"embed": the firmware's own encoder frames bytes taken from the input (byte 1: their count, byte 2: where the packet
goes in the rest, the noise; byte 3: the line length) and the packet must come out whatever noise precedes it.

The decoder documents no error for any input (it counts format errors, overflows and CRC errors and resynchronises):
ERRORS names an exception it never raises. Invariants (fuzzcore.Violation): every frame yielded is at most max_frame
bytes; feeding the stream in fragments yields exactly the frames and counters of feeding it whole; the decoder's
buffers never grow; an embedded packet comes out. The host's differential (meter_fuzz/host/smp_deframe.py) decodes
the same stream with a reference decoder (the documented rules, with the smp package's framing constants and CRC)
and compares frames and counters, and feeds the smp package's encoding of every yielded frame back in."""

from fuzzcore import check

import smp_serial
from loader import smp


class NoError(Exception):
    """Never raised: Decoder.feed_bytes documents no exception for any input."""


ERRORS = (NoError,)
MODULES = ("lib/smp_serial.py",)
MEM_BASE = 48 * 1024
MEM_PER_BYTE = 64
CHUNKS = (0, 0, 0, 0, 1, 3, 7, 13, 31, 64, 127, 128, 129, 255, 256, 1000)  # 0: whole, 1: feed() byte by byte
MAX_FRAMES = (smp.BUF_SIZE, 16, 3, 0)
LINE_MAX = (127, 8, 64, 300)


def _decode(stream, max_frame, chunk, on_frame):
    d = smp_serial.Decoder(max_frame)
    got = []
    if on_frame:
        d.on_frame = lambda mv: got.append(bytes(mv))
    n = len(stream)
    if chunk == 0:
        r = d.feed_bytes(stream)
        if r:
            got.extend(r)
    elif chunk == 1:
        for b in stream:
            f = d.feed(b)
            if f is not None:
                got.append(f)
    else:
        mv = memoryview(stream)
        i = 0
        while i < n:
            r = d.feed_bytes(mv[i:i + chunk])  # a view, as the console hands it
            if r:
                got.extend(r)
            i += chunk
    check(len(d._frame) == max_frame + 4 and len(d._line) == 128, "the decoder's buffers grew")
    check(d.frames == len(got), "frames counter %d for %d frames" % (d.frames, len(got)))
    return got, (d.frames, d.format_errors, d.overflows, d.crc_errors)


def split(data):
    """(stream, max_frame, chunk, on_frame, embedded frame or None) for one input."""
    if not data:
        return b"", smp.BUF_SIZE, 0, False, None
    b0 = data[0]
    chunk = CHUNKS[b0 & 15]
    max_frame = MAX_FRAMES[(b0 >> 4) & 3]
    on_frame = bool(b0 & 0x40)
    rest = data[1:]
    if not (b0 & 0x80) or len(rest) < 3:
        return bytes(rest), max_frame, chunk, on_frame, None
    n = rest[0] % 48
    where = rest[1]
    line_max = LINE_MAX[rest[2] & 3]
    frame = bytes(rest[3:3 + n])
    noise = rest[3 + n:]
    k = where % (len(noise) + 1)
    stream = bytes(noise[:k]) + smp_serial.encode(frame, line_max) + bytes(noise[k:])
    return stream, max_frame, chunk, on_frame, frame


def run(data):
    stream, max_frame, chunk, on_frame, frame = split(data)
    whole, counts = _decode(stream, max_frame, 0, False)
    if chunk or on_frame:
        parts, counts2 = _decode(stream, max_frame, chunk, on_frame)
        check(parts == whole and counts2 == counts, "fed in fragments of %d (on_frame %s) the decoder yields %r %r, "
              "whole %r %r" % (chunk, on_frame, parts[:3], counts2, whole[:3], counts))
    for f in whole:
        check(len(f) <= max_frame, "a %d-byte frame from a decoder of max_frame %d" % (len(f), max_frame))
    if frame is not None and len(frame) <= max_frame:
        check(frame in whole, "a valid %d-byte packet embedded in noise did not come out" % len(frame))
    return stream, max_frame, whole, counts
