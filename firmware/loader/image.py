# Signed image acceptance on the device: a streaming MCUboot reader (header and TLV areas parsed with strict
# bounds, the image hashed from the filesystem in fixed chunks, never held whole in RAM) and the acceptance policy.
# `ota verify` runs this same module on CPython, so the host applies exactly the device's policy.
import hashlib
import os
import struct

from micropython import const

IMAGE_MAGIC = const(0x96F3B83D)
HEADER_SIZE = const(32)
TLV_INFO_MAGIC = const(0x6907)
TLV_PROT_INFO_MAGIC = const(0x6908)
_TLV_KEYHASH = const(0x01)
_TLV_SHA256 = const(0x10)
_TLV_ED25519 = const(0x24)
_TLV_SEC_CNT = const(0x50)
_TLV_BOARD = const(0xA0)
_TLV_LOADER_API = const(0xA1)
PROTECTED_MAX = const(256)  # our protected area is ~40 bytes; anything larger is refused before reading it
UNPROTECTED_MAX = const(512)
_CHUNK = const(1024)
_CHUNK_MIN = const(64)
# DER SubjectPublicKeyInfo prefix of an Ed25519 key: KEYHASH = SHA-256(prefix + raw key)
_ED25519_SPKI_PREFIX = b"\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00"

ROLE_ROOT = "root"
ROLE_IMAGE = "image"
ROLE_COMMAND = "command"

# Rejection reasons (stable codes; docs/image-format.md lists them with their SMP error mapping)
R_BAD_MAGIC = "bad-magic"
R_TRUNCATED = "truncated"
R_BAD_TLV = "bad-tlv"
R_BAD_HEADER = "bad-header"
R_OVERSIZE = "oversize"
R_HASH = "hash-mismatch"
R_UNKNOWN_KEY = "unknown-key"
R_SIGNATURE = "bad-signature"
R_BOARD = "wrong-board"
R_COUNTER_LOW = "counter-too-low"
R_COUNTER_STEP = "counter-step"
R_LOADER_API = "loader-api"
R_DEV_KEY = "development-key-refused"


class Rejected(Exception):
    def __init__(self, reason, detail=""):
        super().__init__(reason + (": " + detail if detail else ""))
        self.reason = reason


_ed = None  # ed25519, imported on first use: it is large and most boots never verify anything


def _ed25519():
    global _ed
    if _ed is None:
        import ed25519

        _ed = ed25519
    return _ed


def keyhash(raw_key):
    return hashlib.sha256(_ED25519_SPKI_PREFIX + bytes(raw_key)).digest()


def _read_exact(f, n):
    data = f.read(n)
    if data is None or len(data) != n:
        raise Rejected(R_TRUNCATED)
    return data


def _tlvs(data, magic):
    if len(data) < 4:
        raise Rejected(R_TRUNCATED)
    m, total = struct.unpack_from("<HH", data, 0)
    if m != magic:
        raise Rejected(R_BAD_TLV, "area magic")
    if total != len(data):
        raise Rejected(R_BAD_TLV, "area size")
    out = []
    p = 4
    while p < total:
        if p + 4 > total:
            raise Rejected(R_BAD_TLV, "header crosses area end")
        kind, n = struct.unpack_from("<HH", data, p)
        if p + 4 + n > total:
            raise Rejected(R_BAD_TLV, "value crosses area end")
        out.append((kind, bytes(data[p + 4:p + 4 + n])))
        p += 4 + n
    return out


def _only(tlvs, kind, size=None):
    found = [v for k, v in tlvs if k == kind]
    if len(found) != 1:
        raise Rejected(R_BAD_TLV, "expected one TLV %#x, found %d" % (kind, len(found)))
    if size is not None and len(found[0]) != size:
        raise Rejected(R_BAD_TLV, "TLV %#x length" % kind)
    return found[0]


def check_header(hdr, file_size, slot_budget):
    """The checks a first upload chunk allows: magic, header size and declared sizes within the budget."""
    magic, _load, hdr_size, prot_size, img_size = struct.unpack_from("<IIHHI", hdr, 0)
    if magic != IMAGE_MAGIC:
        raise Rejected(R_BAD_MAGIC)
    if hdr_size < HEADER_SIZE:
        raise Rejected(R_BAD_HEADER, "hdr_size %d" % hdr_size)
    if prot_size > PROTECTED_MAX or img_size > slot_budget:
        raise Rejected(R_OVERSIZE)
    if hdr_size + img_size + prot_size + 4 > file_size:
        raise Rejected(R_TRUNCATED, "declared sizes exceed the upload length")


def _buffer():
    """The hashing's read buffer: _CHUNK bytes, or a quarter as many down to _CHUNK_MIN where the heap has no piece
    that large (an ESP32 with its network up, after a power cut, once had 69 KB free and none of it in a piece over
    992 bytes: a check must not fail for want of one kilobyte in one piece)."""
    n = _CHUNK
    while True:
        try:
            return bytearray(n)
        except MemoryError:
            if n <= _CHUNK_MIN:
                raise
            n //= 4


