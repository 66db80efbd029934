"""Host extras of image_header: the differential checks against the host's own structure parser (ota_tool.image),
OpenSSL (cryptography) and MCUboot's imgtool, a structure-aware mutator that builds and signs images field by field
(so that mutated headers, payloads and TLV areas reach the signature check and beyond), and seeds from the firmware
fixtures.

The rule: the firmware never accepts an image that ota_tool's parser, its hash check, cryptography's signature check
or `imgtool verify` refuses; and it never refuses for hash-mismatch or bad-signature an image whose hash and signature
all of them accept.

One documented difference is encoded, not hidden: `imgtool verify` (2.5.0) reads an unprotected TLV's 16-bit type as
one byte and a pad byte (struct "BBH"), so a TLV 0x0110 reads as a second SHA256 TLV to it (and 0x0124 as a
signature, before it has a digest: a TypeError inside imgtool). MCUboot's bootloader and the firmware read the 16-bit
type and skip unknown TLVs. imgtool is asked only about images whose unprotected TLV types all fit in one byte."""

from __future__ import annotations

import hashlib
import random
import struct
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from meter_fuzz.host import signing
from meter_fuzz.probes import fuzzcore

MAGIC = 0x96F3B83D
API = 2


def _imgtool_ok(img: bytes, key: bytes) -> bool:
    from imgtool import image as imgtool_image
    from imgtool.keys.ed25519 import Ed25519Public

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.bin"
        p.write_bytes(img)
        res = imgtool_image.Image.verify(str(p), Ed25519Public(Ed25519PublicKey.from_public_bytes(key)))[0]
    return res == imgtool_image.VerifyResult.OK


