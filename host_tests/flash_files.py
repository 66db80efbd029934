"""The files of an emulated meter's flash image (a MicroPython VfsLfs2 volume), read on CPython with littlefs-python:
what a test names when two images that should be equal are not."""

from __future__ import annotations

import hashlib
from pathlib import Path

from littlefs import LittleFS, UserContext

READ_SIZE = PROG_SIZE = LOOKAHEAD = 32  # MicroPython's VfsLfs2 defaults
BLOCK_CYCLES = 100  # MicroPython's VfsLfs2 (extmod/vfs_lfsx.c): metadata pairs move after 100 erases


def lfs_config(block_size: int, block_count: int) -> dict:
    return dict(block_size=block_size, block_count=block_count, read_size=READ_SIZE, prog_size=PROG_SIZE,
                cache_size=min(block_size, 4 * max(READ_SIZE, PROG_SIZE)), lookahead_size=LOOKAHEAD,
                block_cycles=BLOCK_CYCLES)


def files(image: bytes, block_size: int) -> dict[str, str]:
    """{path: sha256 hex} of every file in the image."""
    ctx = UserContext(len(image))
    ctx.buffer[:] = image
    fs = LittleFS(context=ctx, mount=False, **lfs_config(block_size, len(image) // block_size))
    fs.mount()
    out = {}
    for top, _dirs, names in fs.walk("/"):
        for n in names:
            p = f"{top.rstrip('/')}/{n}"
            with fs.open(p, "rb") as f:
                out[p] = hashlib.sha256(f.read()).hexdigest()
    return out


def read(image: bytes, block_size: int, path: str) -> bytes | None:
    """One file's bytes, or None when the image does not hold it."""
    ctx = UserContext(len(image))
    ctx.buffer[:] = image
    fs = LittleFS(context=ctx, mount=False, **lfs_config(block_size, len(image) // block_size))
    fs.mount()
    try:
        with fs.open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def differences(a: Path, b: Path, block_size: int) -> list[str]:
    """The files that differ between two flash images, one line each ("only in A", "only in B", "differs")."""
    fa, fb = files(a.read_bytes(), block_size), files(b.read_bytes(), block_size)
    out = [f"{p}: only in {a.name}" for p in sorted(fa.keys() - fb.keys())]
    out += [f"{p}: only in {b.name}" for p in sorted(fb.keys() - fa.keys())]
    out += [f"{p}: differs" for p in sorted(fa.keys() & fb.keys()) if fa[p] != fb[p]]
    return out or ["the same files with the same contents (the volumes differ only in littlefs metadata)"]
