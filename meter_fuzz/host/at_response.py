"""Host extras of at_response: seed inputs built from what a BC660K really sends (the transcripts of
host_tests/firmware/test_modem.py and the module's manual: setup answers, registration and socket URCs, pushed
datagrams, SEND OK / SEND FAIL, error codes, the `>` prompt, RDY), each behind the probe's three header bytes."""

from __future__ import annotations

from collections.abc import Iterator


def _input(mode: int, size: int, where: int, payload: bytes, noise: bytes) -> bytes:
    return bytes((mode, size, where)) + payload[:size] + noise


TRANSCRIPTS = (
    # (command in flight: 0 none, 1 bare, 2 AT+CEREG?, 3 AT+QISEND), module output
    (1, b"\r\nOK\r\n"),
    (1, b"\r\nRDY\r\n\r\nOK\r\n"),
    (2, b"\r\n+CEREG: 1,2\r\n\r\nOK\r\n\r\n+CEREG: 1\r\n"),
    (2, b'\r\n+CEREG: 1,2\r\n\r\n+QIURC: "pdpdeact",1\r\n\r\nOK\r\n'),
    (1, b"\r\n+CME ERROR: 563\r\n"),
    (1, b"\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n"),
    (1, b"\r\nOK\r\n\r\n+QIOPEN: 1,566\r\n"),
    (3, b"> \r\nOK\r\n\r\nSEND OK\r\n"),
    (3, b"\r\nOK\r\n\r\nSEND FAIL\r\n"),
    (3, b"\r\n+CME ERROR: 568\r\n"),
    (0, b'\r\n+QIURC: "recv",0,3,"616263"\r\n\r\n+QIURC: "closed",0\r\n\r\n+CEREG: 2\r\n'),
    (0, b'\r\n+QIURC: "recv",0,2,"ZZ00"\r\n\r\n+QIURC: "recv",0,3,"0000"\r\n\r\n+QIURC: "recv",0,2,0000\r\n'),
    (1, b'\r\n+CGSN: 866123\r\n+QIURC: "recv",0,3,"616263"\r\n\r\nOK\r\n\r\nWHAT\r\n+CEREG: 2\r\n'),
    (1, b"\r\n\x00\xff junk\r\n+CME ERROR: 50\r\n"),
    (0, b"\r\n+CPIN: READY\r\n\r\n+IP: 10.1.2.3\r\n\r\n+QNBIOTEVENT: \"ENTER PSM\"\r\n\r\n+CSCON: 0\r\n"),
    (1, b"\r\n+CMS ERROR: 500\r\n\r\nERROR\r\n"),
    (0, b"A" * 600 + b"\r\n"),  # an overlong line, discarded and counted
    (2, b"\r\n+CEREG: 1,5\r\n\r\nOK\r\n"),  # registered, roaming
    (2, b"\r\n+CEREG: 1,\r\n+CEREG: 2,3,\"1A2B\",\"01A2B3C4\",9\r\n\r\nOK\r\n"),
)


def seeds() -> Iterator[bytes]:
    for k, (kind, out) in enumerate(TRANSCRIPTS):
        yield _input(kind | ((k % 8) << 2) | (0x40 if k % 3 == 0 else 0), 7 + k, (k % 5) | ((k % 8) << 3),
                     bytes(range(k, k + 7 + k)), out)
    yield _input(0x40, 0xFF, 0x38, b"", b'\r\n+QIURC: "recv",1,1,"FF"\r\n')  # the largest datagram, at the end
    yield _input(0x03 | 0x20, 1, 0x00, b"\x00", b"\r\n>")  # lower-case hex after a bare prompt
