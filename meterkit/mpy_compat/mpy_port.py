"""What CPython lacks of MicroPython's `os`, `time` and `asyncio` for firmware code run on it (firmware tests, the
littlefs power-cut sweeps): os.ilistdir, the tick functions, asyncio.sleep_ms and wait_for_ms. `install()` adds them; the VM and
boards have their own."""

import asyncio
import os
import time

TICKS_PERIOD = 1 << 30  # MicroPython's ticks wrap at 2**30, as on the ports


def _ilistdir(path: str = "."):
    for e in os.scandir(path):
        yield (e.name, 0x4000 if e.is_dir() else 0x8000, e.inode())


def _ticks_diff(a: int, b: int) -> int:
    return ((a - b + TICKS_PERIOD // 2) & (TICKS_PERIOD - 1)) - TICKS_PERIOD // 2


def install() -> None:
    if not hasattr(os, "ilistdir"):
        os.ilistdir = _ilistdir  # type: ignore[attr-defined]
    if not hasattr(time, "ticks_ms"):
        time.ticks_ms = lambda: int(time.monotonic() * 1000) & (TICKS_PERIOD - 1)  # type: ignore[attr-defined]
        time.ticks_add = lambda t, d: (t + d) & (TICKS_PERIOD - 1)  # type: ignore[attr-defined]
        time.ticks_diff = _ticks_diff  # type: ignore[attr-defined]
    if not hasattr(asyncio, "sleep_ms"):
        asyncio.sleep_ms = lambda ms: asyncio.sleep(ms / 1000)  # type: ignore[attr-defined]
        asyncio.wait_for_ms = lambda aw, ms: asyncio.wait_for(aw, ms / 1000)  # type: ignore[attr-defined]
