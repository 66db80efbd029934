"""The DLMS/COSEM HDLC data link layer (IEC 62056-46, the profile IS 15959 names for the optical and RS-485
ports), server side; runs unchanged on MicroPython boards, the VM and CPython.

A frame on the line: 0x7E | format (2) | destination address (1, 2 or 4) | source address (1, 2 or 4) | control |
HCS (2, only when an information field follows) | information | FCS (2) | 0x7E.
- format: 0b1010 (frame format type 3) in the top four bits, the segmentation bit 0x0800, and an 11-bit length that
  counts every byte between the flags. There is no byte stuffing: the length, not a flag, ends a frame, and a flag
  may be shared by the end of one frame and the start of the next.
- addresses: each byte carries 7 bits, its lowest bit set on the last byte. A server's address is its upper
  (logical device) address, 7 bits in one byte or 14 bits in two, optionally followed by its lower (physical)
  address in as many bytes: one, two or four bytes in all. A client's address is one byte: its SAP.
- HCS and FCS: CRC-16/X.25 (RFC 1662's FCS-16), sent least significant byte first; HCS covers format to control,
  FCS everything from the format field to the end of the information.

Deframer(max_info) assembles frames from any fragments of the line; its `on_frame(frame)` receives each frame whose
length, HCS and FCS are right (a `Frame`, valid only during the call: its `info` is a view of the deframer's buffer).
Everything else is counted (`bad_frames`: a wrong format, a wrong check sequence, a length below the smallest frame
or a frame not closed by a flag; `oversize`: longer than max_info allows) and the bytes after its opening flag are
scanned again for the next one (noise that looks like a frame's start never swallows the real frame behind it).
Memory is one buffer of max_info + FRAME_OVERHEAD bytes, whatever the line carries, and a copy of a false start's
bytes while they are scanned again.

Link(server_address, on_apdu) is the secondary station of one logical device: `receive(frame, now_ms)` takes a
frame addressed to it and returns the frame to send back (a view of the link's output buffer, valid until the next
call) or None. _SNRM connects (_UA, with the negotiated information-field lengths and window), _DISC disconnects (_UA,
or _DM when not connected), I-frames carry the LLC header and an APDU (segmented in either direction, one frame in
flight: window 1), _RR asks for the next segment of a response. `on_apdu(apdu)` answers a whole request APDU (a
memoryview, LLC stripped) with a response APDU (bytes-like) or None; `on_disconnect()`, if set, runs whenever the
link leaves the connected state (_DISC, a new _SNRM, the inactivity timeout), so the association above is released.
"""

import time

from micropython import const

_FLAG = const(0x7E)
_FORMAT = const(0xA0)  # frame format type 3, in the first format byte
_SEGMENT = const(0x08)  # the segmentation bit, in the first format byte
FRAME_OVERHEAD = const(15)  # format 2, addresses up to 4 + 4, control 1, HCS 2, FCS 2 (flags not stored)
_MIN_LEN = const(7)  # format 2, two one-byte addresses, control, FCS 2

# control field (the P/F bit is 0x10)
_PF = const(0x10)
_SNRM = const(0x83)
_DISC = const(0x43)
_UA = const(0x63)
_DM = const(0x0F)
_FRMR = const(0x87)
_UI = const(0x03)
_RR = const(0x01)  # | N(R) << 5
_RNR = const(0x05)

# the LLC header that opens an information field's first segment (IEC 62056-46 §6.4.4.4.3.4)
LLC_REQUEST = b"\xe6\xe6\x00"
LLC_RESPONSE = b"\xe6\xe7\x00"

# _SNRM / _UA parameter negotiation (ISO/IEC 13239 format 0x81, group 0x80)
_NEG_FORMAT = const(0x81)
_NEG_GROUP = const(0x80)
_MAX_TX = const(0x05)
_MAX_RX = const(0x06)
_WIN_TX = const(0x07)
_WIN_RX = const(0x08)
_DEFAULT_INFO = const(128)  # the default maximum information field length, each way
_MIN_INFO = const(32)  # a client proposing less is refused (DM): an AARE would take too many frames

# CRC-16/X.25: reflected polynomial 0x8408, initial 0xFFFF, final XOR 0xFFFF; a 16-entry nibble table (32 bytes:
# frames are short, two lookups a byte cost less RAM than a 512-byte table)
def _nibbles():
    out = []
    for i in range(16):
        c = i
        for _ in range(4):
            c = (c >> 1) ^ 0x8408 if c & 1 else c >> 1
        out.append(c)
    return tuple(out)


