"""MCUboot image format (as imgtool 2.5 writes it): 32-byte header, payload, protected TLV area, unprotected TLV
area. Building, signing (in process or externally: export the digest, import the signature) and parsing. This is a
library: it raises ImageError with a reason code and never prints.

Our images carry, besides MCUboot's own TLVs, two vendor TLVs in the protected area: BOARD (the board id, ASCII)
and LOADER_API (u16 little-endian). `imgtool sign --custom-tlv 0xa0 <board> --custom-tlv 0xa1 0x<lo><hi>` writes
the same bytes, so both tools produce identical images from the same inputs (Ed25519 signatures are deterministic).
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass, field
from enum import IntEnum

from construct import Bytes, Const, ConstructError, Int8ul, Int16ul, Int32ul, Struct
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import keys
from .errors import ImageError

IMAGE_MAGIC = 0x96F3B83D
HEADER_SIZE = 32
TLV_INFO_MAGIC = 0x6907
TLV_PROT_INFO_MAGIC = 0x6908
TLV_INFO_SIZE = 4
TLV_HEADER_SIZE = 4


class Tlv(IntEnum):
    KEYHASH = 0x01
    PUBKEY = 0x02
    SHA256 = 0x10
    ED25519 = 0x24
    SEC_CNT = 0x50
    BOARD = 0xA0  # vendor: board id, ASCII
    LOADER_API = 0xA1  # vendor: loader API the app needs, u16 LE


class Flag(IntEnum):
    NON_BOOTABLE = 0x10


HEADER = Struct(
    "magic" / Const(IMAGE_MAGIC, Int32ul),
    "load_addr" / Int32ul,
    "hdr_size" / Int16ul,
    "protect_tlv_size" / Int16ul,
    "img_size" / Int32ul,
    "flags" / Int32ul,
    "ver_major" / Int8ul,
    "ver_minor" / Int8ul,
    "ver_revision" / Int16ul,
    "ver_build" / Int32ul,
    "pad" / Bytes(4),
)
assert HEADER.sizeof() == HEADER_SIZE


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    revision: int
    build: int = 0

    _RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:\+(\d+))?$")

    @classmethod
    def parse(cls, text: str) -> Version:
        m = cls._RE.match(text.strip())
        if not m:
            raise ImageError("bad-version", f"{text!r} is not MAJOR.MINOR.REVISION[+BUILD]")
        v = cls(int(m[1]), int(m[2]), int(m[3]), int(m[4] or 0))
        if v.major > 255 or v.minor > 255 or v.revision > 65535 or v.build > 0xFFFFFFFF:
            raise ImageError("bad-version", f"{text!r}: fields must fit u8.u8.u16+u32")
        return v

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.revision}+{self.build}"


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("<HH", kind, len(value)) + value


def protected_tlvs(security_counter: int, board: str, loader_api: int) -> bytes:
    body = (tlv(Tlv.SEC_CNT, struct.pack("<I", security_counter)) + tlv(Tlv.BOARD, board.encode("ascii"))
            + tlv(Tlv.LOADER_API, struct.pack("<H", loader_api)))
    return struct.pack("<HH", TLV_PROT_INFO_MAGIC, len(body) + TLV_INFO_SIZE) + body


def unsigned_prefix(payload: bytes, version: Version, security_counter: int, board: str, loader_api: int,
                    flags: int = 0) -> bytes:
    """Header + payload + protected TLVs: exactly the bytes the SHA-256 TLV covers."""
    prot = protected_tlvs(security_counter, board, loader_api)
    hdr = HEADER.build(dict(load_addr=0, hdr_size=HEADER_SIZE, protect_tlv_size=len(prot), img_size=len(payload),
                            flags=flags, ver_major=version.major, ver_minor=version.minor,
                            ver_revision=version.revision, ver_build=version.build, pad=bytes(4)))
    return hdr + payload + prot


def digest(prefix: bytes) -> bytes:
    return hashlib.sha256(prefix).digest()


def attach_signature(prefix: bytes, pub: Ed25519PublicKey, signature: bytes) -> bytes:
    """Complete an image from its prefix and an Ed25519 signature over sha256(prefix) (made here or by an HSM)."""
    if len(signature) != 64:
        raise ImageError("bad-signature", f"an Ed25519 signature is 64 bytes, got {len(signature)}")
    try:
        pub.verify(signature, digest(prefix))
    except Exception as e:  # cryptography raises InvalidSignature
        raise ImageError("bad-signature", "the signature does not verify with this public key") from e
    body = tlv(Tlv.SHA256, digest(prefix)) + tlv(Tlv.KEYHASH, keys.keyhash(pub)) + tlv(Tlv.ED25519, signature)
    return prefix + struct.pack("<HH", TLV_INFO_MAGIC, len(body) + TLV_INFO_SIZE) + body


def check_hash(data: bytes, img: ParsedImage) -> None:
    """The image's SHA-256 TLV against its header, payload and protected TLVs (what the meter checks first)."""
    want = img.first(Tlv.SHA256, "unprotected")
    if want is None:
        raise ImageError("hash-mismatch", "the image has no SHA-256 TLV")
    if want != digest(data[: img.prefix_len]):
        raise ImageError("hash-mismatch", "the SHA-256 TLV does not match the image: it was altered after signing")


