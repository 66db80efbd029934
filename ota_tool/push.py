"""Pushing a signed image to a meter over SMP: upload (smpclient's chunking, sized by the meter's buf_size), then
wait for the meter's own verdict on the upload. A library: progress goes to a callback, errors are OtaError."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smpclient.exceptions import SMPUploadError
from smpclient.requests.image_management import ImageStatesRead

from .authority import IMAGE_ERASE, IMAGE_STATE, OS_RESET, Authority
from .errors import NOT_AUTHORISED_EXIT, DeviceRefused, DeviceTimeout, OtaError, rejection_exit
from .link import LINE_ERRORS, MeterLink
from .meter_groups import SignedErase, SignedReset, SignedStatesWrite, UpdateStatusRead

VERDICT_TIMEOUT = 60.0


class UpdateRejected(OtaError):
    def __init__(self, reason: str):
        super().__init__(f"the meter rejected the image: {reason}")
        self.reason = reason
        self.exit_code = rejection_exit(reason)


@dataclass
class PushResult:
    uploaded: int
    seconds: float
    state: str
    reason: str
    version: str | None
    image_hash: bytes | None = None
    before: str | None = None
    after: str | None = None
    slots: list | None = None
    retries: int = 0

    @property
    def rate(self) -> float:
        return self.uploaded / self.seconds if self.seconds else 0.0


CHUNK_TIMEOUT = 2.0  # a 2 KB chunk is answered in about 0.2 s at 115200 baud: longer means it was lost
MAX_STALLS = 12  # retries in a row without progress before giving up


async def push(link: MeterLink, data: bytes, progress: Callable[[int, int], None] | None = None) -> PushResult:
    """Upload `data`; a chunk or answer lost or corrupted on the line is retried (the meter resumes from what it
    has), so a noisy cable costs time, never a wrong image. Then wait for the meter's verdict."""
    assert link._client is not None
    t0 = time.monotonic()
    done = 0
    stalls = 0
    retries = 0
    first_timeout = max(link.timeout, 10.0)  # the first chunk may wait for the previous upload to be cleared
    while True:
        try:
            async for off in link._client.upload(data, slot=0, first_timeout_s=first_timeout,
                                                 subsequent_timeout_s=min(link.timeout, CHUNK_TIMEOUT)):
                if off > done:
                    done = off
                    stalls = 0
                if progress:
                    progress(off, len(data))
            break
        except SMPUploadError as e:
            # the meter refused a chunk (e.g. a bad header in the first one): its update status says why
            st = await link.request(UpdateStatusRead(), "update status")
            if st.state == "rejected":
                raise UpdateRejected(st.reason) from e
            rc, group = _refusal_rc(e)
            raise DeviceRefused("upload", rc, group) from e
        except LINE_ERRORS as e:
            stalls += 1
            retries += 1
            if stalls > MAX_STALLS:
                raise DeviceTimeout(f"upload stalled at byte {done} of {len(data)}: {stalls - 1} retries got no "
                                    f"answer ({type(e).__name__}); rerun to resume") from e
            first_timeout = min(link.timeout, 1.5 * CHUNK_TIMEOUT)  # a resume is answered as fast as a chunk
            await asyncio.sleep(0.05 * stalls)  # let a late answer arrive and be dropped
    seconds = time.monotonic() - t0
    end = time.monotonic() + VERDICT_TIMEOUT
    while True:
        st = await link.request(UpdateStatusRead(), "update status", retries=3)
        if st.state not in ("verifying", "receiving") or time.monotonic() > end:
            break
        await asyncio.sleep(0.2)
    result = PushResult(uploaded=len(data), seconds=seconds, state=st.state, reason=st.reason,
                        version=st.image_version, image_hash=bytes(st.hash) if st.hash else None, retries=retries)
    if st.state != "accepted":
        raise UpdateRejected(st.reason or st.state)
    return result


def _refusal_rc(e: SMPUploadError) -> tuple[int, int | None]:
    """The SMP result code inside smpclient's upload error (an error response, v1 `rc` or v2 `err`)."""
    rsp = e.args[0] if e.args else None
    err = getattr(rsp, "err", None)
    if err is not None:
        return int(getattr(err, "rc", 1)), int(getattr(err, "group", 0))
    return int(getattr(rsp, "rc", 1) or 1), None


async def _signed(link: MeterLink, authority: Authority | None, request_type: type, cmd: str, args: dict,
                  what: str, retries: int = 0) -> Any:
    """Send a state-changing request, with its signed envelope when the authority has a key or files. `retries`
    only for idempotent requests: each try gets a fresh envelope, and a "replayed" refusal after a lost answer
    means the earlier try went through."""
    timed_out = False
    for attempt in range(retries + 1):
        env = await authority.envelope(link, cmd, args) if authority is not None else None
        try:
            return await link.request(request_type(**args, envelope=env), what)
        except DeviceTimeout:
            if attempt == retries:
                raise
            timed_out = True
        except DeviceRefused as e:
            if e.exit_code != NOT_AUTHORISED_EXIT:
                raise
            st = await link.request(UpdateStatusRead(), "update status", retries=3)
            if timed_out and st.refused == "replayed":
                return None
            hint = "this meter is locked: give --key or --envelope" if env is None else ""
            raise DeviceRefused(what, e.rc, why=st.refused or hint) from e
    return None


async def boot_number(link: MeterLink) -> int | None:
    """The meter's boot counter (update status), to tell when a reset has happened."""
    return (await link.request(UpdateStatusRead(), "update status", retries=3)).boot


async def activate(link: MeterLink, image_hash: bytes, permanent: bool, authority: Authority | None = None) -> None:
    """Ask the meter to install the verified upload at its next boot (as a test boot, or for good), then reset.
    A reset's answer lost on the line is not an error here: the caller watches the boot number."""
    await _signed(link, authority, SignedStatesWrite, IMAGE_STATE, {"confirm": permanent, "hash": image_hash},
                  "mark the upload pending", retries=5)
    try:
        await reset(link, authority)
    except DeviceTimeout:
        pass


async def reset(link: MeterLink, authority: Authority | None = None) -> None:
    await _signed(link, authority, SignedReset, OS_RESET, {}, "reset")


async def confirm(link: MeterLink, authority: Authority | None = None) -> None:
    await _signed(link, authority, SignedStatesWrite, IMAGE_STATE, {"confirm": True}, "confirm")


async def erase(link: MeterLink, authority: Authority | None = None) -> None:
    await _signed(link, authority, SignedErase, IMAGE_ERASE, {"slot": 1}, "erase")


async def slots(link: MeterLink) -> list[dict]:
    rsp = await link.request(ImageStatesRead(), "image state", retries=3)
    return [{"slot": i.slot, "version": i.version, "hash": bytes(i.hash).hex() if i.hash else None,
             "bootable": i.bootable, "pending": i.pending, "confirmed": i.confirmed, "active": i.active}
            for i in rsp.images]
