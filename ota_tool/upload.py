"""An image upload with several chunks in flight (go-back-N over SMP's image upload): the meter writes chunks only
at the offset it expects and answers every chunk with that offset, so a chunk lost, repeated or out of order costs a
resend from the meter's offset, never a wrong image. Chunks are sized to what the link carries (smpclient's
sizing: the meter's buf_size, and on UDP the datagram cap); the window is the number of request buffers the meter
reports (buf_count), at most WINDOW_MAX. The first chunk (length, SHA-256) goes alone: its answer may be a resume
offset from an earlier, interrupted upload of the same image.

A library: the link gives the transport's send/receive, progress goes to a callback, errors are OtaErrors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, Protocol

from smpclient.requests.image_management import ImageUploadWrite

from .errors import ENOMEM, DeviceTimeout
from .smp_udp import FrameId, Rto

WINDOW_MAX = 4  # chunks in flight at most, whatever the meter reports
MAX_STALLS = 12  # timeouts in a row without progress before giving up, and
STALL_WINDOW = 60.0  # seconds without progress before giving up (the meter verifies a complete upload silently)
IDLE_ANSWERS_MAX = 64  # answers in a row that moved the meter's offset nowhere: it refuses to take the chunk
CHUNK_FLOOR = 128  # a chunk answered "out of memory" is sent again at half the size, down to this many bytes


class Pipe(Protocol):
    """What the upload needs of a link: frames out, frames in (a transport's own send/receive)."""

    async def send(self, data: bytes) -> None: ...

    async def receive(self) -> bytes: ...


class Refused(Exception):
    """The meter answered a chunk with an error (`rsp`: the decoded SMP error)."""

    def __init__(self, rsp: Any):
        super().__init__(rsp)
        self.rsp = rsp


@dataclass
class Chunk:
    off: int
    end: int
    frame: bytes
    sent: float


@dataclass
class Stats:
    retries: int = 0  # chunks sent again (after a timeout, or a go-back to the meter's offset)
    timeouts: int = 0  # waits for an answer that ended with none
    stale: int = 0  # answers to chunks no longer waited for (dropped)
    damaged: int = 0  # frames that did not decode (serial noise)
    chunks: int = 0
    sent_bytes: int = 0
    window: int = 1
    go_backs: int = 0  # times the upload went back to the meter's offset
    chunk_cap: int | None = None  # the chunk size after "out of memory" answers (None: the link's size throughout)


async def upload(
    pipe: Pipe,
    make: Callable[[ImageUploadWrite, bytes], ImageUploadWrite],
    data: bytes,
    *,
    window: int,
    rto: Rto,
    first_wait: float,
    decode: Callable[[Any, bytes], Any],
    progress: Callable[[int, int], None] | None = None,
    line_errors: tuple[type[BaseException], ...] = (),
) -> Stats:
    """Upload `data` to slot 0; returns when the meter holds all of it. `make(request, data)` fills a request's
    chunk to the link's size (smpclient's _maximize_upload_packet); `decode(request, frame)` turns a reply frame
    into a response or error (or raises one of `line_errors`). Refused when the meter answers a chunk with an
    error; DeviceTimeout after STALL_WINDOW s and MAX_STALLS timeouts without progress. A chunk answered "out of
    memory" (the meter's heap had no block for its data: an ESP32's is in pieces of 1-4 KB) is sent again at half
    the size, down to CHUNK_FLOOR, with one chunk in flight from then on: the meter takes a chunk whole or not at
    all, so nothing is lost; only an "out of memory" at the floor is Refused."""
    total = len(data)
    digest = sha256(data).digest()
    window = max(1, min(window, WINDOW_MAX))
    st = Stats(window=window)
    inflight: dict[FrameId, tuple[Chunk, ImageUploadWrite]] = {}
    acked = 0  # the meter's offset as last reported (it only grows)
    started = False  # the first chunk was answered
    next_off = 0
    sent_to = 0  # the end of the furthest chunk sent: a chunk below it is one sent again
    stalls = 0
    idle_answers = 0
    progressed = time.monotonic()

    def go_back() -> None:
        nonlocal next_off
        inflight.clear()
        next_off = acked
        st.go_backs += 1

    while not (started and acked >= total):
        limit = window if started else 1
        while len(inflight) < limit and next_off < total:
            piece = b"" if st.chunk_cap is None else data[next_off:next_off + st.chunk_cap]
            if next_off == 0:
                req = ImageUploadWrite(off=0, data=piece, image=0, len=total, sha=digest)
            else:
                req = ImageUploadWrite(off=next_off, data=piece)
            if st.chunk_cap is None:
                req = make(req, data)  # as much as the link carries
            frame = bytes(req)
            fid = FrameId.of(frame)
            assert fid is not None
            c = Chunk(next_off, next_off + len(req.data), frame, time.monotonic())
            await pipe.send(frame)
            inflight[fid.reply()] = (c, req)
            if c.off < sent_to:
                st.retries += 1
            sent_to = max(sent_to, c.end)
            st.chunks += 1
            st.sent_bytes += len(frame)
            next_off = c.end
        if not inflight:  # everything sent and answered, yet the meter's offset is short: resend from it
            go_back()
            continue
        oldest = min(c.sent for c, _ in inflight.values())
        wait = (first_wait if not started else rto.rto) - (time.monotonic() - oldest)
        try:
            frame = await asyncio.wait_for(pipe.receive(), max(wait, 0.001))
        except TimeoutError:
            stalls += 1
            st.timeouts += 1
            if stalls > MAX_STALLS and time.monotonic() - progressed > STALL_WINDOW:
                raise DeviceTimeout(
                    f"upload stalled at byte {acked} of {total}: {stalls - 1} retries in "
                    f"{time.monotonic() - progressed:.0f} s got no answer; rerun to resume"
                ) from None
            rto.backoff()
            go_back()
            continue
        except line_errors:
            st.damaged += 1
            continue
        fid = FrameId.of(frame)
        hit = inflight.pop(fid, None) if fid is not None else None
        if hit is None:
            st.stale += 1
            continue
        c, req = hit
        try:
            rsp = decode(req, frame)
        except line_errors:
            st.damaged += 1
            inflight[fid] = hit  # type: ignore[index]  # its answer was damaged: it times out and goes again
            continue
        off = getattr(rsp, "off", None)
        if off is None:
            size = c.end - c.off
            if _rc(rsp) != ENOMEM or size <= CHUNK_FLOOR:
                raise Refused(rsp)
            st.chunk_cap = max(CHUNK_FLOOR, size // 2)
            window = 1  # several chunks in flight would each need their block at once
            go_back()
            continue
        rto.sample(time.monotonic() - c.sent)  # each chunk sent again is a new request: its answer is unambiguous
        started = True
        stalls = 0
        if off > acked:
            acked = off
            idle_answers = 0
            progressed = time.monotonic()
            if progress is not None:
                progress(acked, total)
        elif off != c.end:
            idle_answers += 1
            if idle_answers > IDLE_ANSWERS_MAX:
                raise DeviceTimeout(
                    f"upload stuck at byte {acked} of {total}: the meter answered {idle_answers - 1} chunks in a "
                    "row without taking one"
                )
        if off != c.end:  # the meter expects another offset (a chunk lost or out of order, or a resume)
            go_back()
    return st


def _rc(rsp: Any) -> int | None:
    """The MCUmgr result code of an SMP error answer (v1's rc, v2's err.rc), None for anything else."""
    rc = getattr(rsp, "rc", None)
    if rc is None:
        rc = getattr(getattr(rsp, "err", None), "rc", None)
    return None if rc is None else int(rc)