def sign(prefix: bytes, key: Ed25519PrivateKey) -> bytes:
    return attach_signature(prefix, key.public_key(), key.sign(digest(prefix)))


@dataclass
class ParsedImage:
    header: dict
    version: Version
    payload: bytes
    protected: list[tuple[int, bytes]] = field(default_factory=list)
    unprotected: list[tuple[int, bytes]] = field(default_factory=list)
    prefix_len: int = 0

    def first(self, kind: int, area: str = "any") -> bytes | None:
        lists = {"protected": [self.protected], "unprotected": [self.unprotected]}.get(
            area, [self.protected, self.unprotected])
        for lst in lists:
            for k, v in lst:
                if k == kind:
                    return v
        return None


def _tlv_area(data: bytes, off: int, magic: int, what: str) -> tuple[list[tuple[int, bytes]], int]:
    if off + TLV_INFO_SIZE > len(data):
        raise ImageError("truncated", f"{what} TLV area header at {off} is past the end ({len(data)} bytes)")
    m, total = struct.unpack_from("<HH", data, off)
    if m != magic:
        raise ImageError("bad-tlv", f"{what} TLV area at {off}: magic {m:#06x}, expected {magic:#06x}")
    end = off + total
    if total < TLV_INFO_SIZE or end > len(data):
        raise ImageError("truncated", f"{what} TLV area at {off} claims {total} bytes; {len(data) - off} remain")
    out, p = [], off + TLV_INFO_SIZE
    while p < end:
        if p + TLV_HEADER_SIZE > end:
            raise ImageError("bad-tlv", f"{what} TLV at {p}: header crosses the area end")
        kind, n = struct.unpack_from("<HH", data, p)
        if p + TLV_HEADER_SIZE + n > end:
            raise ImageError("bad-tlv", f"{what} TLV {kind:#x} at {p}: {n} bytes cross the area end")
        out.append((kind, bytes(data[p + TLV_HEADER_SIZE: p + TLV_HEADER_SIZE + n])))
        p += TLV_HEADER_SIZE + n
    return out, end


def parse(data: bytes) -> ParsedImage:
    """Structure only (bounds, magics, TLV framing); acceptance is the device policy's job."""
    if len(data) < HEADER_SIZE:
        raise ImageError("truncated", f"{len(data)} bytes is shorter than the {HEADER_SIZE}-byte header")
    try:
        h = HEADER.parse(data[:HEADER_SIZE])
    except ConstructError as e:
        raise ImageError("bad-magic", f"not an MCUboot image (magic {data[:4][::-1].hex()})") from e
    if h.hdr_size < HEADER_SIZE:
        raise ImageError("bad-header", f"hdr_size {h.hdr_size} < {HEADER_SIZE}")
    start, end = h.hdr_size, h.hdr_size + h.img_size
    if end > len(data):
        raise ImageError("truncated", f"payload ends at {end}, the file has {len(data)} bytes")
    img = ParsedImage(header={k: v for k, v in h.items() if not k.startswith("_")},
                      version=Version(h.ver_major, h.ver_minor, h.ver_revision, h.ver_build),
                      payload=bytes(data[start:end]))
    off = end
    if h.protect_tlv_size:
        img.protected, off = _tlv_area(data, off, TLV_PROT_INFO_MAGIC, "protected")
        if off - end != h.protect_tlv_size:
            raise ImageError("bad-tlv", f"protected area is {off - end} bytes, header says {h.protect_tlv_size}")
    img.prefix_len = off
    img.unprotected, off = _tlv_area(data, off, TLV_INFO_MAGIC, "unprotected")
    if off != len(data):
        raise ImageError("trailing-data", f"{len(data) - off} bytes after the TLV area")
    return img
