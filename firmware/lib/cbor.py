"""Compact CBOR (RFC 8949) for the SMP protocol; runs unchanged on MicroPython boards, the unix VM and CPython.

dumps(obj) -> bytes
    None, bool, int (-2**64 .. 2**64-1, else ValueError), float (always float64), str, bytes/bytearray/memoryview,
    list/tuple, dict with str or int keys (else TypeError). Deterministic (RFC 8949 4.2.1 core requirements except
    floats): definite lengths, shortest heads, map keys sorted bytewise by their encoding.

loads(data, max_depth=16, max_items=1024) -> obj
    Strict decoder for a bytes-like object (read through a memoryview, never copied whole). Accepts definite and
    indefinite strings/arrays/maps, non-shortest heads, float16/32/64, false/true/null/undefined (-> None) and tags
    (the tag number is skipped, the tagged item returned). The whole input must be one item. Byte strings come back
    as bytes, text as str (strict RFC 3629 UTF-8 on every runtime), maps as dicts with str or int keys (no
    duplicates). Malformed or unsupported input raises CBORError (a ValueError) and nothing else; a non-bytes-like
    argument raises TypeError.

Limits protecting a small heap: nesting depth (arrays, maps and tags) at most max_depth, at most max_items items in
total (string chunks included), and every declared length is checked against the remaining input before anything
is allocated, so an n-byte input can never make the decoder allocate much more than n bytes plus n objects.
"""

import struct

from micropython import const  # on CPython: meterkit/mpy_compat/micropython.py

MAX_DEPTH = const(16)
MAX_ITEMS = const(1024)

_BREAK = const(0xFF)


class CBORError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------------------- encode


def _head(out, mt, n):
    # mt is the major type already shifted into bits 7..5; shortest argument encoding (RFC 8949 4.2.1)
    if n < 24:
        out.append(mt | n)
    elif n < 0x100:
        out.append(mt | 24)
        out.append(n)
    elif n < 0x10000:
        out.append(mt | 25)
        out.extend(struct.pack(">H", n))
    elif n < 0x100000000:
        out.append(mt | 26)
        out.extend(struct.pack(">I", n))
    elif n < 0x10000000000000000:
        out.append(mt | 27)
        out.extend(struct.pack(">Q", n))
    else:
        raise ValueError("integer out of CBOR range")


def _enc(out, obj, depth):
    # bool first: on CPython bool is an int subclass (on MicroPython it is not)
    if obj is None:
        out.append(0xF6)
    elif obj is True:
        out.append(0xF5)
    elif obj is False:
        out.append(0xF4)
    elif isinstance(obj, int):
        if obj >= 0:
            _head(out, 0x00, obj)
        else:
            _head(out, 0x20, -1 - obj)
    elif isinstance(obj, str):
        b = obj.encode("utf-8")
        _head(out, 0x60, len(b))
        out.extend(b)
    elif isinstance(obj, (bytes, bytearray)):
        _head(out, 0x40, len(obj))
        out.extend(obj)
    elif isinstance(obj, memoryview):
        mb = bytes(obj)  # len() of a memoryview counts items, not bytes
        _head(out, 0x40, len(mb))
        out.extend(mb)
    elif isinstance(obj, float):
        out.append(0xFB)
        out.extend(struct.pack(">d", obj))
    elif isinstance(obj, (list, tuple)):
        if depth >= MAX_DEPTH:
            raise ValueError("depth")
        _head(out, 0x80, len(obj))
        for x in obj:
            _enc(out, x, depth + 1)
    elif isinstance(obj, dict):
        if depth >= MAX_DEPTH:
            raise ValueError("depth")
        _head(out, 0xA0, len(obj))
        # keys in bytewise order of their encodings (RFC 8949 4.2.1): MicroPython dicts keep no insertion order,
        # so this is what makes the output identical on every runtime
        keys = []
        for k in obj:
            if not isinstance(k, (str, int)) or k is True or k is False:
                raise TypeError("map key type")
            kb = bytearray()
            _enc(kb, k, depth + 1)
            keys.append((bytes(kb), k))
        if len(keys) > 1:
            keys.sort()  # encodings of distinct str/int keys differ, so the keys themselves are never compared
        for ke, k in keys:
            out.extend(ke)
            _enc(out, obj[k], depth + 1)
    else:
        raise TypeError("cannot encode " + type(obj).__name__)


def dumps(obj):
    out = bytearray()
    _enc(out, obj, 0)
    return bytes(out)


# ---------------------------------------------------------------------------------------------------------- decode


def _half(h):
    # IEEE 754 binary16 by hand: MicroPython's struct has no 'e' on every port
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    if e == 0:
        v = m / 16777216.0  # m * 2**-24, subnormal
    elif e == 31:
        v = float("nan") if m else float("inf")
    else:
        v = (m + 1024) * (2.0 ** (e - 25))
    return -v if h & 0x8000 else v


def _utf8_ok(mv, i, end):
    # Unicode Table 3-7 well-formed sequences: no overlongs, no surrogates, nothing above U+10FFFF.
    # MicroPython's str(b, 'utf-8') accepts all three, so both runtimes go through this check.
    while i < end:
        c = mv[i]
        i += 1
        if c < 0x80:
            continue
        if 0xC2 <= c <= 0xDF:
            n = 1
            lo = 0x80
            hi = 0xBF
        elif 0xE0 <= c <= 0xEF:
            n = 2
            lo = 0xA0 if c == 0xE0 else 0x80
            hi = 0x9F if c == 0xED else 0xBF
        elif 0xF0 <= c <= 0xF4:
            n = 3
            lo = 0x90 if c == 0xF0 else 0x80
            hi = 0x8F if c == 0xF4 else 0xBF
        else:
            return False
        if i + n > end:
            return False
        c = mv[i]
        if c < lo or c > hi:
            return False
        for j in range(i + 1, i + n):
            c = mv[j]
            if c < 0x80 or c > 0xBF:
                return False
        i += n
    return True


