"""The meter's filesystem layout (documented in docs/device-layout.md) and the staging of a freshly provisioned
meter: loader, board file, identity, mode and a first application in slot a with its manifest. Used by the emulator's
first power-up; `ota provision` puts the same tree on a real board."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from . import manifest, mpy

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE_DIR = ROOT / "firmware"

LOADER_FILES = ("boot.py", "main.py")  # stage 0 and the entry point: source at the root, never updated remotely
LOADER_DIRS = ("loader", "lib")  # what a loader folder (loaders/a, loaders/b) and a loader image hold
LOADERS_DIR = "loaders"
LOADER_MANIFEST = "manifest.json"
APP_PACKAGE = "app"
APP_MODULES = "modules.json"  # in the app package: the modules only some boards get (by front end)
SLOTS = ("a", "b")
METER_DIR = "meter"
MODE_DEVELOPMENT = "development"
MODE_LOCKED = "locked"


def app_version(firmware_dir: Path = FIRMWARE_DIR) -> str:
    return _constant(firmware_dir / APP_PACKAGE / "__init__.py", "VERSION")


def loader_version(firmware_dir: Path = FIRMWARE_DIR) -> str:
    return _constant(firmware_dir / "loader" / "__init__.py", "VERSION")


def loader_api(firmware_dir: Path = FIRMWARE_DIR) -> int:
    return int(_constant(firmware_dir / "loader" / "__init__.py", "LOADER_API"))


def compile_loader(firmware_dir: Path, arch: str, cache: mpy.Cache | None = None, opt: str = mpy.OPT
                   ) -> list[tuple[str, bytes]]:
    """The loader and its libraries as the board's bytecode: [(path in a loader folder, .mpy bytes)]."""
    import tempfile

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for d in LOADER_DIRS:
            for p in _python_files(firmware_dir / d):
                rel = (Path(d) / p.relative_to(firmware_dir / d)).with_suffix(".mpy")
                out.append((rel.as_posix(), mpy.compile_file(p, rel.with_suffix(".py").as_posix(), arch,
                                                              Path(tmp) / rel, cache, opt)))
    return out


BOARD_KEYED = ("frontend", "modem")  # modules.json sections keyed by the board file's frontend.type and modem.type


class AppModulesInvalid(ValueError):
    """firmware/app/modules.json is unreadable, names a module that does not exist, or has no entry for the
    board's front end or modem type (the message says which)."""


def app_sources(board: dict, firmware_dir: Path = FIRMWARE_DIR) -> list[Path]:
    """The app's source files this board gets, sorted: every module of the app package but the other front ends'
    and the modem drivers of other module types, or all of them on a board without a modem, and the DLMS port's
    modules on a board without uarts.optical
    (firmware/app/modules.json), so a board's flash and upload carry only what it can import."""
    src = firmware_dir / APP_PACKAGE
    spec_path = src / APP_MODULES
    try:
        spec = json.loads(spec_path.read_text())
        sections = {k: spec[k] if k == "frontend" else spec.get(k, {}) for k in BOARD_KEYED}
        for k, by_type in sections.items():
            if not isinstance(by_type, dict) or not all(
                    isinstance(v, list) and all(isinstance(m, str) for m in v) for v in by_type.values()):
                raise TypeError(f"{k!r} must map each {k} type to a list of module file names")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise AppModulesInvalid(f"{spec_path}: {type(e).__name__}: {e}") from e
    unstarted = spec.get("not_started", [])
    optical = spec.get("optical", [])  # the DLMS port's modules: only for a board with uarts.optical
    for key, mods in (("not_started", unstarted), ("optical", optical)):
        if not isinstance(mods, list) or not all(isinstance(m, str) for m in mods):
            raise AppModulesInvalid(f"{spec_path}: '{key}' must be a list of module file names")
    files = list(_python_files(src))
    names = {p.relative_to(src).as_posix() for p in files}
    listed = [(f"{k} {t!r}", mods) for k, by_type in sections.items() for t, mods in by_type.items()]
    for what, mods in [*listed, ("'not_started'", unstarted), ("'optical'", optical)]:
        missing = sorted(set(mods) - names)
        if missing:
            raise AppModulesInvalid(f"{spec_path}: {what} lists {', '.join(missing)}, not in {src}")
    kind = board["frontend"]["type"]
    if kind not in sections["frontend"]:
        raise AppModulesInvalid(f"{spec_path}: no entry for front end {kind!r} (board {board['id']}); "
                                f"it has {sorted(sections['frontend'])}")
    modem = (board.get("modem") or {}).get("type")
    if modem is not None and modem not in sections["modem"]:
        raise AppModulesInvalid(f"{spec_path}: no entry for modem type {modem!r} (board {board['id']}); "
                                f"it has {sorted(sections['modem'])}")
    mine = {"frontend": kind, "modem": modem}
    others: set[str] = set(unstarted)
    if "optical" not in board.get("uarts", {}):
        others |= set(optical)
    for k, by_type in sections.items():
        others |= {m for t, mods in by_type.items() if t != mine[k] for m in mods} - set(by_type.get(mine[k], []))
    return [p for p in files if p.relative_to(src).as_posix() not in others]