_NIBBLE = _nibbles()


def crc16(buf, start, end):
    """CRC-16/X.25 of buf[start:end]."""
    t = _NIBBLE
    c = 0xFFFF
    for i in range(start, end):
        c ^= buf[i]
        c = (c >> 4) ^ t[c & 15]
        c = (c >> 4) ^ t[c & 15]
    return c ^ 0xFFFF


def _address(buf, i, end):
    """The address field at buf[i:]: (value, index after it); value -1 when it is not 1, 2 or 4 bytes long. A
    one-byte address is its 7 bits; longer ones pack 7 bits a byte (a server's upper address in the high half)."""
    v = 0
    k = 0
    while i < end:
        b = buf[i]
        v = (v << 7) | (b >> 1)
        i += 1
        k += 1
        if b & 1:
            return (v if k in (1, 2, 4) else -1), i
        if k == 4:
            break
    return -1, i


def put_address(buf, i, value, size):
    """Write `value` as a `size`-byte address (7 bits a byte, the last byte's low bit set); return the index after."""
    for k in range(size - 1, -1, -1):
        buf[i + k] = ((value & 0x7F) << 1) | (1 if k == size - 1 else 0)
        value >>= 7
    return i + size


def server_address(upper, lower=None, size=None):
    """A server's address as a value and its size in bytes: the upper (logical device) address alone, or with the
    lower (physical) address; sizes 1 (upper < 128, no lower), 2 (both < 128) or 4 (both < 16384)."""
    if lower is None:
        if size in (None, 1) and upper < 128:
            return upper, 1
        return upper << 14 if size == 4 else upper << 7, size or 2
    if size == 4 or upper >= 128 or lower >= 128:
        return (upper << 14) | lower, 4
    return (upper << 7) | lower, 2


class Frame:
    """One received frame, its fields decoded (reused by the deframer: valid only during on_frame)."""

    def __init__(self):
        self.dst = 0
        self.dst_size = 0
        self.src = 0
        self.src_size = 0
        self.control = 0
        self.segmented = False
        self.info = None  # a memoryview of the information field (empty when there is none)


