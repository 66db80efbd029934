"""Pushing a signed image to a meter over SMP, the whole workflow: check the image against what the meter reports
(board, key, security counter, slot size) before a byte is sent; upload (chunks sized by the meter's buf_size and
the link, several in flight where the meter reports the buffers: ota_tool/upload.py); wait for the meter's own verdict; then, for an install, check every envelope it needs, mark the
upload pending, reset, wait for the meter to come back and report what it runs — and whether a test boot failed
and rolled back, with the reason the meter recorded and the last lines it printed.

A library: progress and notes go to callbacks, errors are typed OtaErrors (ota_tool/errors.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smpclient.exceptions import SMPUploadError
from smpclient.requests.image_management import ImageStatesRead

from . import image
from . import upload as uploading
from .authority import IMAGE_ERASE, IMAGE_STATE, OS_RESET, Authority
from .errors import (
    CheckDeferred,
    DeviceRefused,
    DeviceTimeout,
    ImageRejected,
    ModemError,
    NotAuthorised,
    OtaError,
    RolledBack,
)
from .link import LINE_ERRORS, READ_RETRIES, RETRY_WAIT_CAP_S, MeterLink
from .meter_groups import SignedErase, SignedReset, SignedStatesWrite, UpdateStatusRead

VERDICT_TIMEOUT = 60.0
OUT_OF_MEMORY = "out-of-memory"  # the meter's verdict when its check found no room (loader/image_group.py): not the
#                                  image's fault, the upload is kept
RECHECKS = 1  # such a verdict: the upload's first chunk sent again, which makes the meter check it again
RESET_TRIES = 3  # a reset request lost on its way is sent again while the meter shows its old boot number
PROBE_TIMEOUT = 1.0  # while the meter reboots: short probes (on a serial line; a radio link's round trip is longer)
Note = Callable[[str], None]


class UpdateRejected(ImageRejected):
    def __init__(self, reason: str):
        super().__init__(f"the meter rejected the image: {reason}", reason)


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
    window: int = 1
    sent_bytes: int = 0
    timeouts: int = 0
    go_backs: int = 0
    stale: int = 0
    skipped_state_write: bool = False
    trial: dict | None = None
    console: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.uploaded / self.seconds if self.seconds else 0.0


async def status(link: MeterLink) -> dict:
    """The meter's update status (group 64): state, reason, boot, and what it reports of its policy."""
    rsp = await link.request(UpdateStatusRead(), "update status", retries=READ_RETRIES)
    return rsp.model_dump(exclude={"header", "version", "sequence", "smp_data"})


def preflight(data: bytes, st: dict, board: str | None) -> None:
    """Refuse locally what the meter would refuse after the whole upload, with the policy's reason code: another
    board, a key the meter does not trust (or a development key on a locked meter), a counter below the meter's
    or too far above it, an image larger than the slot (from what the meter reports), and a bundle its install would
    refuse (the device's own check: the meter checks the bundle only at install, after the reset)."""
    img = image.parse(data)
    want = (img.first(image.Tlv.BOARD, "protected") or b"").decode("ascii", "replace")
    if board and want and want != board:
        raise ImageRejected(f"wrong-board: the image is for {want}, the meter is {board}", "wrong-board")
    keys = st.get("image_keys")
    kh = img.first(image.Tlv.KEYHASH, "unprotected")
    if isinstance(keys, list) and kh:
        dev = st.get("image_keys_dev") or [False] * len(keys)
        hit = [i for i, k in enumerate(keys) if isinstance(k, bytes | bytearray) and kh.startswith(bytes(k))]
        if not hit:
            raise ImageRejected(f"unknown-key: the meter trusts no image key {kh[:8].hex()}…", "unknown-key")
        if st.get("mode") == "locked" and all(dev[i] for i in hit if i < len(dev)):
            raise ImageRejected("development-key-refused: a locked meter refuses images signed with a development "
                                "key", "development-key-refused")
    sc = img.first(image.Tlv.SEC_CNT, "protected")
    counter = st.get("counter")
    if isinstance(counter, int) and sc and len(sc) == 4:
        n = int.from_bytes(sc, "little")
        if n < counter:
            raise ImageRejected(f"counter-too-low: the image's security counter {n} is below the meter's {counter}",
                                "counter-too-low")
        step = st.get("max_step")
        if isinstance(step, int) and n > counter + step:
            raise ImageRejected(f"counter-step: the image's security counter {n} is more than {step} above the "
                                f"meter's {counter}", "counter-step")
    budget = st.get("budget")
    if isinstance(budget, int) and len(data) > budget:
        raise ImageRejected(f"oversize: {len(data)} bytes, the meter's slot takes {budget}", "oversize")
    # The meter checks the bundle inside (manifest, paths, file hashes) only when it installs, after the reset: a bad
    # one would cost the upload and a reset to be refused, so the device's own bundle check runs here first.
    import io

    from . import device_policy

    dev = device_policy.modules()
    room = budget if isinstance(budget, int) else len(data)
    try:
        f = io.BytesIO(data)
        dev.bundle.check(f, dev.image.read(f, len(data), max(room, len(data))), room)
    except (dev.image.Rejected, dev.bundle.BundleError) as e:
        raise ImageRejected(f"{e} (the meter would refuse to install it)", e.reason) from e