def compile_app(board: dict, firmware_dir: Path, out_dir: Path, cache: mpy.Cache | None = None,
                opt: str = mpy.OPT) -> list[tuple[str, bytes]]:
    """The board's app as its bytecode, written under `out_dir` too: [(path in a slot, .mpy bytes)], sorted."""
    out = []
    for p in app_sources(board, firmware_dir):
        rel = (Path(APP_PACKAGE) / p.relative_to(firmware_dir / APP_PACKAGE)).with_suffix(".mpy")
        out.append((rel.as_posix(), mpy.compile_file(p, rel.with_suffix(".py").as_posix(), board["mcu"]["arch"],
                                                     out_dir / rel, cache, opt)))
    return out


def app_loader_api(firmware_dir: Path = FIRMWARE_DIR) -> int:
    return int(_constant(firmware_dir / APP_PACKAGE / "__init__.py", "LOADER_API"))


def _constant(path: Path, name: str) -> str:
    m = re.search(rf'^{name}\s*=\s*"?([^"\n]+)"?\s*$', path.read_text(), re.M)
    if not m:
        raise ValueError(f"{path}: no {name} = ... line")
    return m.group(1)


def _python_files(src: Path):
    for p in sorted(src.rglob("*.py")):
        if "__pycache__" not in p.parts:
            yield p


DOC_KEYS = ("notes", "nonlinearity")


def device_board(board: dict) -> dict:
    """The board file as the device stores it: the same data without the prose meant for people."""
    if isinstance(board, dict):
        return {k: device_board(v) for k, v in board.items() if k not in DOC_KEYS}
    return board


DEV_KEYS = ROOT / "keys" / "dev"


def development_trust_store() -> bytes:
    """The trust store of a development meter: the repository's development root, image and command keys, marked
    dev (a locked meter refuses them), signed by the development root key, counter 0."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from . import trust

    entries = []
    root = None
    for role in trust.ROLES:
        priv = serialization.load_pem_private_key((DEV_KEYS / f"{role}-DEVELOPMENT-ONLY-ed25519.pem").read_bytes(), None)
        if role == "root":
            root = priv
        assert isinstance(priv, Ed25519PrivateKey)
        entries.append({"key": trust.raw_key(priv.public_key()), "roles": [role], "dev": True,
                        "name": f"{role}-DEVELOPMENT-ONLY"})
    assert root is not None
    return trust.build(entries, 0, root)  # type: ignore[arg-type]


def stage_meter(dest: Path, board: dict, firmware_dir: Path = FIRMWARE_DIR, *, meter_id: str,
                mode: str = MODE_DEVELOPMENT, trust_store: bytes | None = None, cache: mpy.Cache | None = None
                ) -> None:
    """Write into `dest` the tree a provisioned meter's flash holds (`trust_store`: default the development one;
    `cache`: the emulator's cache of compiled files, never for a real board)."""
    arch = board["mcu"]["arch"]
    for name in LOADER_FILES:  # boot.py and main.py must stay source: the port looks for those names
        shutil.copy2(firmware_dir / name, dest / name)
    folder = dest / LOADERS_DIR / "a"  # the loader and libraries as bytecode for the board, in loader folder a
    entries = []
    for rel, data in compile_loader(firmware_dir, arch, cache):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
        entries.append({"path": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    (folder / LOADER_MANIFEST).write_text(json.dumps({"version": loader_version(firmware_dir), "counter": 0,
                                                      "files": entries}))
    meter = dest / METER_DIR
    meter.mkdir()
    (meter / "loaders.json").write_text(json.dumps({"active": "a"}))
    (meter / "board.json").write_text(json.dumps(device_board(board), separators=(",", ":")))
    (meter / "identity.json").write_text(json.dumps({"meter_id": meter_id}))
    (meter / "mode.json").write_text(json.dumps({"mode": mode}))
    (meter / "slots.json").write_text(json.dumps({"active": "a"}))
    (meter / "trust.cbor").write_bytes(trust_store if trust_store is not None else development_trust_store())
    slot = dest / "slots" / "a"
    files = compile_app(board, firmware_dir, slot, cache)
    (dest / "slots" / "b").mkdir(parents=True)
    (slot / manifest.FILENAME).write_bytes(
        manifest.build(files, board=board["id"], version=app_version(firmware_dir),
                       loader_api=app_loader_api(firmware_dir)))