class Deframer:
    """HDLC frames out of any fragments of the line (see the module docstring)."""

    def __init__(self, max_info=_DEFAULT_INFO):
        self._buf = bytearray(max_info + FRAME_OVERHEAD)
        self._mv = memoryview(self._buf)
        self._n = 0
        self._need = 0  # the frame's length from its format field (0 while it is not read yet)
        self._hdr = False  # its header (addresses, control, HCS) checked
        self._in = False  # after an opening flag
        self.frame = Frame()
        self.on_frame = None
        self.frames = 0
        self.bad_frames = 0
        self.oversize = 0

    def reset(self):
        self._n = 0
        self._need = 0
        self._hdr = False
        self._in = False

    def feed(self, data, n=None):
        """Take the next bytes of the line (data[:n], all of it when n is None)."""
        rest = self._run(data, len(data) if n is None else n)
        while rest is not None:  # a false start: its bytes are looked at again for the next flag
            rest = self._run(rest, len(rest))

    def _again(self, k, b, data, i, n):
        """After a false start (a flag in noise, or a damaged frame): the bytes it took — its k stored bytes, then
        the byte `b` that showed it (None when stored) — and the rest of this input, to be scanned again from the
        byte after its opening flag, so that a real frame inside them is not lost with it."""
        self.reset()
        return bytes(self._mv[:k]) + (bytes((b,)) if b is not None else b"") + bytes(data[i:n])

    def _run(self, data, n):
        buf = self._buf
        cap = len(buf)
        i = 0
        while i < n:
            b = data[i]
            i += 1
            if not self._in:
                if b == _FLAG:
                    self._in = True
                    self._n = 0
                    self._need = 0
                continue
            k = self._n
            if self._need == 0:
                if k == 0:
                    if b == _FLAG:
                        continue  # back-to-back flags: still between frames
                    if b & 0xF0 != _FORMAT:
                        self._bad()  # (the byte is no flag: hunting goes on from the next one)
                        continue
                    buf[0] = b
                    self._n = 1
                    continue
                need = ((buf[0] & 7) << 8) | b
                if need < _MIN_LEN:
                    self.bad_frames += 1
                    return self._again(1, b, data, i, n)
                if need > cap:
                    self.oversize += 1
                    return self._again(1, b, data, i, n)
                buf[1] = b
                self._n = 2
                self._need = need
                continue
            if k < self._need:
                # copy the rest of the frame that this fragment holds in one slice
                m = min(self._need - k, n - i + 1)
                buf[k:k + m] = data[i - 1:i - 1 + m]
                k += m
                self._n = k
                i += m - 1
                if not self._hdr:
                    h = self._header(k)
                    if h < 0:  # addresses or HCS wrong: a false start, known before its length is read
                        self.bad_frames += 1
                        return self._again(k, None, data, i, n)
                    self._hdr = h > 0
                continue
            # the byte after the frame must be a flag: it closes this frame and may open the next
            if b != _FLAG:
                self.bad_frames += 1
                return self._again(k, b, data, i, n)
            self._n = 0
            self._need = 0
            self._hdr = False
            if not self._frame(k):
                self.bad_frames += 1
                return self._again(k, b, data, i, n)
        return None

    def _bad(self):
        self.bad_frames += 1
        self.reset()

    def _header(self, k):
        """With k bytes of a frame stored: 1 its addresses, control and HCS are right (or it has no information
        field, so no HCS), 0 not enough bytes yet to tell, -1 they are wrong."""
        buf = self._buf
        i = 2
        for _ in range(2):  # destination, then source: 1, 2 or 4 bytes, the last with its low bit set
            j = 0
            while True:
                if i >= k:
                    return 0
                b = buf[i]
                i += 1
                j += 1
                if b & 1:
                    break
                if j == 4:
                    return -1
            if j == 3:
                return -1
        end = i + 1  # after the control field
        need = self._need
        if need == end + 2:
            return 1  # no information field
        if need < end + 5:  # too short for an FCS, or for an HCS, information and FCS
            return -1
        if k < end + 2:
            return 0
        return 1 if crc16(buf, 0, end) == buf[end] | (buf[end + 1] << 8) else -1

    def _frame(self, n):
        """Check and decode buf[:n] and hand it to on_frame; False when it is not a frame (its checks fail)."""
        buf = self._buf
        if crc16(buf, 0, n - 2) != buf[n - 2] | (buf[n - 1] << 8):
            return False
        f = self.frame
        f.dst, i = _address(buf, 2, n - 3)
        f.dst_size = i - 2
        k = i
        f.src, i = _address(buf, i, n - 3)
        f.src_size = i - k
        if f.dst < 0 or f.src < 0 or i > n - 3:
            return False
        f.control = buf[i]
        i += 1
        if n - i > 2:  # an information field: the header check sequence comes first
            if n - i < 5 or crc16(buf, 0, i) != buf[i] | (buf[i + 1] << 8):
                return False
            f.info = self._mv[i + 2:n - 2]
        else:
            f.info = self._mv[0:0]
        f.segmented = bool(buf[0] & _SEGMENT)
        self.frames += 1
        if self.on_frame is not None:
            self.on_frame(f)
        return True


def encode(buf, dst, dst_size, src, src_size, control, info=None, segmented=False):
    """Write a whole frame, flags included, into buf; return its length. `info` is bytes-like or None."""
    m = len(info) if info else 0
    n = 2 + dst_size + src_size + 1 + (m + 2 if m else 0) + 2
    buf[0] = _FLAG
    buf[1] = _FORMAT | (_SEGMENT if segmented else 0) | (n >> 8)
    buf[2] = n & 0xFF
    i = put_address(buf, 3, dst, dst_size)
    i = put_address(buf, i, src, src_size)
    buf[i] = control
    i += 1
    if m:
        c = crc16(buf, 1, i)
        buf[i] = c & 0xFF
        buf[i + 1] = c >> 8
        i += 2
        buf[i:i + m] = info
        i += m
    c = crc16(buf, 1, i)
    buf[i] = c & 0xFF
    buf[i + 1] = c >> 8
    buf[i + 2] = _FLAG
    return i + 3


def parameters(info):
    """The negotiation parameters in an _SNRM's or _UA's information field, as (max_tx, max_rx, window_tx,
    window_rx), each None when absent. ValueError for a field that is not the 0x81 0x80 group, or a parameter
    that overruns it or is longer than four bytes."""
    out = [None, None, None, None]  # type: list
    n = len(info)
    if n == 0:
        return out
    if n < 3 or info[0] != _NEG_FORMAT or info[1] != _NEG_GROUP or info[2] != n - 3:
        raise ValueError("negotiation field")
    i = 3
    while i < n:
        if i + 2 > n:
            raise ValueError("negotiation field")
        pid = info[i]
        size = info[i + 1]
        i += 2
        if size > 4 or i + size > n:
            raise ValueError("negotiation field")
        v = 0
        for k in range(size):
            v = (v << 8) | info[i + k]
        i += size
        if _MAX_TX <= pid <= _WIN_RX:
            out[pid - _MAX_TX] = v
    return out


