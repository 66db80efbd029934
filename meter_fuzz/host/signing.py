"""The keys the fuzz targets' seeds and structure-aware mutators sign with (host only: the VM has no signing
library). They are the firmware fixtures' own keys (host_tests/firmware/fixtures/make_images.py), so a probe's
trust list and the fixtures agree; the development image key is public in the repository."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from meter_fuzz import paths

FIXTURES = paths.ROOT / "host_tests" / "firmware" / "fixtures"


def raw_public(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


def keyhash(raw: bytes) -> bytes:
    return hashlib.sha256(b"\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00" + raw).digest()


def dev_image_key() -> Ed25519PrivateKey:
    from ota_tool import keys

    return keys.load_private(paths.ROOT / "keys" / "dev" / "image-DEVELOPMENT-ONLY-ed25519.pem")


def command_key() -> Ed25519PrivateKey:
    """make_images.other_key(): the command key of trust.json and trust_v2/trust_supply."""
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def image_only_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([7] * 32))


def roots() -> tuple[Ed25519PrivateKey, Ed25519PrivateKey]:
    return (Ed25519PrivateKey.from_private_bytes(bytes([0xA0] * 32)),
            Ed25519PrivateKey.from_private_bytes(bytes([0xB0] * 32)))


def fixture(name: str) -> bytes:
    return Path(FIXTURES / name).read_bytes()


def write_seeds(name: str, inputs) -> list[Path]:
    """Write a target's seeds into its committed corpus folder, named by content (seed-<sha1 prefix>)."""
    out = paths.CORPUS_DIR / name
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for data in inputs:
        p = out / f"seed-{hashlib.sha1(data).hexdigest()[:12]}"
        p.write_bytes(data)
        written.append(p)
    return written
