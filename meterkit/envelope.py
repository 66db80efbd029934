"""Creating signed command envelopes (format in docs/trust-and-keys.md; the meter opens them with
firmware/loader/envelope.py). Offline: a head-end or a field laptop makes them with a command-role key."""

from __future__ import annotations

import os
import time

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .trust import keyhash, raw_key

ID_SIZE = 16


def make(key: Ed25519PrivateKey, meter: str, cmd: str, args: dict | None = None, *, expires_in: int = 3600,
         now: int | None = None, ident: bytes | None = None) -> bytes:
    ident = ident if ident is not None else os.urandom(ID_SIZE)
    if len(ident) != ID_SIZE:
        raise ValueError(f"an envelope id is {ID_SIZE} bytes")
    exp = int(now if now is not None else time.time()) + expires_in
    body = cbor2.dumps({"format": 1, "role": "command", "meter": meter, "cmd": cmd, "args": args or {},
                        "id": ident, "exp": exp}, canonical=True)
    return cbor2.dumps({"body": body, "signer": keyhash(raw_key(key.public_key())), "sig": key.sign(body)},
                       canonical=True)


def read(data: bytes) -> dict:
    outer = cbor2.loads(data)
    body = cbor2.loads(outer["body"])
    body["signer"] = outer["signer"].hex()
    return body
