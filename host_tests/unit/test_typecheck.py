"""The host side type-checks as Python 3.11, the oldest the kit supports (the suite runs on the newest the machine
has): mypy over ota_tool/, meterkit/, meter_fuzz/'s host side and the emulator's host side (its device side is firmware shims, checked with
the firmware against the MicroPython stubs in test_firmware_build.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_on_the_host_packages(tmp_path):
    p = subprocess.run([sys.executable, "-m", "mypy", "--python-version", "3.11", "--ignore-missing-imports",
                        "--cache-dir", str(tmp_path), "--exclude", "emulator/device/", "--exclude", "meter_fuzz/probes/",
                        "--exclude", "meter_fuzz/vm_main.py", "ota_tool", "meterkit", "emulator", "meter_fuzz"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