class _Decoder:
    def __init__(self, mv, max_depth, max_items):
        self.mv = mv
        self.pos = 0
        self.end = len(mv)
        self.depth = max_depth
        self.items = max_items

    def _text(self, p, n):
        mv = self.mv
        try:
            s = str(mv[p : p + n], "utf-8")
        except ValueError:  # UnicodeError / UnicodeDecodeError
            raise CBORError("invalid utf-8") from None
        if len(s) != n and not _utf8_ok(mv, p, p + n):  # all-ASCII text needs no second look
            raise CBORError("invalid utf-8")
        return s

    def _chunks(self, mt):
        # indefinite-length string: definite chunks of the same major type up to a break
        mv = self.mv
        parts = []
        while True:
            p = self.pos
            if p >= self.end:
                raise CBORError("truncated")
            ib = mv[p]
            if ib == _BREAK:
                self.pos = p + 1
                break
            if ib >> 5 != mt or ib & 31 == 31:
                raise CBORError("indefinite chunk type")
            parts.append(self.item(0))
        if mt == 2:
            return b"".join(parts)
        return "".join(parts)

    def item(self, depth):
        mv = self.mv
        p = self.pos
        end = self.end
        if p >= end:
            raise CBORError("truncated")
        self.items -= 1
        if self.items < 0:
            raise CBORError("too many items")
        ib = mv[p]
        p += 1
        mt = ib >> 5
        ai = ib & 31
        if ai < 24:
            n = ai
        elif ai == 24:
            if p + 1 > end:
                raise CBORError("truncated")
            n = mv[p]
            p += 1
        elif ai == 25:
            if p + 2 > end:
                raise CBORError("truncated")
            n = (mv[p] << 8) | mv[p + 1]
            p += 2
        elif ai == 26:
            if p + 4 > end:
                raise CBORError("truncated")
            n = struct.unpack_from(">I", mv, p)[0]
            p += 4
        elif ai == 27:
            if p + 8 > end:
                raise CBORError("truncated")
            n = struct.unpack_from(">Q", mv, p)[0]
            p += 8
        elif ai < 31:
            raise CBORError("reserved additional info")
        else:
            n = -1  # indefinite length / break
        self.pos = p

        if mt == 0:
            if n < 0:
                raise CBORError("indefinite integer")
            return n
        if mt == 1:
            if n < 0:
                raise CBORError("indefinite integer")
            return -1 - n
        if mt == 2 or mt == 3:
            if n < 0:
                return self._chunks(mt)
            if n > end - p:
                raise CBORError("length exceeds input")
            self.pos = p + n
            if mt == 2:
                return bytes(mv[p : p + n])
            return self._text(p, n)
        if mt == 7:
            if ai == 20:
                return False
            if ai == 21:
                return True
            if ai == 22 or ai == 23:
                return None  # null, undefined
            if ai == 25:
                return _half(n)
            if ai == 26:
                return struct.unpack_from(">f", mv, p - 4)[0]
            if ai == 27:
                return struct.unpack_from(">d", mv, p - 8)[0]
            if ai == 31:
                raise CBORError("unexpected break")
            if ai == 24 and n < 32:
                raise CBORError("invalid simple value")
            raise CBORError("unsupported simple value")

        # containers and tags: mt 4 array, 5 map, 6 tag
        if depth >= self.depth:
            raise CBORError("depth")
        depth += 1
        if mt == 6:
            if n < 0:
                raise CBORError("indefinite tag")
            return self.item(depth)  # tag number ignored
        if mt == 4:
            out = []
            if n >= 0:
                if n > end - p:  # every item takes at least one byte
                    raise CBORError("length exceeds input")
                if n > self.items:
                    raise CBORError("too many items")
                for _ in range(n):
                    out.append(self.item(depth))
                return out
            while True:
                p = self.pos
                if p >= end:
                    raise CBORError("truncated")
                if mv[p] == _BREAK:
                    self.pos = p + 1
                    return out
                out.append(self.item(depth))
        # mt == 5: map
        m = {}
        if n >= 0:
            if n > (end - p) >> 1:  # a key and a value, one byte each at least
                raise CBORError("length exceeds input")
            if n + n > self.items:
                raise CBORError("too many items")
        while n:
            if n < 0:
                p = self.pos
                if p >= end:
                    raise CBORError("truncated")
                if mv[p] == _BREAK:
                    self.pos = p + 1
                    break
            else:
                n -= 1
            k = self.item(depth)
            t = type(k)
            if t is not str and t is not int:
                raise CBORError("map key type")
            if k in m:
                raise CBORError("duplicate key")
            m[k] = self.item(depth)
        return m


def loads(data, max_depth=MAX_DEPTH, max_items=MAX_ITEMS):
    d = _Decoder(memoryview(data), max_depth, max_items)
    v = d.item(0)
    if d.pos != d.end:
        raise CBORError("trailing bytes")
    return v
