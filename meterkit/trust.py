"""Building a meter trust store (format in docs/trust-and-keys.md; the device reads it with
firmware/loader/trust.py): public keys by role, signed by a root key, with an update counter."""

from __future__ import annotations

import hashlib

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ROLES = ("root", "image", "command")
SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


def raw_key(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def keyhash(raw: bytes) -> bytes:
    return hashlib.sha256(SPKI_PREFIX + raw).digest()


def build(entries: list[dict], counter: int, root: Ed25519PrivateKey) -> bytes:
    """entries: [{"key": raw 32 bytes, "roles": [...], "dev": bool, "name": str}]. The signer must be listed with
    the root role (a store is checked against its own root keys on the device)."""
    for e in entries:
        bad = set(e["roles"]) - set(ROLES)
        if bad:
            raise ValueError(f"unknown role(s) {sorted(bad)}; roles are {', '.join(ROLES)}")
    signer = raw_key(root.public_key())
    if not any(e["key"] == signer and "root" in e["roles"] for e in entries):
        raise ValueError("the signing root key must be in the store with the root role")
    body = cbor2.dumps({"format": 1, "counter": counter,
                        "keys": [{"key": e["key"], "roles": list(e["roles"]), "dev": bool(e.get("dev")),
                                  "name": e.get("name", "")} for e in entries]}, canonical=True)
    return cbor2.dumps({"body": body, "signer": keyhash(signer), "sig": root.sign(body)}, canonical=True)


def read(data: bytes) -> dict:
    outer = cbor2.loads(data)
    body = cbor2.loads(outer["body"])
    body["signer"] = outer["signer"].hex()
    return body
