"""Host extras of dlms_utility: seed sequences of the utility association (client SAP 48) as a head-end's client runs
it (the AARQ, HLS pass 3, ciphered GETs and ACTIONs, the release) and as an attacker at the probe might (pass 3 with
a wrong f, an ACTION before it, requests in the clear, a replayed AARQ), in the probe's record form: a mode byte (1
ciphered, 2 the AARQ, 3 pass 3, other raw) then its bytes."""

from __future__ import annotations

from collections.abc import Iterator

GET_VOLTAGE = bytes.fromhex("c001c1000301000c0700ff0200")
GET_LONG = bytes.fromhex("c001c100010000002a0000ff0200")
DISCONNECT = bytes.fromhex("c301c2004600006003 0aff01010f00".replace(" ", ""))
RECONNECT = bytes.fromhex("c301c3004600006003 0aff02010f00".replace(" ", ""))
RLRQ = bytes.fromhex("6200")
INITIATE = bytes.fromhex("01000000065f1f0400401e5dffff")


def _seq(*records: bytes) -> bytes:
    return b"".join(bytes([len(r)]) + r for r in records)


def seeds() -> Iterator[bytes]:
    aarq, proof = b"\x02", b"\x03"
    # a head-end's session: associate, prove, read, act, release
    yield _seq(aarq, proof, b"\x01" + GET_VOLTAGE, b"\x01" + DISCONNECT, b"\x01" + RECONNECT, b"\x00" + RLRQ)
    # a long value in blocks at a small PDU, then GET-next in turn and out of turn
    small = INITIATE[:-2] + b"\x00\x40"
    nxt = [b"\x01\xc0\x02\xc1" + k.to_bytes(4, "big") for k in range(4)]
    yield _seq(aarq + small, proof, b"\x01" + GET_LONG, nxt[1], nxt[2], nxt[3], nxt[1])
    # a wrong f(StoC), an ACTION before the proof, requests in the clear, a second AARQ mid-way
    yield _seq(aarq, proof + bytes(17), b"\x01" + DISCONNECT, aarq, b"\x01" + DISCONNECT, proof, b"\x00" + GET_VOLTAGE)
    yield _seq(aarq, b"\x00" + GET_VOLTAGE, b"\x00" + DISCONNECT, proof, b"\x00" + GET_VOLTAGE, b"\x01" + GET_VOLTAGE)
    # InitiateRequests the association refuses (version 5, no GET), and none
    yield _seq(aarq + INITIATE[:4] + b"\x05" + INITIATE[5:], aarq + INITIATE[:9] + b"\x00\x00\x00" + INITIATE[12:],
               aarq, proof, b"\x01" + GET_VOLTAGE)
    # services the association does not offer, ciphered: SET, ACTION with a list, an unknown tag
    yield _seq(aarq, proof, b"\x01\xc1\x01\xc1\x00\x03\x01\x00\x0c\x07\x00\xff\x02\x00\x12\x00\x01",
               b"\x01\xc3\x03\xc1\x01", b"\x01\x62\x00", b"\x01" + GET_VOLTAGE)