def read(f, file_size, slot_budget):
    """Parse and hash an image from an open binary file. Returns a dict: version, img_size, hdr_size, digest (the
    computed SHA-256), sha256/keyhash/signature (TLV values), counter, board, loader_api, payload_offset."""
    hdr = _read_exact(f, HEADER_SIZE)
    magic, _load, hdr_size, prot_size, img_size, flags, vmaj, vmin, vrev, vbuild = struct.unpack_from(
        "<IIHHIIBBHI", hdr, 0)
    if magic != IMAGE_MAGIC:
        raise Rejected(R_BAD_MAGIC)
    if hdr_size < HEADER_SIZE:
        raise Rejected(R_BAD_HEADER, "hdr_size %d" % hdr_size)
    if prot_size > PROTECTED_MAX:
        raise Rejected(R_OVERSIZE, "protected TLV area of %d bytes" % prot_size)
    end_prot = hdr_size + img_size + prot_size
    if img_size > slot_budget or file_size > slot_budget + hdr_size + PROTECTED_MAX + UNPROTECTED_MAX:
        raise Rejected(R_OVERSIZE, "%d bytes, slot budget %d" % (img_size, slot_budget))
    if end_prot + 4 > file_size:
        raise Rejected(R_TRUNCATED)
    h = hashlib.sha256(hdr)
    remaining = hdr_size + img_size - HEADER_SIZE
    buf = _buffer()
    mv = memoryview(buf)
    while remaining:
        n = f.readinto(mv[:min(len(buf), remaining)])
        if not n:
            raise Rejected(R_TRUNCATED)
        h.update(mv[:n])
        remaining -= n
    prot = []
    if prot_size:
        raw = _read_exact(f, prot_size)
        h.update(raw)
        prot = _tlvs(raw, TLV_PROT_INFO_MAGIC)
    unprot_size = file_size - end_prot
    if unprot_size > UNPROTECTED_MAX:
        raise Rejected(R_OVERSIZE, "unprotected TLV area")
    unprot = _tlvs(_read_exact(f, unprot_size), TLV_INFO_MAGIC)
    for k, _ in unprot:  # what no signature covers holds what the check needs and nothing else (MCUboot's TLV allow
        # list): `imgtool verify` refuses a second hash of another kind the meter would skip (a fuzz finding)
        if k not in (_TLV_SHA256, _TLV_KEYHASH, _TLV_ED25519):
            raise Rejected(R_BAD_TLV, "TLV %#x in the unprotected area" % k)
    info = {
        "version": "%d.%d.%d+%d" % (vmaj, vmin, vrev, vbuild),
        "hdr_size": hdr_size,
        "img_size": img_size,
        "flags": flags,
        "digest": h.digest(),
        "sha256": _only(unprot, _TLV_SHA256, 32),
        "keyhash": _only(unprot, _TLV_KEYHASH, 32),
        "signature": _only(unprot, _TLV_ED25519, 64),
        "counter": struct.unpack("<I", _only(prot, _TLV_SEC_CNT, 4))[0],
        "board": _only(prot, _TLV_BOARD),
        "loader_api": struct.unpack("<H", _only(prot, _TLV_LOADER_API, 2))[0],
        "payload_offset": hdr_size,
    }
    return info


def accept(info, trust, board_id, loader_api, stored_counter, max_step, development):
    """Apply the acceptance policy to what `read` returned. `trust`: list of {"key": raw 32 bytes, "roles": [...],
    "dev": bool}. Raises Rejected; returns the trusted key entry used."""
    if info["digest"] != info["sha256"]:
        raise Rejected(R_HASH)
    entry = None
    for t in trust:
        if ROLE_IMAGE in t.get("roles", ()) and keyhash(t["key"]) == info["keyhash"]:
            entry = t
            break
    if entry is None:
        raise Rejected(R_UNKNOWN_KEY)
    if entry.get("dev") and not development:
        raise Rejected(R_DEV_KEY)
    if not _ed25519().verify(entry["key"], info["digest"], info["signature"]):
        raise Rejected(R_SIGNATURE)
    if info["board"] != board_id.encode():
        raise Rejected(R_BOARD, "image for %r" % (info["board"],))
    if info["loader_api"] != loader_api:
        raise Rejected(R_LOADER_API, "needs %d, loader serves %d" % (info["loader_api"], loader_api))
    if info["counter"] < stored_counter:
        raise Rejected(R_COUNTER_LOW, "%d < %d" % (info["counter"], stored_counter))
    if info["counter"] > stored_counter + max_step:
        raise Rejected(R_COUNTER_STEP, "%d is more than %d above %d" % (info["counter"], max_step, stored_counter))
    return entry


def check_file(path, trust, board_id, loader_api, stored_counter, max_step, development, slot_budget):
    size = os.stat(path)[6]
    with open(path, "rb") as f:
        info = read(f, size, slot_budget)
    accept(info, trust, board_id, loader_api, stored_counter, max_step, development)
    return info