def put_parameters(buf, i, max_tx, max_rx, window_tx, window_rx):
    """Write the 0x81 0x80 negotiation group (lengths in two bytes, windows in four, as IEC 62056-46's example
    _UA does); return the index after it."""
    buf[i] = _NEG_FORMAT
    buf[i + 1] = _NEG_GROUP
    buf[i + 2] = 20
    i += 3
    for pid, v, size in ((_MAX_TX, max_tx, 2), (_MAX_RX, max_rx, 2), (_WIN_TX, window_tx, 4), (_WIN_RX, window_rx, 4)):
        buf[i] = pid
        buf[i + 1] = size
        for k in range(size):
            buf[i + 2 + k] = (v >> (8 * (size - 1 - k))) & 0xFF
        i += 2 + size
    return i


# link states
DISCONNECTED = const(0)  # NDM
CONNECTED = const(1)  # NRM


class Link:
    """The secondary station of one logical device (see the module docstring)."""

    def __init__(self, address, address_size, on_apdu, max_info=_DEFAULT_INFO, max_apdu=512, timeout_ms=120000):
        self.address = address
        self.address_size = address_size
        self.on_apdu = on_apdu
        self.on_disconnect = None
        self.max_info = max_info  # what this end receives and sends at most
        self.timeout_ms = timeout_ms
        self.state = DISCONNECTED
        self.client = 0
        self.tx_info = _DEFAULT_INFO  # negotiated: the longest information field this end may send
        self.rx_info = _DEFAULT_INFO
        self._vs = 0  # V(S): the N(S) of the next I-frame sent
        self._vr = 0  # V(R): the N(S) expected of the next I-frame received
        self._last_ms = None
        self._apdu = bytearray(max_apdu + 3)  # a request's segments, reassembled: the APDU and its LLC header
        self._apdu_n = 0
        self._apdu_over = False
        self._resp = b""  # the response APDU (LLC included) being sent in segments; b"" when none is
        self._resp_at = 0
        self._out = bytearray(max_info + FRAME_OVERHEAD + 2)
        self._out_n = 0  # the last frame sent (a repeat of it answers a repeated poll)
        self._answered = -1  # the N(S) of the I-frame whose answer is that frame (-1: it answered something else)
        self.rejected = 0  # frames refused (_FRMR) or ignored as out of sequence

    def _send(self, control, info=None, segmented=False):
        self._out_n = encode(self._out, self.client, 1, self.address, self.address_size, control, info, segmented)
        return memoryview(self._out)[:self._out_n]

    def _repeat(self):
        return memoryview(self._out)[:self._out_n] if self._out_n else None

    def _drop(self):
        was = self.state == CONNECTED
        self.state = DISCONNECTED
        self._apdu_n = 0
        self._apdu_over = False
        self._resp = b""
        self._out_n = 0
        self._answered = -1
        if was and self.on_disconnect is not None:
            self.on_disconnect()

    def expired(self, now_ms):
        """Whether the inactivity timeout has passed; the link then disconnects (silently, as the standard asks)."""
        if (self.state == CONNECTED and self._last_ms is not None
                and time.ticks_diff(now_ms, self._last_ms) > self.timeout_ms):
            self._drop()
            return True
        return False

    def connected(self, now_ms):
        """Whether a client holds the link (one silent past the inactivity timeout is let go here)."""
        self.expired(now_ms)
        return self.state == CONNECTED

    def receive(self, f, now_ms):
        """Answer frame `f` (a Frame addressed to this link); None when nothing is to be sent."""
        if f.dst != self.address or f.dst_size != self.address_size or f.src_size != 1:
            return None  # not for this station, or not from a client (a client's address is one byte)
        self.expired(now_ms)
        c = f.control
        if not c & _PF:
            return None  # window 1: every frame a client sends polls; one that does not is not answered
        kind = c & ~_PF
        if self.state == CONNECTED and f.src != self.client:
            return None  # another client while one is connected: neither taken over nor disturbed, nor does it keep
            #             the link alive (the inactivity timeout frees a link whose client went away without DISC)
        self._last_ms = now_ms
        if kind == _SNRM:
            return self._snrm(f)
        if kind == _DISC:
            self.client = f.src
            if self.state != CONNECTED:
                return self._send(_DM | _PF)
            out = self._send(_UA | _PF)
            self._drop()  # a repeated DISC then gets DM
            return out
        if self.state != CONNECTED:
            if kind == _UI:
                return None
            self.client = f.src
            return self._send(_DM | _PF)
        if c & 1 == 0:
            return self._iframe(f, c)
        if kind & 0x0F == _RR:  # the client acknowledges and polls for the next segment
            return self._rr(c >> 5)
        if kind & 0x0F == _RNR:  # the client is busy: acknowledged, the next segment waits for its RR
            return self._send(_RR | _PF | (self._vr << 5))
        if kind == _UI:
            return None
        self.rejected += 1  # REJ, SREJ, UA, DM, FRMR from a client: not in IEC 62056-46's set for a client
        return self._send(_FRMR | _PF)

    def _snrm(self, f):
        try:
            max_tx, max_rx, _w_tx, _w_rx = parameters(f.info)
        except ValueError:  # refused: the link is left disconnected (_DM says so)
            self.rejected += 1
            self._drop()
            self.client = f.src
            return self._send(_DM | _PF)
        self._drop()
        self.client = f.src
        # the client's transmit length is this end's receive length, and the other way round
        rx = min(self.max_info, _DEFAULT_INFO if max_tx is None else max_tx)
        tx = min(self.max_info, _DEFAULT_INFO if max_rx is None else max_rx)
        if rx < _MIN_INFO or tx < _MIN_INFO:  # never more than the client takes; too little for an AARE: refused
            self.rejected += 1
            return self._send(_DM | _PF)
        self.rx_info = rx
        self.tx_info = tx
        self._vs = 0
        self._vr = 0
        self.state = CONNECTED
        buf = bytearray(23)
        put_parameters(buf, 0, self.tx_info, self.rx_info, 1, 1)
        return self._send(_UA | _PF, buf)

    def _ack(self, nr):
        """The client's N(R): whether it acknowledges the last I-frame sent (else that frame is to be repeated)."""
        return nr == self._vs

    def _iframe(self, f, c):
        ns = (c >> 1) & 7
        nr = c >> 5
        if ns != self._vr:
            # a repeat of the previous I-frame (the client missed the answer): send that answer again
            if ns == (self._vr - 1) & 7 and self._answered == ns:
                return self._repeat()
            self.rejected += 1
            return self._send(_RR | _PF | (self._vr << 5))
        if not self._ack(nr):
            self.rejected += 1
            return self._repeat()
        self._vr = (self._vr + 1) & 7
        self._resp = b""
        info = f.info
        m = len(info)
        if self._apdu_n + m > len(self._apdu):
            self._apdu_over = True
        elif not self._apdu_over:
            self._apdu[self._apdu_n:self._apdu_n + m] = info
            self._apdu_n += m
        self._answered = ns  # every return below answers this I-frame
        if f.segmented:
            return self._send(_RR | _PF | (self._vr << 5))
        n = self._apdu_n
        over = self._apdu_over
        self._apdu_n = 0
        self._apdu_over = False
        apdu = memoryview(self._apdu)[:n]
        if over or n < 3 or apdu[0] != 0xE6 or apdu[1] != 0xE6 or apdu[2] != 0:
            self.rejected += 1
            return self._send(_FRMR | _PF)
        answer = self.on_apdu(apdu[3:])
        if answer is None:
            return self._send(_RR | _PF | (self._vr << 5))
        self._resp = LLC_RESPONSE + bytes(answer)
        self._resp_at = 0
        return self._segment()

    def _segment(self):
        resp = self._resp
        at = self._resp_at
        m = min(self.tx_info, len(resp) - at)
        more = at + m < len(resp)
        out = self._send((self._vs << 1) | _PF | (self._vr << 5), memoryview(resp)[at:at + m], more)
        self._vs = (self._vs + 1) & 7
        self._resp_at = at + m
        if not more:
            self._resp = b""
        return out

    def _rr(self, nr):
        if self._resp and nr == self._vs:
            self._answered = -1  # the frame sent now is a later segment, not the I-frame's answer
            return self._segment()
        if nr != self._vs and self._out_n:
            return self._repeat()  # the client did not get the last segment
        return self._send(_RR | _PF | (self._vr << 5))
