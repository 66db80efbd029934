"""Host extras of dlms_set: SETs a head-end sends (gurux-dlms's encodings of a clock time, a time zone, a load limit
and its durations), typed and raw, with values at and past the checks' edges."""

from __future__ import annotations

from collections.abc import Iterator

TYPED = 8  # the probe's sel bit 3


def _rec(sel: int, body: bytes) -> bytes:
    return bytes((sel, len(body))) + body


def _dt(y: int, mo: int, d: int, h: int, mi: int, s: int, dev: int = 0x8000) -> bytes:
    """A COSEM date-time's 12 bytes (day of week not specified, hundredths 0, status 0)."""
    return bytes((y >> 8, y & 0xFF, mo, d, 0xFF, h, mi, s, 0, dev >> 8, dev & 0xFF, 0))


def seeds() -> Iterator[bytes]:
    # the clock: a right time in local time (deviation not specified), one with a deviation, impossible dates, out of
    # range years, a field not specified, the wrong type and length
    for body in (_dt(2030, 3, 17, 10, 0, 0), _dt(2030, 3, 17, 4, 30, 0, (-330) & 0xFFFF), _dt(2030, 2, 30, 0, 0, 0),
                 _dt(2030, 3, 17, 25, 0, 0), _dt(2024, 12, 31, 23, 59, 59), _dt(2101, 1, 1, 0, 0, 0),
                 _dt(0xFFFF, 3, 17, 10, 0, 0), _dt(2030, 3, 17, 10, 0, 0, 721)):
        yield _rec(TYPED | 0, body)
        yield _rec(0, b"\x09\x0c" + body)
    yield _rec(0, b"\x09\x0b" + _dt(2030, 3, 17, 10, 0, 0)[:11])
    yield _rec(0, b"\x06\x00\x00\x00\x00")
    # the time zone (minutes from local time to UTC: India -330), the edges of -840..720 east, twice the same
    for tz in (-330, 0, 330, -840, 720, -841, 721, 0x7FFF, -0x8000):
        yield _rec(TYPED | 1, (tz & 0xFFFF).to_bytes(2, "big"))
    yield _rec(TYPED | 1, ((-330) & 0xFFFF).to_bytes(2, "big")) * 2
    yield _rec(1, b"\x12\xfe\xb6")  # long-unsigned, not long
    # the limiter: thresholds (W, a double-long: negative refused), durations (s), emergency (not written), the
    # monitored value (not written), a data object
    for v in (0, 3000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1):
        yield _rec(TYPED | 2, v.to_bytes(4, "big"))
        yield _rec(TYPED | 3, v.to_bytes(4, "big"))
        yield _rec(TYPED | 5, v.to_bytes(4, "big"))
        yield _rec(TYPED | 6, v.to_bytes(4, "big"))
    yield _rec(TYPED | 2, (3000).to_bytes(4, "big")) + _rec(TYPED | 5, (10).to_bytes(4, "big")) + _rec(
        TYPED | 6, (60).to_bytes(4, "big"))
    yield _rec(TYPED | 4, (3000).to_bytes(4, "big"))
    yield _rec(2, b"\x06\x00\x00\x0b\xb8")  # double-long-unsigned for a threshold
    yield _rec(7, b"\x05\x00\x00\x0b\xb8")
    yield _rec(0, b"")
    # everything at once, as a head-end's commissioning sends it
    yield (_rec(TYPED | 1, ((-330) & 0xFFFF).to_bytes(2, "big")) + _rec(TYPED | 0, _dt(2030, 3, 17, 10, 0, 0))
           + _rec(TYPED | 2, (5000).to_bytes(4, "big")) + _rec(TYPED | 5, (30).to_bytes(4, "big"))
           + _rec(TYPED | 6, (120).to_bytes(4, "big")))
