"""The emulated meter's state folder: its flash image, identity, battery-backed RTC and the running emulator's
endpoints. Everything that survives a power cut of the emulated board lives here."""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import secrets
import time
from pathlib import Path

from .errors import StateBusy, StateCorrupt

FORMAT = 1
# what the emulator keeps in a state folder (a folder holding anything else is not one)
OWN = ("meta.json", "meta.tmp", "flash.bin", "lock", "endpoints.json", "endpoints.tmp", "console", "console.log",
       "console.log.1", "emulator.log")


class StateDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).resolve()
        self.flash = self.path / "flash.bin"
        self.meta_path = self.path / "meta.json"
        self.endpoints_path = self.path / "endpoints.json"
        self.console_link = self.path / "console"
        self.log_path = self.path / "emulator.log"
        self.console_log_path = self.path / "console.log"  # what the board printed (emulator/consolelog.py)
        self._lock_fd: int | None = None

    # -- identity and persistent hardware state ----------------------------------------------------------------
    def exists(self) -> bool:
        return self.meta_path.exists()

    def create(self, board: dict, seed: int | None = None, rtc_start_ns: int | None = None) -> dict:
        """A fresh meter: a random unique id (with `seed`, one derived from it, so every component draw of the
        meter is the same), the RTC set to the host's clock (or `rtc_start_ns`)."""
        self.path.mkdir(parents=True, exist_ok=True)
        uid_len = 6 if board["mcu"]["family"] == "esp32" else 8
        if seed is None:
            uid = secrets.token_hex(uid_len)
        else:
            uid = hashlib.sha256(f"meterkit-emulator-seed:{seed}".encode()).hexdigest()[:2 * uid_len]
        meta = {
            "format": FORMAT,
            "board": board["id"],
            "unique_id": uid,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "world_ns": 0,
            # the RTC starts set to the host's wall clock, as a factory would set it
            "rtc": {"offset_ns": time.time_ns() if rtc_start_ns is None else rtc_start_ns, "valid": True,
                    "drift_ppm": 0.0},
        }
        size = board["flash"]["block_size"] * board["flash"]["block_count"]
        with open(self.flash, "wb") as f:
            f.truncate(size)
        self.write_meta(meta)
        return meta

    def check_usable(self) -> None:
        """For `meter-emu run`: the path is a new or empty folder, or an emulator's state folder. A folder holding
        other things is refused (the emulator would write its flash image among someone's files)."""
        if self.path.exists() and not self.path.is_dir():
            raise StateCorrupt(f"{self.path}: not a folder")
        if not self.path.is_dir() or self.exists():
            return
        try:
            others = sorted(p.name for p in self.path.iterdir() if p.name not in OWN and not p.name.startswith("."))
        except OSError as e:
            raise StateCorrupt(f"{self.path}: cannot read the folder ({e.strerror or e})") from None
        if others:
            raise StateCorrupt(f"{self.path} is not a meter-emu state folder (no meta.json, and it holds "
                               f"{others[0]!r}): give a new or an empty folder")

    def read_meta(self) -> dict:
        try:
            meta = json.loads(self.meta_path.read_text())
        except (OSError, ValueError) as e:
            raise StateCorrupt(f"{self.meta_path}: unreadable ({e}); move the folder away to start a fresh meter") from e
        fresh = "; move the folder away to start a fresh meter"
        if not isinstance(meta, dict):
            raise StateCorrupt(f"{self.meta_path}: not a JSON object{fresh}")
        for key in ("format", "board", "unique_id", "world_ns", "rtc"):
            if key not in meta:
                raise StateCorrupt(f"{self.meta_path}: missing {key!r}{fresh}")
        if meta["format"] != FORMAT:
            raise StateCorrupt(f"{self.meta_path}: state format {meta['format']!r}, this emulator reads {FORMAT}")
        rtc = meta["rtc"]
        if not (isinstance(meta["board"], str) and isinstance(meta["unique_id"], str)
                and all(c in "0123456789abcdef" for c in meta["unique_id"]) and len(meta["unique_id"]) % 2 == 0
                and type(meta["world_ns"]) is int and meta["world_ns"] >= 0
                and isinstance(rtc, dict) and type(rtc.get("offset_ns")) is int
                and isinstance(rtc.get("valid", True), bool)
                and isinstance(rtc.get("drift_ppm", 0.0), (int, float)) and not isinstance(rtc.get("drift_ppm"), bool)
                and math.isfinite(rtc.get("drift_ppm", 0.0))
                and isinstance(meta.get("grid") or {}, dict) and isinstance(meta.get("truth") or {}, dict)):
            raise StateCorrupt(f"{self.meta_path}: a field has the wrong type (board, unique_id, world_ns, rtc, grid "
                               f"or truth){fresh}")
        return meta

    def check_flash(self, board: dict) -> None:
        want = board["flash"]["block_size"] * board["flash"]["block_count"]
        try:
            got = self.flash.stat().st_size
        except OSError as e:
            raise StateCorrupt(f"{self.flash}: missing flash image") from e
        if got != want:
            raise StateCorrupt(f"{self.flash}: {got} bytes, board {board['id']} has {want} bytes of filesystem flash")

    def write_meta(self, meta: dict) -> None:
        tmp = self.meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, self.meta_path)

    # -- one emulator per state folder ---------------------------------------------------------------------------
    def lock(self) -> None:
        try:
            fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StateCorrupt(f"{self.path}: cannot write in the state folder ({e.strerror or e})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise StateBusy(f"{self.path} is in use by another meter-emu (pid {other or '?'})") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- endpoints of the running emulator ----------------------------------------------------------------------
    def control_address(self) -> str:
        digest = hashlib.sha256(str(self.path).encode()).hexdigest()[:20]
        return f"unix:@meterkit-ctl-{digest}"

    def publish_endpoints(self, endpoints: dict) -> None:
        tmp = self.endpoints_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(endpoints, indent=1))
        os.replace(tmp, self.endpoints_path)
        try:
            self.console_link.unlink()
        except FileNotFoundError:
            pass
        self.console_link.symlink_to(endpoints["console"])

    def withdraw_endpoints(self) -> None:
        for p in (self.endpoints_path, self.console_link):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def read_endpoints(self) -> dict | None:
        try:
            return json.loads(self.endpoints_path.read_text())
        except (OSError, ValueError):
            return None


def socket_address(address: str) -> str:
    """'unix:@name' → the abstract socket name Python's socket module takes."""
    if not address.startswith("unix:"):
        raise ValueError(f"unsupported control address {address!r}")
    name = address[5:]
    return "\0" + name[1:] if name.startswith("@") else name
