"""Host extras of topup_token: seed sequences of top-ups, reloads, damage, resets, charges and signed tokens (the
opcodes are in the probe's docstring)."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator


def topup(tid: int, amount: int, kind: int = 0) -> bytes:
    return bytes([0 | kind << 3]) + struct.pack(">HI", tid, amount)


def damage(raw: bytes) -> bytes:
    return bytes([2, len(raw)]) + raw


def reset(balance: int, top: int) -> bytes:
    return b"\x03" + struct.pack(">iH", balance, top)


RELOAD = b"\x01"


def record(ledger, tokens, import_mj=None, day=None, month=None) -> bytes:
    return json.dumps({"kind": "credit", "v": 1, "data": {"ledger": ledger, "tokens": tokens, "import_mj": import_mj,
                                                          "day": day, "month": month}}).encode()


def seeds() -> Iterator[bytes]:
    yield topup(1, 10000) + topup(1, 10000) + RELOAD + topup(1, 10000)
    yield topup(2, 500) + topup(1, 500) + topup(66, 1) + topup(1, 5) + topup(2, 5) + RELOAD
    yield topup(3, 0) + topup(3, 100000001) + topup(0, 5) + topup(5, 5, 1) + topup(5, 5, 2) + topup(5, 5, 3) + \
        bytes([0x28]) + struct.pack(">HI", 5, 5)
    yield topup(1, 1000) + damage(b'{"kind": "credit", "v": 1, "data": {"ledger": [1, 2], "tokens": [1, 1]}}') + \
        topup(2, 500) + reset(4200, 1) + topup(1, 1000) + topup(2, 500) + RELOAD
    yield topup(10, 1000) + reset(0, 3) + topup(10, 1000) + topup(4, 1) + topup(2, 1)
    yield damage(record([5, 0, 0, 0, 0, 0], [3, 7])) + topup(1, 1) + topup(4, 1) + RELOAD
    yield damage(record([5, 0, 0, 0, 0, 0], [0, 1])) + topup(1, 1)
    yield damage(record([5, 3600000000, 0, 0, 0, 0], [3, 7]))
    yield damage(record([5, 0, 0, 0, 0, 0], [3, 7], import_mj=1.5))
    yield damage(record([5, 0, 0, 0, 0, 0], [3, 7], day=True))
    yield damage(b'{"kind": "credit", "v": 2, "data": {}}') + topup(1, 1)
    yield damage(b'{"kind": "credit", "v": 1, "data": []}')
    yield damage(b'{"kind": "credit", "v": 1, "data": "x"}')
    yield damage(b"[" * 200)
    yield damage(b"\xff\xfe")
    yield topup(1, 5000) + b"\x04" + struct.pack(">I", 1) + b"\x04" + struct.pack(">I", 9) + b"\x05\x00\x01" + \
        b"\x05\x00\x03" + b"\x06" + b"\x06" + topup(2, 100) + b"\x06" + RELOAD
    yield b"\x07\x00\x07\x00\x07\x01\x07\x04\x07\x03\x07\x02" + RELOAD
    yield b"\x07\x05\x07\x06\x07\x07\x07\x08\x07\x09\x07\x0a"
    yield topup(70, 1) + b"\x07\x00" + topup(6, 1) + topup(5, 1)
