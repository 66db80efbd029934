"""Host extras of bundle: seeds from the firmware's bundle fixtures (each refusal the bundle check names, as the
deflate stream and as plain bytes) and a structure-aware mutator that edits the manifest (paths, sizes, kinds,
agreement fields) and the files, fixes the hashes where it chooses to, and compresses with zlib at the device's window
(4 KB) — compression bombs included: a few bytes of deflate that claim and inflate to far more."""

from __future__ import annotations

import hashlib
import random
import struct
import zlib
from collections.abc import Iterator

import cbor2

from meter_fuzz.host import signing

API = 2
NAMES = ("good", "dotdot", "absolute", "outside_app", "shadow", "board", "counter", "hash", "trailing", "short")


def payload_of(img: bytes) -> bytes:
    hdr_size, _prot, img_size = struct.unpack_from("<HHI", img, 8)
    return img[hdr_size:hdr_size + img_size]


def deflate(body: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -12, 9)
    return c.compress(body) + c.flush()


def inflate(stream: bytes) -> bytes:
    d = zlib.decompressobj(-15)
    return d.decompress(stream, 1 << 20)


def body(files: list[tuple[dict, bytes]], manifest: dict | None = None, fix: bool = True, trailing: bytes = b"") -> bytes:
    entries = []
    for e, data in files:
        e = dict(e)
        if fix:
            e["sha256"] = hashlib.sha256(data).digest()
        entries.append(e)
    m = {"format": 1, "board": "esp32_devkitc", "version": "1.2.3+4", "loader_api": API, "security_counter": 5,
         "files": entries}
    m.update(manifest or {})
    mb = cbor2.dumps(m, canonical=True)
    return b"MKB1" + struct.pack("<I", len(mb)) + mb + b"".join(d for _, d in files) + trailing


PATHS = ["app/main.mpy", "app/../boot.py", "/app/x.mpy", "app//x.mpy", "app/./x.mpy", "app/x\x00.mpy", "lib/x.mpy",
         "loader/x.mpy", "app\\x.mpy", "app", "app/", "app/a.py", "app/a.mpy", "app/sub/deep/x.mpy", "..", "app/..",
         "app/x.mpy/", "app/main.mpy", "boot.py", "app/ü.mpy", ""]


def mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    nfiles = rng.randrange(0, 4)
    files = []
    for _ in range(nfiles):
        size = rng.choice([0, 1, 10, 100, 1024, 1025, 3000])
        content = rng.choice([bytes(size), rng.randbytes(size), b"M\x06" * (size // 2)])[:size]
        e = {"path": rng.choice(PATHS), "size": size}
        if rng.randrange(8) == 0:
            e["size"] = rng.choice([-1, size + 1, size - 1, 2**32, 1.0 * size, True, None])
        files.append((e, content))
    manifest: dict = {}
    if rng.randrange(4) == 0:
        manifest[rng.choice(["board", "version", "loader_api", "security_counter", "kind", "format", "files"])] = \
            rng.choice(["rpi_pico", "1.2.3", "1.2.3+4", 2, 2.0, True, 5, 6, "loader", "app", "other", 1, 2, [], None])
    bomb = rng.randrange(10) == 0
    if bomb:  # one file of zeros far larger than its compressed form (the budget check runs on the manifest's sizes)
        size = rng.choice([60000, 65536, 70000, 1 << 20])
        files = [({"path": "app/bomb.mpy", "size": size}, bytes(size))]
    try:
        raw = body(files, manifest, fix=rng.randrange(6) != 0, trailing=rng.choice([b"", b"", b"", b"x"]))
    except (TypeError, ValueError, cbor2.CBOREncodeError):
        raw = body([])
    if rng.randrange(6) == 0 and len(raw) > 8:
        raw = raw[: rng.randrange(8, len(raw))]
    s = rng.randrange(16) & ~1 & ~2 if (bomb or rng.randrange(2)) else (rng.randrange(16) | 1)
    out = bytes([s]) + (deflate(raw) if not s & 1 else raw)
    return out[:max_size]


def seeds() -> Iterator[bytes]:
    for name in NAMES:
        stream = payload_of(signing.fixture(f"bundle_{name}.img"))
        yield b"\x00" + stream
        yield b"\x01" + inflate(stream)
    yield b"\x04" + payload_of(signing.fixture("bundle_good.img"))  # over a 2,000-byte budget
    files = [({"path": "app/__init__.mpy", "size": 3}, b"M\x06x"), ({"path": "app/sub/main.mpy", "size": 4}, b"abcd")]
    yield b"\x01" + body(files)
    yield b"\x03" + body(files, fix=False)
    yield b"\x09" + body(files, {"board": "rpi_pico", "version": "2.0.0", "security_counter": 9})
    yield b"\x01" + body([({"path": "loader/x.mpy", "size": 2}, b"xy"), ({"path": "lib/y.mpy", "size": 1}, b"z")],
                         {"kind": "loader"})
    yield b"\x01" + body([({"path": "app/x.mpy", "size": 2}, b"xy")], {"kind": "loader"})
    yield b"\x01" + body([({"path": "app/a.mpy", "size": 1}, b"a"), ({"path": "app/a.mpy", "size": 1}, b"a")])
    yield b"\x00" + deflate(body([({"path": "app/bomb.mpy", "size": 60000}, bytes(60000))]))
    yield b"\x00" + deflate(body([({"path": "app/bomb.mpy", "size": 1 << 20}, bytes(1 << 20))]))[:4000]
    yield b"\x00" + b"\x07" + bytes(20)  # an invalid deflate block type