async def push(link: MeterLink, data: bytes, progress: Callable[[int, int], None] | None = None,
               window: int | None = None) -> PushResult:
    """Upload `data` with up to `window` chunks in flight (default: as many as the meter reports request buffers,
    ota_tool/upload.py); a chunk or answer lost, repeated or out of order is sent again from the meter's offset, so
    a noisy line costs time, never a wrong image. Then wait for the meter's verdict."""
    assert link._client is not None
    if window is None:
        window = (await link.params())[1]
    client = link._client
    t0 = time.monotonic()
    try:
        stats = await uploading.upload(link, client._maximize_upload_packet, data, window=window, rto=link.rto,
                                       first_wait=max(link.timeout, 10.0), decode=link.decode, progress=progress,
                                       line_errors=LINE_ERRORS)
    except uploading.Refused as e:
        # the meter refused a chunk (e.g. a bad header in the first one): its update status says why
        st = await link.request(UpdateStatusRead(), "update status", retries=READ_RETRIES)
        if st.state == "rejected":
            raise UpdateRejected(st.reason) from e
        rc, group = _refusal_rc(SMPUploadError(e.rsp))
        raise DeviceRefused("upload", rc, group) from e
    seconds = time.monotonic() - t0
    rechecks = 0
    while True:
        st = await _verdict(link)
        if st.state != "rejected" or st.reason != OUT_OF_MEMORY:
            break
        if rechecks == RECHECKS:
            raise CheckDeferred("the meter had no memory free to check the image (twice); it keeps the upload and "
                                "checks it again when it next starts: reset it (`ota reset`; a locked meter with "
                                "--key), then `ota status` shows the verdict, or run this push again")
        # the meter kept the whole upload: its first chunk again (answered with the whole length) makes it check
        # the upload again, once the answer's garbage is collected
        rechecks += 1
        await uploading.upload(link, client._maximize_upload_packet, data, window=1, rto=link.rto,
                               first_wait=max(link.timeout, 10.0), decode=link.decode, line_errors=LINE_ERRORS)
    result = PushResult(uploaded=len(data), seconds=seconds, state=st.state, reason=st.reason,
                        version=st.image_version, image_hash=bytes(st.hash) if st.hash else None,
                        retries=stats.retries, window=stats.window, sent_bytes=stats.sent_bytes,
                        timeouts=stats.timeouts, go_backs=stats.go_backs, stale=stats.stale)
    if st.state != "accepted":
        raise UpdateRejected(st.reason or st.state)
    return result


async def _verdict(link: MeterLink):
    """The meter's update status once its check of a complete upload is over (or VERDICT_TIMEOUT has passed)."""
    end = time.monotonic() + VERDICT_TIMEOUT
    while True:
        st = await link.request(UpdateStatusRead(), "update status", retries=READ_RETRIES)
        if st.state not in ("verifying", "receiving") or time.monotonic() > end:
            return st
        await asyncio.sleep(0.2)


def probe_timeout(port: str, timeout: float) -> float:
    """How long one probe waits while the meter reboots: short on a serial line, where an answer takes
    milliseconds; the whole timeout over UDP (a socket's or a modem's), where one round trip may take seconds."""
    from .link_url import SERIAL, parse

    return timeout if parse(port).kind != SERIAL else min(timeout, PROBE_TIMEOUT)


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
            # a try after a timeout waits twice as long (link.RETRY_WAIT_CAP_S at most): see MeterLink.request
            wait = None if attempt == 0 else min(link.timeout * 2 ** attempt, RETRY_WAIT_CAP_S)
            return await link.request(request_type(**args, envelope=env), what, wait_s=wait)
        except DeviceTimeout:
            if attempt == retries:
                raise
            timed_out = True
        except NotAuthorised as e:
            st = await link.request(UpdateStatusRead(), "update status", retries=READ_RETRIES)
            if timed_out and st.refused == "replayed":
                return None
            hint = "this meter is locked: give --key or --envelope" if env is None else ""
            why = st.refused or hint
            raise NotAuthorised(f"{what}: the meter refused (not authorised{', ' + why if why else ''})",
                                st.refused or "no-envelope") from e
    return None


