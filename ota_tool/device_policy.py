"""The device's own image acceptance code (firmware/loader/image.py and bundle.py, with the Ed25519 verifier and
CBOR decoder they use), loaded on CPython so that `ota verify` applies exactly the meter's policy with the same
strictness and reasons. MicroPython builtins they import (micropython, deflate) come from meterkit/mpy_compat."""

from __future__ import annotations

import ast
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
        img._ed = sys.modules["ed25519"]  # type: ignore[attr-defined]  # what its lazy import finds on the device
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
    ns = SimpleNamespace(image=img, bundle=bnd, **vars(_staging_facts(firmware_dir)))
    _cache[key] = ns
    return ns


def _staging_facts(firmware_dir: Path) -> SimpleNamespace:
    """`max_counter_step` and `slot_budget(board)` exactly as firmware/loader/staging.py defines them, taken from
    its source (importing it would need the loader package and its filesystem modules)."""
    path = firmware_dir / "loader" / "staging.py"
    tree = ast.parse(path.read_text(), str(path))
    keep: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "slot_budget":
            keep.append(node)
        elif (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
              and node.targets[0].id == "MAX_COUNTER_STEP"):
            keep.append(node)
    if len(keep) != 2:
        raise RuntimeError(f"{path}: MAX_COUNTER_STEP or slot_budget is gone; ota reads both from there")
    ns: dict = {"const": lambda v: v}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), ns)  # noqa: S102 - our own firmware
    return SimpleNamespace(max_counter_step=ns["MAX_COUNTER_STEP"], slot_budget=ns["slot_budget"])


def _int_constants(path: Path) -> dict[str, int]:
    """A firmware module's top-level NAME = <int> (or const(<int>)) assignments, read from its source."""
    tree = ast.parse(path.read_text(), str(path))
    out: dict[str, int] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        v = node.value
        if isinstance(v, ast.Call) and getattr(v.func, "id", "") == "const" and len(v.args) == 1:
            v = v.args[0]
        if isinstance(v, ast.Constant) and type(v.value) is int:
            out[node.targets[0].id] = v.value
    return out


# how the host words a few event names (keyed by the firmware's constant name; the codes come from the firmware)
EVENT_WORDS = {"POWER_RESTORE": "power restored", "COVER_OPEN": "cover opened (tamper)", "TOPUP_ACCEPTED":
               "top-up accepted", "LOG_LOST": "event log damaged", "ROLLED_BACK": "rolled back"}


def event_codes(firmware_dir: Path = FIRMWARE_DIR) -> dict[int, str]:
    """The meter's event codes (firmware/app/events.py: the public 3-digit constants; a private one is the module's own
    number, such as the last IS 15959 code) and their names in words."""
    consts = _int_constants(firmware_dir / "app" / "events.py")
    return {v: EVENT_WORDS.get(k, k.lower().replace("_", " ")) for k, v in consts.items()
            if 100 <= v <= 999 and not k.startswith("_")}


def uplink_bounds(firmware_dir: Path = FIRMWARE_DIR) -> tuple[int, int]:
    """The shortest and longest uplink period a meter takes for its head-end (firmware/app/network.py)."""
    consts = _int_constants(firmware_dir / "app" / "network.py")
    return consts["UPLINK_MIN_S"], consts["UPLINK_MAX_S"]


def class70_states(firmware_dir: Path = FIRMWARE_DIR) -> dict[int, str]:
    """DLMS class-70 control states as the firmware numbers them (firmware/app/disconnect.py)."""
    consts = _int_constants(firmware_dir / "app" / "disconnect.py")
    words = {"DISCONNECTED": "disconnected", "CONNECTED": "connected", "READY": "ready for reconnection"}
    return {consts[k]: w for k, w in words.items()}
