"""The device's own image acceptance code (firmware/loader/image.py and bundle.py, with the Ed25519 verifier and
CBOR decoder they use), loaded on CPython so that `ota verify` applies exactly the meter's policy with the same
strictness and reasons. MicroPython builtins they import (micropython, deflate) come from meterkit/mpy_compat."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

from meterkit.layout import FIRMWARE_DIR, ROOT

COMPAT = ROOT / "meterkit" / "mpy_compat"
_cache: dict[str, SimpleNamespace] = {}


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def modules(firmware_dir: Path = FIRMWARE_DIR) -> SimpleNamespace:
    """`.image` and `.bundle`: the firmware's modules, their device imports satisfied from the firmware tree and
    the stand-ins, without leaving the firmware's top-level names in the host's sys.modules."""
    key = str(firmware_dir)
    if key in _cache:
        return _cache[key]
    lib = firmware_dir / "lib"
    deps = [("micropython", COMPAT / "micropython.py"), ("deflate", COMPAT / "deflate.py"),
            ("sha512", lib / "sha512.py"), ("cbor", lib / "cbor.py"), ("ed25519", lib / "ed25519.py")]
    saved = {n: sys.modules.get(n) for n, _ in deps}
    saved_loader = {n: m for n, m in sys.modules.items() if n == "loader" or n.startswith("loader.")}
    try:
        for name, path in deps:
            sys.modules[name] = _load(name, path)
        img = _load("loader.image", firmware_dir / "loader" / "image.py")
        img._ed = sys.modules["ed25519"]  # what its lazy import would find on the device
        sys.modules["loader.image"] = img
        bnd = _load("meterkit_device_bundle", firmware_dir / "loader" / "bundle.py")
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
        sys.modules.pop("loader.image", None)
        sys.modules.update(saved_loader)
    ns = SimpleNamespace(image=img, bundle=bnd)
    _cache[key] = ns
    return ns
