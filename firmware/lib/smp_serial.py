"""SMP serial transport framing (mcumgr console framing); runs unchanged on MicroPython boards, the VM and CPython.

packet = base64( u16 BE (len(frame)+2) || frame || u16 BE CRC-16/XMODEM(frame) ), cut on 4-character boundaries into
lines of at most line_max bytes (marker and '\\n' included): the first line starts 0x06 0x09, continuation lines
0x04 0x14, every line ends with '\\n'.

Decoder(max_frame).feed_bytes(buf) returns None or a list of completed frames (bytes); with `on_frame` set, each
completed frame is instead handed to on_frame(memoryview) as it completes, a view of the decoder's own buffer valid
only during the call (no copy of the frame is made). Receiving rules:
- Markers are recognised anywhere outside an SMP line, not only at a line start (0x06/0x04 never occur in typed
  text or REPL output), so a packet right after a partial line of text is still found. Everything outside SMP lines
  (text, REPL noise, stray bytes) is ignored, also between the lines of one packet.
- Inside an SMP line only canonical base64 is accepted (each line a multiple of 4 characters, '=' padding only at
  the very end of the packet). The check is done here rather than trusting binascii, whose leniency differs between
  CPython and MicroPython, so both runtimes accept exactly the same lines.
- The declared length is checked against max_frame as soon as the first 2 bytes are decoded, before any further data
  is stored; data beyond the declared length is an error; the frame is delivered only at the '\\n' that completes it
  and only if its CRC matches.
- Any error drops the packet being assembled, increments one counter (format_errors, overflows or crc_errors) and the
  decoder resynchronises at the next marker (a new start marker also abandons an unfinished packet, counted as a
  format error; a continuation line with no packet in progress is a format error and is skipped).
Memory: one preallocated frame buffer (max_frame + 4 bytes) and one 128-byte line buffer; lines are decoded in
chunks of at most 128 base64 characters, so line length is not limited. The hot path works on slices with
bytes.find and binascii (C code), not a Python loop per byte.
"""

from array import array
from binascii import a2b_base64, b2a_base64

from micropython import const  # on CPython: meterkit/mpy_compat/micropython.py

_LINE_MAX = const(127)
_PKT_1 = const(0x06)
_PKT_2 = const(0x09)
_FRAG_1 = const(0x04)
_FRAG_2 = const(0x14)
_NL = const(0x0A)
_PAD = const(0x3D)  # '='
_CHUNK = const(128)  # line-buffer size in base64 characters; must be a multiple of 4

# receiver states
_OUT = const(0)  # outside an SMP line: look for a marker
_M_PKT = const(1)  # saw 0x06
_M_FRAG = const(2)  # saw 0x04
_LINE = const(3)  # inside an SMP line: base64 up to '\n'

# flush results
_OK = const(0)
_BAD = const(1)
_BIG = const(2)

# CRC-16/XMODEM (poly 0x1021, init 0, no reflection), table-driven. A 256-entry table costs 512 bytes in an
# array('H') (vs 32 bytes for a nibble table) but needs one lookup per byte instead of two; frames run to ~2 KB
# per upload chunk, so halving the interpreted work per byte is worth the 480 bytes.
_TABLE = array("H", bytes(512))
for _i in range(256):
    _c = _i << 8
    for _ in range(8):
        _c = ((_c << 1) ^ 0x1021) if _c & 0x8000 else (_c << 1)
    _TABLE[_i] = _c & 0xFFFF
del _i, _c


def crc16_xmodem(data, crc=0):
    """CRC-16/XMODEM of a bytes-like object; equals CPython's binascii.crc_hqx(data, crc)."""
    t = _TABLE
    for b in data:
        crc = ((crc << 8) & 0xFF00) ^ t[(crc >> 8) ^ b]
    return crc