async def boot_number(link: MeterLink) -> int | None:
    """The meter's boot counter (update status), to tell when a reset has happened."""
    return (await link.request(UpdateStatusRead(), "update status", retries=READ_RETRIES)).boot


async def activate(link: MeterLink, image_hash: bytes, permanent: bool, authority: Authority | None = None,
                   note: Note | None = None, booted: int | None = None) -> bool:
    """Ask the meter to install the verified upload at its next boot (as a test boot, or for good), then reset.
    Every envelope this needs is checked first (none is spent on work that cannot finish); a state write already
    pending for this image is not sent again. Returns whether the state write was skipped. A reset's answer lost
    on the line is not an error here: the caller watches the boot number; a reset request lost on its way is sent
    again when the meter still shows the boot number `booted` (reset_until_gone)."""
    state_args = {"confirm": permanent, "hash": image_hash}
    skip = pending_for(await slots(link), image_hash, permanent)
    if authority is not None:
        await authority.require(link, [(OS_RESET, {})] if skip else [(IMAGE_STATE, state_args), (OS_RESET, {})])
    if skip:
        if note is not None:
            note("the meter already has this image pending: only the reset is sent")
    else:
        await _signed(link, authority, SignedStatesWrite, IMAGE_STATE, state_args, "mark the upload pending",
                      retries=5)
    await reset_until_gone(link, authority, booted)
    return skip


async def reset_until_gone(link: MeterLink, authority: Authority | None = None, booted: int | None = None,
                           tries: int = RESET_TRIES) -> None:
    """Ask the meter to reset; when no answer comes, ask again only if the meter still answers with the boot number
    `booted` (the request was lost on its way: a reset is not safe to repeat blindly, since its answer too may be
    the one lost). A meter that answers nothing is taking its reset. The caller watches the boot number after."""
    for _ in range(tries):
        try:
            await reset(link, authority)
            return
        except DeviceTimeout:
            pass
        if booted is None:
            return
        try:
            now = await boot_number(link)
        except OtaError:
            return  # silent: rebooting
        if now != booted:
            return


def pending_for(rows: list[dict], image_hash: bytes, permanent: bool) -> bool:
    """Whether the slots show `image_hash` already marked for install at the next boot, the same way (a test boot or
    for good): its state write need not, and with a spent envelope cannot, be sent again."""
    return any(r["hash"] == image_hash.hex() and r["pending"] and bool(r.get("permanent")) == permanent
               for r in rows)


async def after_reset(port: str, baud: int, timeout: float, booted: int | None = None,
                      wait: float = 60.0) -> tuple[str, list[dict], dict, list[str]]:
    """Reconnect after the meter's reset (the loader installs the update first) and read what it runs: the app
    version, the slots, the update status, and the console lines the meter printed meanwhile. `booted`: the boot
    number before the reset; until the meter reports a higher one it has not rebooted yet."""
    end = time.monotonic() + wait
    console: list[str] = []
    modem: ModemError | None = None  # the last try failed in the modem (a modem:// link), not at the meter
    await asyncio.sleep(0.2)
    while True:
        try:
            link = MeterLink(port, baud, probe_timeout(port, timeout))
            async with link:
                try:
                    rebooted = booted is None or ((await boot_number(link)) or 0) > booted
                    version = await _app_version(link) if rebooted else None
                finally:
                    console += link.console_lines(40)
            if version is not None:
                full = MeterLink(port, baud, timeout)
                async with full:
                    rows = await slots(full)
                    st = await status(full)
                console += full.console_lines(40)
                return version, rows, st, console[-40:]
        except ModemError as e:
            modem = e
        except OtaError:
            modem = None
        if time.monotonic() > end:
            if modem is not None:
                raise modem  # what kept the meter out of reach: said, not "the meter did not come back"
            raise DeviceTimeout(f"{port}: the meter did not come back from its reset within {wait:g} s")
        await asyncio.sleep(0.2)


async def _app_version(link: MeterLink) -> str:
    from .meter_info import app_version

    return await app_version(link)


def _testing(st: dict, image_hash: bytes) -> bool:
    trial = st.get("trial")
    return (isinstance(trial, dict) and bytes(trial.get("hash") or b"") == image_hash
            and trial.get("outcome") == "testing")


async def await_verdict(port: str, baud: int, timeout: float, image_hash: bytes, wait: float,
                        note: Note | None = None) -> tuple[str, list[dict], dict, list[str]] | None:
    """While the meter test-boots `image_hash`, wait (at most `wait` s) for its self-test's verdict: it confirms
    the image, or it resets and goes back to the image before. Returns what runs then (None: no verdict yet)."""
    end = time.monotonic() + wait
    console: list[str] = []
    told = False
    modem: ModemError | None = None  # as in after_reset
    while time.monotonic() < end:
        try:
            link = MeterLink(port, baud, probe_timeout(port, timeout))
            async with link:
                try:
                    st = await status(link)
                    if not _testing(st, image_hash):
                        return await _app_version(link), await slots(link), st, console
                finally:
                    console += link.console_lines(40)
        except ModemError as e:
            modem = e
        except OtaError:
            modem = None  # the meter is resetting
        if not told and note is not None:
            note("the meter test-boots the image: waiting for its self-test to confirm it (or roll it back)")
            told = True
        await asyncio.sleep(1.0)
    if modem is not None:
        raise modem
    return None


