"""Signed image acceptance (loader/image.py): the streaming MCUboot header and TLV reader and the acceptance policy
(hash, signer, development keys, signature, board, loader API, security counter) the loader applies to an uploaded
image. Documented error: Rejected (with a stable reason code, docs/image-format.md).

Input: a switch byte s, then the image. The switch fixes up what gates the parser, so that mutated images get deep:
    s & 4     the header's protect_tlv_size is set to the protected area's own total (when its magic is in place)
    s & 2     the unprotected area's total is set to what is left of the file
    s & 1     the SHA256 TLV is set to the SHA-256 the header's sizes cover (the signature then no longer matches
              unless header, payload and protected TLVs are those that were signed: the host's mutator re-signs)
    s & 8     a locked meter (development keys refused), else a development one
    s >> 4 & 3  the stored security counter: 0, 5, 6, 40
    s & 64    the meter is an rpi_pico, else an esp32_devkitc
Invariants: an accepted image passes the upload's first-chunk check (check_header); its SHA-256 over header,
payload and protected TLVs (computed here, apart from the firmware's stream) equals its SHA256 TLV; its KEYHASH names
an image-role key of the trust list (not a development key on a locked meter). The host checks its signature with cryptography and imgtool, and its structure
with ota_tool (meter_fuzz/host/image_header.py)."""

import hashlib
import io
import struct
from binascii import unhexlify

import fuzzcore

from loader import LOADER_API, image

ERRORS = (image.Rejected,)
MODULES = ("loader/image.py",)
MEM_BASE = 48 * 1024
MEM_PER_BYTE = 64
BUDGET = 64 * 1024
MAX_STEP = 16
# the fixtures' keys (host_tests/firmware/fixtures/make_images.py): the development image key, an image-only key
# (bytes([7] * 32)), the command key (no image role)
TRUST = (
    {"key": unhexlify("cb85ae1f4ef1b1bbf1308d9bc18224859752fe9034d253ac48fa4981f02506c5"), "roles": ["image"],
     "dev": True},
    {"key": unhexlify("ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"), "roles": ["image"],
     "dev": False},
    {"key": unhexlify("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"), "roles": ["command"],
     "dev": False},
)


def _u16(b, off):
    return b[off] | b[off + 1] << 8


def _put16(b, off, v):
    b[off] = v & 0xFF
    b[off + 1] = v >> 8 & 0xFF


def fix(data):
    """The image input `data` stands for, with the fix-ups its switch byte asks for."""
    s = data[0] if data else 0
    img = bytearray(data[1:])
    if len(img) < image.HEADER_SIZE:
        return bytes(img)
    hdr_size = _u16(img, 8)
    img_size = struct.unpack_from("<I", img, 12)[0]
    end = hdr_size + img_size
    if s & 4 and end + 4 <= len(img) and _u16(img, end) == image.TLV_PROT_INFO_MAGIC:
        _put16(img, 10, _u16(img, end + 2))
    end_prot = end + _u16(img, 10)
    if s & 2 and end_prot + 4 <= len(img) and len(img) - end_prot < 0x10000:
        _put16(img, end_prot + 2, len(img) - end_prot)
    if s & 1 and end_prot + 4 <= len(img):
        digest = hashlib.sha256(img[:end_prot]).digest()
        p = end_prot + 4
        while p + 4 <= len(img):
            kind, n = _u16(img, p), _u16(img, p + 2)
            if kind == 0x10 and n == 32 and p + 36 <= len(img):
                img[p + 4:p + 36] = digest
                break
            p += 4 + n
    return bytes(img)


def policy(s):
    """(board id, stored counter, development) of the meter the switch byte names."""
    return ("rpi_pico" if s & 64 else "esp32_devkitc"), (0, 5, 6, 40)[s >> 4 & 3], not s & 8


def run(data):
    img = fix(data)
    s = data[0] if data else 0
    board, counter, development = policy(s)
    early = None
    if len(img) >= image.HEADER_SIZE:  # the upload's first-chunk check (loader/image_group.py)
        try:
            image.check_header(img[:image.HEADER_SIZE], len(img), BUDGET)
        except image.Rejected as e:
            early = e
    info = image.read(io.BytesIO(img), len(img), BUDGET)
    entry = image.accept(info, TRUST, board, LOADER_API, counter, MAX_STEP, development)
    end_prot = info["hdr_size"] + info["img_size"] + _u16(img, 10)
    fuzzcore.check(hashlib.sha256(img[:end_prot]).digest() == info["digest"] == info["sha256"],
                   "an image was accepted whose SHA-256 differs from its SHA256 TLV")
    fuzzcore.check(image.ROLE_IMAGE in entry["roles"] and image.keyhash(entry["key"]) == info["keyhash"],
                   "an image was accepted whose KEYHASH names no image-role key")
    fuzzcore.check(development or not entry.get("dev"), "a locked meter accepted a development-key image")
    fuzzcore.check(counter <= info["counter"] <= counter + MAX_STEP and info["board"] == board.encode(),
                   "an image was accepted for another board or outside the counter window")
    fuzzcore.check(early is None, "an image accepted whole is refused by the first-chunk check (%s)" % early)
    return {"accepted": True, "image": img, "key": entry["key"], "digest": info["digest"],
            "signature": info["signature"]}