# one line's raw bytes (93 for 124 base64 characters) and the line itself, kept for every packet written: a reply
# allocates one line's base64 at a time, never a copy of the whole packet (the heap may be in small pieces)
_STAGE = bytearray(((_LINE_MAX - 3) // 4) * 3)
_LINE_OUT = bytearray(_LINE_MAX)


def write(out, parts, line_max=_LINE_MAX):
    """Write the serial packet of one SMP frame, the concatenation of the tuple of bytes-likes `parts`, to stream
    `out`, one write per line. With the default line_max it allocates one line's base64 at a time and nothing the
    size of the frame."""
    n = 0
    crc = 0
    for p in parts:
        n += len(p)
        crc = crc16_xmodem(p, crc)
    if n > 0xFFFD:
        raise ValueError("frame too long")
    per = ((line_max - 3) // 4) * 3  # raw bytes per line: 4 base64 characters for each 3
    if per < 3:
        raise ValueError("line_max too small")
    stage, ln = (_STAGE, _LINE_OUT) if line_max <= _LINE_MAX else (bytearray(per), bytearray(line_max))
    st = memoryview(stage)
    st[0] = (n + 2) >> 8
    st[1] = (n + 2) & 0xFF
    k = 2  # bytes in the stage
    marker = _PKT_1 << 8 | _PKT_2
    for p in parts + (bytes((crc >> 8, crc & 0xFF)),):
        mv = memoryview(p)
        i = 0
        while i < len(p):
            if k == per:
                _line(out, ln, marker, st[:k])
                marker = _FRAG_1 << 8 | _FRAG_2
                k = 0
            m = min(per - k, len(p) - i)
            st[k : k + m] = mv[i : i + m]
            k += m
            i += m
    _line(out, ln, marker, st[:k])


def _line(out, ln, marker, raw):
    b = b2a_base64(raw, newline=False)  # type: ignore[arg-type]  # any buffer works
    m = len(b)
    ln[0] = marker >> 8
    ln[1] = marker & 0xFF
    ln[2 : 2 + m] = b
    ln[2 + m] = _NL
    out.write(memoryview(ln)[: 3 + m])


def encode(frame, line_max=_LINE_MAX):
    """Return the serial packet for one SMP frame: all its lines concatenated."""
    from io import BytesIO

    out = BytesIO()
    write(out, (frame,), line_max)
    return out.getvalue()


def _find_marker(buf, i, end):
    # first 0x06 or 0x04 in buf[i:end], or -1
    a = buf.find(b"\x06", i, end)
    b = buf.find(b"\x04", i, end if a < 0 else a)
    return a if b < 0 else b


class Decoder:
    def __init__(self, max_frame):
        if max_frame < 0 or max_frame > 0xFFFD:
            raise ValueError("max_frame")
        self.max_frame = max_frame
        self._frame = bytearray(max_frame + 4)  # length prefix + frame + CRC
        self._fmv = memoryview(self._frame)
        self._line = bytearray(_CHUNK)
        self._lmv = memoryview(self._line)
        self._one = bytearray(1)
        self.frames = 0
        self.format_errors = 0
        self.overflows = 0
        self.crc_errors = 0
        self.on_frame = None
        self.reset()

    def reset(self):
        """Forget any partial packet (counters are kept)."""
        self._state = _OUT
        self._n = 0  # characters in the line buffer
        self._active = False  # a packet is being assembled
        self._pos = 0  # bytes decoded into the frame buffer
        self._need = 0  # 2 + declared length once known
        self._padded = False

    def _drop(self, why):
        if why == _BIG:
            self.overflows += 1
        else:
            self.format_errors += 1
        self._active = False
        self._n = 0
        self._state = _OUT

    def _flush(self):
        # validate and decode the line buffer into the frame buffer
        m = self._n
        if m == 0:
            return _OK
        self._n = 0
        if m & 3 or self._padded:
            return _BAD
        s = bytes(self._lmv[:m])
        try:
            d = a2b_base64(s)
        except ValueError:  # binascii.Error on CPython
            return _BAD
        if b2a_base64(d, newline=False) != s:  # only canonical base64 re-encodes to itself
            return _BAD
        k = len(d)
        p = self._pos
        if self._need == 0:
            if k < 2:
                return _BAD
            declared = (d[0] << 8) | d[1]
            if declared < 2:
                return _BAD
            if declared - 2 > self.max_frame:
                return _BIG
            self._need = declared + 2
        if p + k > self._need:
            return _BAD
        self._fmv[p : p + k] = d
        self._pos = p + k
        if s[m - 1] == _PAD:
            self._padded = True
            if self._pos != self._need:
                return _BAD
        return _OK

    def _end_line(self):
        # '\n' closes an SMP line: returns a finished frame or None
        r = self._flush()
        if r != _OK:
            self._drop(r)
            return None
        self._state = _OUT
        need = self._need
        if need == 0:
            self._drop(_BAD)  # a first line too short to carry the length
            return None
        if self._pos < need:
            return None  # wait for continuation lines
        self._active = False
        f = self._frame
        got = (f[need - 2] << 8) | f[need - 1]
        if crc16_xmodem(self._fmv[2 : need - 2]) != got:
            self.crc_errors += 1
            return None
        self.frames += 1
        if self.on_frame is None:
            return bytes(self._fmv[2 : need - 2])
        self.on_frame(self._fmv[2 : need - 2])
        return None

    def feed(self, b):
        """Feed one received byte (an int); returns a completed frame or None."""
        self._one[0] = b
        r = self.feed_bytes(self._one)
        return r[0] if r else None

    def feed_bytes(self, buf):
        """Feed received bytes; returns a list of the frames they completed, or None."""
        if not isinstance(buf, (bytes, bytearray)):
            buf = bytes(buf)  # memoryview has no find()
        src = memoryview(buf)
        n = len(buf)
        out = None
        i = 0
        while i < n:
            st = self._state
            if st == _LINE:
                j = buf.find(b"\n", i)
                end = n if j < 0 else j
                k = _find_marker(buf, i, end)
                stop = end if k < 0 else k
                # copy buf[i:stop] into the line buffer, decoding whenever it fills
                while i < stop:
                    c = self._n
                    m = min(_CHUNK - c, stop - i)
                    self._lmv[c : c + m] = src[i : i + m]
                    self._n = c + m
                    i += m
                    if self._n == _CHUNK:
                        r = self._flush()
                        if r != _OK:
                            self._drop(r)  # the rest of the line is scanned as text
                            break
                if self._state != _LINE:
                    continue
                if k >= 0:
                    self._drop(_BAD)  # marker byte inside a line: broken line, resync there
                    i = k
                    continue
                if j < 0:
                    break
                i = j + 1
                f = self._end_line()
                if f is not None:
                    if out is None:
                        out = [f]
                    else:
                        out.append(f)
            elif st == _OUT:
                k = _find_marker(buf, i, n)
                if k < 0:
                    break
                self._state = _M_PKT if buf[k] == _PKT_1 else _M_FRAG
                i = k + 1
            else:
                b = buf[i]
                if st == _M_PKT and b == _PKT_2:
                    if self._active:
                        self.format_errors += 1  # unfinished packet abandoned
                    self._active = True
                    self._pos = 0
                    self._need = 0
                    self._padded = False
                    self._n = 0
                    self._state = _LINE
                    i += 1
                elif st == _M_FRAG and b == _FRAG_2:
                    i += 1
                    if self._active:
                        self._n = 0
                        self._state = _LINE
                    else:
                        self.format_errors += 1  # continuation with no packet: skip the line as text
                        self._state = _OUT
                else:
                    self._state = _OUT  # not a marker after all; look at this byte again
        return out
