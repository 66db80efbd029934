"""Host extras of hdlc_frame: seed lines built from what a real DLMS client sends over HDLC (gurux-dlms 1.0.203's
SNRM, AARQ, RR and DISC bytes for client SAP 16 and server 1, as in host_tests/firmware/test_hdlc.py) and from the
firmware's own encoder: negotiated SNRMs, segmented requests, the RR polls of a segmented response, frames for other
addresses, shared and doubled flags, damaged check sequences and noise, each behind the probe's mode byte."""

from __future__ import annotations

from collections.abc import Iterator

from meter_fuzz import paths

paths.firmware_on_path()
from app import hdlc  # noqa: E402  (the firmware's folder is on the path just above)

SNRM = bytes.fromhex("7ea0070321930f017e")
AARQ = bytes.fromhex("7ea02b032110fbafe6e600601da109060760857405080101be10040e01000000065f1f0400401e5dffff91237e")
DISC = bytes.fromhex("7ea00703215303c77e")


def _frame(control: int, info: bytes = b"", segmented: bool = False, dst: int = 1, dst_size: int = 1,
           src: int = 16) -> bytes:
    buf = bytearray(len(info) + 32)
    n = hdlc.encode(buf, dst, dst_size, src, 1, control, info or None, segmented)
    return bytes(buf[:n])


def _i(ns: int, nr: int, info: bytes, segmented: bool = False) -> bytes:
    return _frame((ns << 1) | 0x10 | (nr << 5), info, segmented)


def _negotiated(max_tx: int, max_rx: int) -> bytes:
    neg = bytearray(23)
    hdlc.put_parameters(neg, 0, max_tx, max_rx, 1, 1)
    return _frame(0x93, bytes(neg))


def seeds() -> Iterator[bytes]:
    get = hdlc.LLC_REQUEST + bytes.fromhex("c001c100080000010000ff0200")  # GET clock.time
    long_req = hdlc.LLC_REQUEST + bytes(range(150))
    lines = [
        SNRM + AARQ + DISC,
        AARQ,  # before any SNRM: DM
        SNRM + _i(0, 0, get) + _frame(0x11 | (1 << 5)) + _frame(0x11 | (1 << 5)) + DISC,
        _negotiated(64, 512) + _i(0, 0, long_req[:64], True) + _i(1, 0, long_req[64:128], True)
        + _i(2, 0, long_req[128:]),
        _negotiated(32, 32) + _i(0, 0, get) + _i(0, 0, get),  # a repeated I-frame: the answer again
        SNRM + _i(3, 0, get) + _frame(0x97) + _frame(0x13, b"\x00"),  # out of sequence, FRMR, UI
        _frame(0x93, dst=(1 << 7) | 17, dst_size=2) + _frame(0x93, dst=(1 << 14) | 256, dst_size=4),
        _frame(0x93, dst=2) + _frame(0x93, src=0x7F),
        b"\x7e\x7e\x7e" + SNRM[1:] + AARQ[:20] + b"\x7e" + DISC,
        SNRM[:-3] + b"\x00\x00\x7e" + AARQ,
        b"noise\x00\xff" * 4 + SNRM,
        _frame(0x93, b"\x81\x80\x03\x09\x01\x00") + _frame(0x93, b"\x81\x80\x09\x05\x05\x00"),
    ]
    for k, line in enumerate(lines):
        for mode in (0x00, 0x21, 0x0A, 0x33 if k % 2 else 0x24):
            if mode & 0x08 and line.startswith(SNRM):
                continue
            yield bytes([mode]) + line
