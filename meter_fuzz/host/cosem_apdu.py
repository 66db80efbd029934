"""Host extras of cosem_apdu: seed sequences of the APDUs a real DLMS client sends (gurux-dlms 1.0.203's AARQ for the
public client and with a password, its GET.request and RLRQ, as in host_tests/firmware/test_cosem.py), variants the
association refuses, and GETs of every object the probe's model holds."""

from __future__ import annotations

from collections.abc import Iterator

AARQ = bytes.fromhex("601da109060760857405080101be10040e01000000065f1f0400401e5dffff")
AARQ_LLS = bytes.fromhex("6036a1090607608574050801018a0207808b0760857405080201ac0a80083132333435363738be10040e0100"
                         "0000065f1f0400401e5dffff")
GET_VOLTAGE = bytes.fromhex("c001c1000301000c0700ff0200")
GET_SCALER = bytes.fromhex("c001c1000301000c0700ff0300")
GET_LONG = bytes.fromhex("c001c100010000002a0000ff0200")
GET_LIST = bytes.fromhex("c001c1000f0000280000ff0200")  # the association's object list: class 15, attribute 2
RLRQ = bytes.fromhex("6200")


def _seq(*apdus: bytes) -> bytes:
    return b"".join(bytes([len(a)]) + a for a in apdus)


def _as(client: int, seq: bytes) -> bytes:
    """`seq` with empty records after it until the probe takes it as client index `client` (its length mod 3: 0 the
    public client, 1 the meter reader, 2 a client SAP with no association)."""
    while len(seq) % 3 != client:
        seq += b"\x00"
    return seq


def seeds() -> Iterator[bytes]:
    # the meter reader (SECRET right, then wrong; no mechanism; the public client's AARQ), and a client SAP of none
    wrong = AARQ_LLS.replace(b"12345678", b"12345679")
    yield _as(1, _seq(AARQ_LLS, GET_VOLTAGE, GET_LIST, b"\xc0\x02\xc1\x00\x00\x00\x01", RLRQ, GET_VOLTAGE))
    yield _as(1, _seq(wrong, GET_VOLTAGE, AARQ, GET_VOLTAGE, AARQ_LLS, GET_VOLTAGE))
    yield _as(2, _seq(AARQ, GET_VOLTAGE, AARQ_LLS, GET_VOLTAGE))
    small_pdu = AARQ[:-2] + b"\x00\x10"
    yield _seq(AARQ, GET_VOLTAGE, GET_SCALER, GET_LONG, RLRQ, GET_VOLTAGE)
    yield _seq(GET_VOLTAGE, AARQ, GET_VOLTAGE[:11] + b"\xee\x00", GET_VOLTAGE[:12] + b"\x01\x01\x02\x00")
    yield _seq(AARQ_LLS, GET_VOLTAGE, AARQ, GET_VOLTAGE)
    yield _seq(small_pdu, GET_LONG, GET_VOLTAGE)
    yield _seq(AARQ.replace(b"\x05\x08\x01\x01", b"\x05\x08\x01\x03"), GET_VOLTAGE)
    yield _seq(AARQ.replace(b"\x00\x06\x5f\x1f", b"\x00\x05\x5f\x1f"), AARQ, b"\xc0\x02\xc1\x00\x00\x00\x01",
               b"\xc0\x03\x41\x02", b"\xd8\x01\x01", b"\x62\x03\x80\x01\x00")
    yield _seq(AARQ, AARQ[:-3], GET_VOLTAGE)
    # GET with block transfer: a long value at a small PDU, the nexts in turn, out of turn, with none under way
    nxt = [b"\xc0\x02\xc1" + k.to_bytes(4, "big") for k in range(4)]
    yield _seq(AARQ[:-2] + b"\x00\x30", GET_LONG, nxt[1], nxt[2], nxt[3], nxt[1])
    yield _seq(AARQ[:-2] + b"\x00\x30", GET_LONG, nxt[3], GET_LONG, GET_VOLTAGE, nxt[1])
    yield _seq(AARQ, GET_LIST, nxt[1], nxt[2], RLRQ, nxt[3])