def _crypto_ok(key: bytes, sig: bytes, digest: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(sig, digest)
    except (InvalidSignature, ValueError):
        return False
    return True


def _trusted() -> dict[bytes, bytes]:
    from image_header import TRUST  # the probe's own trust list

    return {signing.keyhash(t["key"]): t["key"] for t in TRUST if "image" in t["roles"]}


def differential(data: bytes, result) -> None:
    from ota_tool import image as ota_image

    if isinstance(result, dict):
        img = result["image"]
        try:
            parsed = ota_image.parse(img)
            ota_image.check_hash(img, parsed)
        except ota_image.ImageError as e:
            raise fuzzcore.Violation(f"the firmware accepts an image ota_tool refuses: {e.reason}") from None
        if not _crypto_ok(result["key"], result["signature"], result["digest"]):
            raise fuzzcore.Violation("the firmware accepts an image whose signature cryptography refuses")
        if all(k < 0x100 for k, _ in parsed.unprotected) and not _imgtool_ok(img, result["key"]):
            raise fuzzcore.Violation("the firmware accepts an image `imgtool verify` refuses")
        return
    if getattr(result, "reason", None) not in ("hash-mismatch", "bad-signature"):
        return
    from image_header import fix

    img = fix(data)
    try:
        parsed = ota_image.parse(img)
        ota_image.check_hash(img, parsed)
    except ota_image.ImageError:
        return
    key = _trusted().get(parsed.first(0x01, "unprotected") or b"")
    sig = parsed.first(0x24, "unprotected")
    if key is not None and sig is not None and _crypto_ok(key, sig, ota_image.digest(img[:parsed.prefix_len])) \
            and all(k < 0x100 for k, _ in parsed.unprotected) and _imgtool_ok(img, key):
        raise fuzzcore.Violation(f"the firmware refuses ({result.reason}) an image whose hash and signature ota_tool, "
                                 "cryptography and imgtool accept")


# ---- building images field by field


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("<HH", kind, len(value)) + value


def build(payload: bytes, *, version=(1, 2, 3, 4), counter=5, board=b"esp32_devkitc", api=API, flags=0, hdr_pad=0,
          prot_extra: Sequence[bytes] = (), unprot_extra: Sequence[bytes] = (), key=None, prot_size_delta=0,
          sig_override: bytes | None = None, keyhash_override: bytes | None = None, sha_override: bytes | None = None,
          trailing=b"", no_prot=False, unprot_first: Sequence[bytes] = ()) -> bytes:
    key = key or signing.dev_image_key()
    prot_body = b"" if no_prot else tlv(0x50, struct.pack("<I", counter)) + tlv(0xA0, board) + tlv(0xA1, struct.pack("<H", api))
    prot_body += b"".join(prot_extra)
    prot = (struct.pack("<HH", 0x6908, len(prot_body) + 4) + prot_body) if prot_body else b""
    hdr_size = 32 + hdr_pad
    hdr = struct.pack("<IIHHIIBBHI", MAGIC, 0, hdr_size, len(prot) + prot_size_delta, len(payload), flags, *version)
    hdr += bytes(4) + bytes(hdr_pad)
    prefix = hdr + payload + prot
    digest = hashlib.sha256(prefix).digest()
    sig = sig_override if sig_override is not None else key.sign(digest)
    kh = keyhash_override if keyhash_override is not None else signing.keyhash(signing.raw_public(key))
    body = b"".join(unprot_first) + tlv(0x10, sha_override if sha_override is not None else digest) + tlv(0x01, kh) + tlv(0x24, sig)
    body += b"".join(unprot_extra)
    return prefix + struct.pack("<HH", 0x6907, len(body) + 4) + body + trailing


def _payload(data: bytes) -> bytes:
    try:
        hdr_size, _prot, img_size = struct.unpack_from("<HHI", data, 9)
        p = data[1 + hdr_size:1 + hdr_size + img_size]
        return p if len(p) == img_size else b"MKB1"
    except struct.error:
        return b"MKB1"


def mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    payload = bytearray(_payload(data))
    if payload and rng.randrange(3) == 0:
        for _ in range(1 + rng.randrange(4)):
            payload[rng.randrange(len(payload))] = rng.randrange(256)
    if rng.randrange(4) == 0:
        payload = payload[: rng.randrange(len(payload) + 1)]
    kw: dict = {}
    pick = rng.randrange(17)
    if pick == 0:
        kw["version"] = (rng.randrange(256), rng.randrange(256), rng.randrange(65536), rng.randrange(2**32))
    elif pick == 1:
        kw["counter"] = rng.choice([0, 4, 5, 6, 21, 22, 40, 56, 57, 2**32 - 1])
    elif pick == 2:
        kw["board"] = rng.choice([b"rpi_pico", b"", b"esp32_devkitc\x00", b"ESP32_DEVKITC", b"esp32"])
    elif pick == 3:
        kw["api"] = rng.choice([0, 1, 3, 0x102, 0xFFFF])
    elif pick == 4:
        kw["hdr_pad"] = rng.choice([4, 32, 1])
    elif pick == 5:
        kw["prot_extra"] = [tlv(rng.choice([0x50, 0xA0, 0xA1, 0x10, 0x01, 0x24, 0x7777]), rng.randbytes(rng.choice([0, 2, 4])))]
    elif pick == 6:
        kw["unprot_extra"] = [tlv(rng.choice([0x50, 0xA0, 0xA1, 0x10, 0x01, 0x24, 0x110, 0x124, 0x7777]),
                                  rng.randbytes(rng.choice([0, 2, 4, 32, 64])))]
    elif pick == 15:
        kw["unprot_first"] = [tlv(rng.choice([0x110, 0x124, 0x101, 0x7777]), rng.randbytes(rng.choice([32, 64])))]
    elif pick == 7:
        kw["key"] = rng.choice([signing.image_only_key(), signing.command_key(), signing.roots()[0]])
    elif pick == 8:
        kw["prot_size_delta"] = rng.choice([-4, -1, 1, 4, 200])
    elif pick == 9:
        kw["sig_override"] = rng.choice([bytes(64), b"\x01" + bytes(63), rng.randbytes(64), rng.randbytes(63)])
    elif pick == 10:
        kw["keyhash_override"] = rng.choice([bytes(32), rng.randbytes(31)])
    elif pick == 11:
        kw["flags"] = rng.choice([1, 0x10, 0x80000000])
    elif pick == 12:
        kw["trailing"] = rng.randbytes(rng.choice([1, 4, 8]))
    elif pick == 13:
        kw["no_prot"] = True
    elif pick == 14:
        kw["sha_override"] = rng.randbytes(rng.choice([31, 32, 33]))
    s = rng.randrange(256) if rng.randrange(2) else (data[0] if data else 0) & ~7
    return (bytes([s]) + build(bytes(payload), **kw))[:max_size]


def seeds() -> Iterator[bytes]:
    for name in ("good.img", "pico.img", "api_old.img", "other_key.img", "bundle_good.img", "bundle_board.img"):
        yield b"\x00" + signing.fixture(name)
    good = signing.fixture("bundle_good.img")
    yield bytes([8]) + good  # a locked meter: the development key is refused
    yield bytes([0x40]) + good  # on a pico
    yield bytes([0x30]) + good  # stored counter 40: too low
    payload = _payload(b"\x00" + good)
    yield bytes([8]) + build(payload, key=signing.image_only_key())  # accepted when locked
    yield bytes([0]) + build(payload, counter=21)
    yield bytes([0]) + build(payload, counter=22)  # a step of 17
    yield bytes([0]) + build(payload, hdr_pad=32)
    yield bytes([0]) + build(payload, unprot_extra=[tlv(0x50, bytes(4))])
    yield bytes([0]) + build(payload, prot_extra=[tlv(0xA0, b"rpi_pico")])  # two BOARD TLVs
    yield bytes([0]) + build(payload, unprot_extra=[tlv(0x24, bytes(64))])  # two signatures
    yield bytes([0]) + build(payload, key=signing.command_key())
    yield bytes([0]) + build(payload, sig_override=bytes(64))
    yield bytes([0]) + build(payload, trailing=b"xy")
    yield bytes([2]) + build(payload, trailing=b"xyzw")
    yield bytes([4]) + build(payload, prot_size_delta=4)
    yield bytes([1]) + build(payload + b"!")[:-100] + bytes(100)
    yield bytes([0]) + build(payload, no_prot=True)
    yield bytes([0]) + build(b"")
    yield bytes([0]) + build(payload, unprot_first=[tlv(0x7777, b"unknown")])
