"""The device's own image acceptance code (firmware/loader/image.py and the Ed25519 verifier it uses), loaded on
CPython so that `ota verify` applies exactly the meter's policy with the same strictness and reasons."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from types import ModuleType

from meterkit.layout import FIRMWARE_DIR

_cache: dict[str, ModuleType] = {}


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def image_module(firmware_dir: Path = FIRMWARE_DIR) -> ModuleType:
    """firmware/loader/image.py with its device imports (micropython.const, ed25519) satisfied from the firmware
    tree, without putting the firmware's top-level names on the host's sys.path."""
    key = str(firmware_dir)
    if key in _cache:
        return _cache[key]
    saved = {n: sys.modules.get(n) for n in ("micropython", "ed25519", "sha512")}
    try:
        mp = types.ModuleType("micropython")
        mp.const = lambda x: x  # type: ignore[attr-defined]
        sys.modules["micropython"] = mp
        lib = firmware_dir / "lib"
        if (lib / "sha512.py").exists():
            sys.modules["sha512"] = _load("sha512", lib / "sha512.py")
        ed = _load("ed25519", lib / "ed25519.py")
        sys.modules["ed25519"] = ed
        mod = _load("meterkit_device_image", firmware_dir / "loader" / "image.py")
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
    _cache[key] = mod
    return mod