def judge_trial(result: PushResult, st: dict) -> None:
    """After an install: RolledBack when the meter reports that the test boot of this image failed."""
    trial = st.get("trial")
    result.trial = _plain(trial) if isinstance(trial, dict) else None
    if not result.trial or result.image_hash is None:
        return
    if result.trial.get("hash") == result.image_hash.hex() and result.trial.get("outcome") == "rolled-back":
        result.console = [ln for ln in result.console if ln.strip()]
        tried = str(result.trial.get("version") or result.version or "?").removesuffix("+0")  # as the state read
        raise RolledBack(tried if tried.startswith("app-") else f"app-{tried}", result.after or "?",
                         str(result.trial.get("reason") or ""), result.console)


def _plain(d: dict) -> dict:
    return {k: (v.hex() if isinstance(v, bytes | bytearray) else v) for k, v in d.items()}


async def reset(link: MeterLink, authority: Authority | None = None) -> None:
    await _signed(link, authority, SignedReset, OS_RESET, {}, "reset")


async def confirm(link: MeterLink, authority: Authority | None = None) -> None:
    await _signed(link, authority, SignedStatesWrite, IMAGE_STATE, {"confirm": True}, "confirm")


async def erase(link: MeterLink, authority: Authority | None = None) -> None:
    await _signed(link, authority, SignedErase, IMAGE_ERASE, {"slot": 1}, "erase")


async def slots(link: MeterLink) -> list[dict]:
    rsp = await link.request(ImageStatesRead(), "image state", retries=READ_RETRIES)
    return [{"slot": i.slot, "version": i.version, "hash": bytes(i.hash).hex() if i.hash else None,
             "bootable": i.bootable, "pending": i.pending, "confirmed": i.confirmed, "active": i.active,
             "permanent": bool(getattr(i, "permanent", False))}
            for i in rsp.images]


async def update(port: str, baud: int, timeout: float, data: bytes, mode: str | None = None,
                 authority: Authority | None = None, reset_wait: float = 60.0, verdict_wait: float = 150.0,
                 check: bool = True,
                 progress: Callable[[int, int], None] | None = None, note: Note | None = None) -> PushResult:
    """The whole push: read what the meter runs and reports, refuse locally what it would refuse (unless
    `check` is off), upload, and with `mode` "test" or "confirm" install it and report what runs after the reset
    — for a test boot, once its self-test has decided (at most `verdict_wait` s). RolledBack when the meter reports
    that the test boot failed."""
    async with MeterLink(port, baud, timeout, note=note) as link:
        before = await _app_version(link)
        st = await status(link)
        if mode and st.get("mode") == "locked" and (authority is None or not authority.active):
            raise NotAuthorised("this meter is locked: installing needs a signed command (give --key or "
                                "--envelope files for image.state and os.reset); nothing was sent", "no-envelope")
        if check:
            from .meter_info import board_id

            preflight(data, st, await board_id(link))
        if mode and authority is not None:  # every envelope the install needs, before anything is sent
            local_hash = image.parse(data).first(image.Tlv.SHA256, "unprotected") or b""
            permanent = mode == "confirm"
            # a rerun after a refused or lost reset finds the state write pending already: it needs only the reset
            needs: list[tuple[str, dict]] = [(OS_RESET, {})]
            if not pending_for(await slots(link), local_hash, permanent):
                needs.insert(0, (IMAGE_STATE, {"confirm": permanent, "hash": local_hash}))
            await authority.require(link, needs)
        r = await push(link, data, progress)
        r.before = before
        booted = None
        if mode and r.image_hash:
            booted = await boot_number(link)
            r.skipped_state_write = await activate(link, r.image_hash, permanent=(mode == "confirm"),
                                                   authority=authority, note=note, booted=booted)
    if mode:
        r.after, r.slots, st, r.console = await after_reset(port, baud, timeout, booted, wait=reset_wait)
        if mode == "test" and r.image_hash is not None and _testing(st, r.image_hash) and verdict_wait > 0:
            got = await await_verdict(port, baud, timeout, r.image_hash, verdict_wait, note)
            if got is not None:
                r.after, r.slots, st, more = got
                r.console = (r.console + more)[-40:]
        judge_trial(r, st)
    return r
