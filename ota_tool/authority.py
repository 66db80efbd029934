"""Where the signed command envelopes a locked meter needs come from: signed on the spot with a command-role key
(the meter's id is read from the meter), or pre-signed files from the head-end (`ota envelope`), matched by
command and arguments. A development meter needs none; sending one anyway does no harm."""

from __future__ import annotations

from pathlib import Path

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meterkit import envelope

from .errors import OtaError
from .link import MeterLink

# command names the meter's groups check (firmware/loader/image_group.py, os_group.py)
IMAGE_STATE = "image.state"
IMAGE_ERASE = "image.erase"
OS_RESET = "os.reset"


class NoEnvelope(OtaError):
    exit_code = 9

    def __init__(self, cmd: str, args: dict):
        shown = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in args.items()}
        super().__init__(f"no pre-signed envelope for {cmd} {shown} (give --key or the right --envelope)")


class Authority:
    def __init__(self, key: Ed25519PrivateKey | None = None, files: tuple[Path, ...] = (), expires_in: int = 600):
        self.key = key
        self.expires_in = expires_in
        self.presigned = [p.read_bytes() for p in files]
        self._meter_id: str | None = None

    @property
    def active(self) -> bool:
        return self.key is not None or bool(self.presigned)

    async def envelope(self, link: MeterLink, cmd: str, args: dict) -> bytes | None:
        """The envelope for `cmd` with exactly `args`, or None when this authority has no key and no files."""
        if not self.active:
            return None
        if self.key is not None:
            if self._meter_id is None:
                from .meter_info import meter_id

                self._meter_id = await meter_id(link)
            return envelope.make(self.key, self._meter_id, cmd, args, expires_in=self.expires_in)
        for raw in self.presigned:
            body = cbor2.loads(cbor2.loads(raw)["body"])
            if body.get("cmd") == cmd and body.get("args") == args:
                return raw
        raise NoEnvelope(cmd, args)
