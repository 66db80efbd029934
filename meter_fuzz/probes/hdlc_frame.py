"""The DLMS HDLC data link layer (app/hdlc.py): whatever an optical probe or an RS-485 bus can carry to the meter's
`Deframer`, and every frame it accepts handed to the server's `Link` as the port's task does (a client connected
first, so I-frames, RRs and segments reach past the link's state check).

Input: byte 0 picks the feeding: bits 0-2 the fragment size (whole, or 1, 2, 3, 7, 16, 64, 200 bytes), bit 3 a
SNRM from client 16 fed first, bit 4 a small deframer and link (max_info 32, max_apdu 64, so overflows are
reached), bit 5 check sequences fixed: wherever the line has a flag and a frame format with room for the length it
declares, the probe writes that frame's right HCS and FCS in place (an attacker on the line computes them), so
mutated frames reach past the CRCs; bits 6-7 unused. The rest is the line.

Neither layer documents an error for any input (bad frames are counted, bad requests answered with DM or FRMR):
ERRORS names an exception that is never raised. Invariants (fuzzcore.Violation):
- feeding the line in fragments yields exactly the frames and counters of feeding it whole;
- the deframer's buffer never grows, and every frame it yields fits it and re-encodes to a frame that decodes to
  the same fields;
- the link never raises, answers only frames addressed to it, and every answer is one whole, well-formed frame to
  the client that sent the frame, no longer than the negotiated information field allows;
- the APDU handed up is at most max_apdu bytes, and only from a connected link.
"""

from fuzzcore import Violation, check

from app import hdlc


class NoError(Exception):
    """Never raised: the deframer and the link document no exception for any input."""


ERRORS = (NoError,)
MODULES = ("app/hdlc.py",)
MEM_BASE = 32 * 1024
MEM_PER_BYTE = 64
STEPS = (0, 1, 2, 3, 7, 16, 64, 200)
SNRM = b"\x7e\xa0\x07\x03\x21\x93\x0f\x01\x7e"  # client 16 to server 1, no parameters (a real client's bytes)
ANSWER = bytes(range(200))  # long enough to be sent in segments


def _frames(line, step, max_info):
    d = hdlc.Deframer(max_info)
    size = len(d._buf)
    got = []

    def on(f):
        check(len(f.info) <= max_info + hdlc.FRAME_OVERHEAD, "a frame larger than the buffer")
        got.append((f.dst, f.dst_size, f.src, f.src_size, f.control, bytes(f.info), f.segmented))

    d.on_frame = on
    if step == 0:
        d.feed(line)
    else:
        for i in range(0, len(line), step):
            d.feed(line[i:i + step])
    check(len(d._buf) == size, "the deframer's buffer grew")
    return got, (d.frames, d.bad_frames, d.oversize)


def _same_on_reencode(frame):
    dst, dst_size, src, src_size, control, info, segmented = frame
    buf = bytearray(len(info) + hdlc.FRAME_OVERHEAD + 2)
    n = hdlc.encode(buf, dst, dst_size, src, src_size, control, info, segmented)
    back, _ = _frames(bytes(buf[:n]), 0, max(len(info), 1))
    check(back == [frame], "a frame did not survive re-encoding: %r" % (frame[:5],))


def _fix(line):
    """Write the right HCS and FCS into every frame the line declares (see the module docstring)."""
    n = len(line)
    i = 0
    while i + 3 < n:
        if line[i] != 0x7E or line[i + 1] & 0xF0 != 0xA0:  # a flag, then a frame format type 3
            i += 1
            continue
        end = i + 1 + (((line[i + 1] & 7) << 8) | line[i + 2])
        if end - i - 1 < 7 or end > n:
            i += 1
            continue
        j = i + 3
        for _ in range(2):  # destination and source addresses: up to four bytes each
            k = 0
            while j < end and k < 4 and not line[j] & 1:
                j += 1
                k += 1
            j += 1
        j += 1  # control
        if end - j > 2 and j + 2 <= end - 2:
            c = hdlc.crc16(line, i + 1, j)
            line[j] = c & 0xFF
            line[j + 1] = c >> 8
        c = hdlc.crc16(line, i + 1, end - 2)
        line[end - 2] = c & 0xFF
        line[end - 1] = c >> 8
        i = end


def run(data):
    if not data:
        data = b"\x00"
    mode = data[0]
    step = STEPS[mode & 7]
    small = bool(mode & 0x10)
    max_info = 32 if small else 128  # the default maximum information field
    max_apdu = 64 if small else 512
    line = bytearray(data[1:])
    if mode & 0x20:
        _fix(line)
    line = (SNRM if mode & 8 else b"") + bytes(line)

    frames, counts = _frames(line, 0, max_info)
    check(_frames(line, step, max_info) == (frames, counts), "fragmenting the line changed its frames or counters")
    for f in frames:
        _same_on_reencode(f)

    apdus = []
    link = hdlc.Link(1, 1, lambda apdu: apdus.append(len(apdu)) or ANSWER, max_info=max_info, max_apdu=max_apdu)
    answers = 0
    d = hdlc.Deframer(max_info)
    out = []

    def serve(f):
        connected_before = link.state == hdlc.CONNECTED
        n = len(apdus)
        try:
            r = link.receive(f, 0)
        except Exception as e:  # noqa: BLE001 - the link documents no exception: any is the finding
            raise Violation("the link raised %s: %s" % (type(e).__name__, e)) from None
        if len(apdus) > n:
            check(connected_before, "an APDU handed up from a link that was not connected")
            check(apdus[-1] <= max_apdu, "an APDU of %d bytes, over max_apdu" % apdus[-1])
        if r is None:
            return
        check(f.dst == link.address and f.dst_size == link.address_size, "an answer to a frame for another address")
        out.append((bytes(r), f.src, max(link.tx_info, 23)))  # 23: a UA's negotiation field

    d.on_frame = serve
    d.feed(line)
    for r, client, longest in out:
        got, counts = _frames(r, 0, 512)
        check(len(got) == 1 and counts == (1, 0, 0), "an answer that is not one well-formed frame: %r" % (r[:16],))
        dst, _, src, _, _, info, _ = got[0]
        check(dst == client and src == link.address, "an answer addressed to %d from %d" % (dst, src))
        check(len(info) <= longest, "an answer's information field of %d bytes (negotiated %d)" % (len(info), longest))
        answers += 1
    return len(frames), counts, answers, len(apdus)
