"""Ed25519 keys for meterkit: generation (PKCS#8 PEM, encrypted with a passphrase when given), loading, and the
public forms a meter's trust store and an MCUboot image use (raw 32 bytes, PEM, KEYHASH = SHA-256 of the DER
SubjectPublicKeyInfo, as imgtool computes it)."""

from __future__ import annotations

import hashlib
import os
from enum import StrEnum
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import KeyProblem

DEV_KEYS_DIR = Path(__file__).resolve().parents[1] / "keys" / "dev"
"""Development keys shipped in the repository: trusted by development-mode meters only."""


class Role(StrEnum):
    """What a key may sign. Root: trust-store updates only. Image: application and loader images. Command: signed
    command envelopes (relay, top-up, tariff, calibration, clock, confirm/erase, unlock)."""

    ROOT = "root"
    IMAGE = "image"
    COMMAND = "command"


def generate(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    if path.exists():
        raise KeyProblem(f"{path} exists; refusing to overwrite a key (move it away first)")
    key = Ed25519PrivateKey.generate()
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


def load_private(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    data = _read(path)
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as e:
        raise KeyProblem(f"{path}: " + ("the key is encrypted: give its passphrase" if passphrase is None
                                        else "the key is not encrypted: drop the passphrase")) from e
    except ValueError as e:
        raise KeyProblem(f"{path}: not a readable private key (or wrong passphrase): {e}") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyProblem(f"{path}: not an Ed25519 key (meterkit images and commands use Ed25519)")
    return key


def load_public(path: Path, passphrase: bytes | None = None) -> Ed25519PublicKey:
    """A public key from a public PEM, or the public half of a private PEM."""
    data = _read(path)
    if b"PRIVATE KEY" in data:
        return load_private(path, passphrase).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as e:
        raise KeyProblem(f"{path}: not a readable public key: {e}") from e
    if not isinstance(key, Ed25519PublicKey):
        raise KeyProblem(f"{path}: not an Ed25519 key")
    return key


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise KeyProblem(f"{path}: {e.strerror}") from e


def raw(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def der(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def pem(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def keyhash(pub: Ed25519PublicKey) -> bytes:
    """MCUboot's KEYHASH TLV value: SHA-256 of the DER SubjectPublicKeyInfo."""
    return hashlib.sha256(der(pub)).digest()


def passphrase_from_env(var: str | None) -> bytes | None:
    if var is None:
        return None
    value = os.environ.get(var)
    if not value:
        raise KeyProblem(f"environment variable {var} is empty or unset")
    return value.encode()
