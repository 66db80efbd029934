"""A request sent again waits twice as long each time (push._signed's tries of a state-changing request, and
ota_tool/link.py MeterLink.request's). A meter whose work on a request outlasts the timeout — a slow board, a loaded emulator —
answers each try late; with a fixed wait, every later try also timed out before its answer (a full suite run on a
busy host failed `ota push` that way: "mark the upload pending: no valid answer within 5 s" after six tries).
The fake meter here takes 2x the link's timeout per request, one request at a time, as the firmware's console does."""

from __future__ import annotations

import asyncio
import os
import pty
import struct
import threading
import time
import tty

import cbor2
from smp import packet
from smpclient.requests.os_management import EchoWrite

from ota_tool import push
from ota_tool.link import MeterLink

TIMEOUT = 1.0
WORK_S = 1.5 * TIMEOUT  # longer than every wait a fixed timeout would give; the doubled waits outgrow it


def _slow_meter(master: int, stop: threading.Event, seen: list[int]) -> None:
    buf = b""
    dec = None
    while not stop.is_set():
        try:
            chunk = os.read(master, 4096)
        except OSError:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            line += b"\n"
            if dec is None:
                dec = packet.decode()
                next(dec)
            try:
                dec.send(line)
            except StopIteration as done:
                dec = None
                frame = done.value
                seen.append(frame[6])
                time.sleep(WORK_S)  # the meter's work on it
                body = cbor2.dumps({"r": "late"})
                b0 = (frame[0] & 0x18) | 3  # the request's version, op WRITE_RSP
                rsp = bytes((b0, 0)) + struct.pack(">HH", len(body), (frame[4] << 8) | frame[5]) + frame[6:8] + body
                for out in packet.encode(rsp):
                    os.write(master, out)


class _EnvelopedEcho(EchoWrite):
    """An echo that carries an envelope field, as push._signed's state-changing requests do: each try is a new
    request (a fresh envelope and sequence number), so an answer to an earlier try does not count for a later one."""

    envelope: bytes | None = None


def test_a_signed_request_answered_after_the_timeout_gets_its_answer_on_a_longer_try():
    master, slave = pty.openpty()
    tty.setraw(slave)
    stop = threading.Event()
    seen: list[int] = []
    t = threading.Thread(target=_slow_meter, args=(master, stop, seen), daemon=True)
    t.start()

    async def go():
        async with MeterLink(os.ttyname(slave), timeout=TIMEOUT) as link:
            return await push._signed(link, None, _EnvelopedEcho, "echo", {"d": "x"}, "echo", retries=3)

    try:
        rsp = asyncio.run(go())
    finally:
        stop.set()
        os.close(slave)
        os.close(master)
    assert rsp.r == "late"
    assert len(set(seen)) >= 2  # the first try timed out: the answer came to a later, longer try
