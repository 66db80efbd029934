"""Where the signed command envelopes a locked meter needs come from: signed on the spot with a command-role key
(the meter's id is read from the meter), or pre-signed files from the head-end (`ota envelope`), matched by
command and arguments. A development meter needs none; sending one anyway does no harm.

Pre-signed files are checked before anything is sent: each must be an envelope, and an operation that needs
several (an update: image.state, then os.reset) must have all of them for this meter, so that none is spent on
work that cannot finish."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meterkit import envelope

from .errors import BadInput, NotAuthorised
from .link import MeterLink

# command names the meter's groups check (firmware/loader/image_group.py, os_group.py)
IMAGE_STATE = "image.state"
IMAGE_ERASE = "image.erase"
OS_RESET = "os.reset"


def _shown(args: dict) -> dict:
    return {k: (v.hex() if isinstance(v, bytes) else v) for k, v in args.items()}


class NoEnvelope(NotAuthorised):
    def __init__(self, cmd: str, args: dict, meter: str | None = None):
        for_ = f" for meter {meter}" if meter else ""
        super().__init__(f"no pre-signed envelope for {cmd} {_shown(args)}{for_} (give --key, or make one: "
                         f"`ota envelope --cmd {cmd} --meter ID --args '...'`)", "no-envelope")
        self.cmd = cmd


def read_envelope(path: Path, raw: bytes) -> dict:
    """The body of a pre-signed envelope file; BadInput naming the file when it is not one."""
    try:
        body = envelope.read(raw)
    except Exception as e:  # cbor2 raises several types for garbage, KeyError/TypeError for the wrong shape
        raise BadInput(f"{path}: not a signed command envelope (make one with `ota envelope`)") from e
    if not isinstance(body, dict) or not isinstance(body.get("cmd"), str) or not isinstance(body.get("args"), dict):
        raise BadInput(f"{path}: not a signed command envelope (no cmd and args)")
    return body


class Authority:
    def __init__(self, key: Ed25519PrivateKey | None = None, files: tuple[Path, ...] = (), expires_in: int = 600):
        self.key = key
        self.expires_in = expires_in
        self.presigned: list[tuple[Path, bytes, dict]] = []
        for p in files:
            try:
                raw = p.read_bytes()
            except OSError as e:
                raise BadInput(f"{p}: cannot read it ({e.strerror})") from e
            self.presigned.append((p, raw, read_envelope(p, raw)))
        self._meter_id: str | None = None

    @property
    def active(self) -> bool:
        return self.key is not None or bool(self.presigned)

    async def meter_id(self, link: MeterLink) -> str:
        if self._meter_id is None:
            from .meter_info import meter_id

            self._meter_id = await meter_id(link)
        return self._meter_id

    def _find(self, cmd: str, args: dict) -> bytes | None:
        for _p, raw, body in self.presigned:
            if body.get("cmd") == cmd and body.get("args") == args:
                return raw
        return None

    async def require(self, link: MeterLink, needs: list[tuple[str, dict]]) -> None:
        """Before an operation that spends envelopes: every pre-signed one it needs is there and made for this
        meter; otherwise NotAuthorised naming the first missing one, and nothing has been sent."""
        if self.key is not None or not self.presigned:
            return
        meter = await self.meter_id(link)
        for cmd, args in needs:
            raw = self._find(cmd, args)
            if raw is None:
                raise NoEnvelope(cmd, args, meter)
            body = envelope.read(raw)
            if body.get("meter") != meter:
                raise NotAuthorised(f"the envelope for {cmd} is for meter {body.get('meter')}, this meter is "
                                    f"{meter}", "wrong-meter")

    async def envelope(self, link: MeterLink, cmd: str, args: dict) -> bytes | None:
        """The envelope for `cmd` with exactly `args`, or None when this authority has no key and no files."""
        if not self.active:
            return None
        if self.key is not None:
            return envelope.make(self.key, await self.meter_id(link), cmd, args, expires_in=self.expires_in)
        raw = self._find(cmd, args)
        if raw is None:
            raise NoEnvelope(cmd, args)
        return raw
