"""The emulated meter's state folder: its flash image, identity, battery-backed RTC and the running emulator's
endpoints. Everything that survives a power cut of the emulated board lives here."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import time
from pathlib import Path

from .errors import StateBusy, StateCorrupt

FORMAT = 1


class StateDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).resolve()
        self.flash = self.path / "flash.bin"
        self.meta_path = self.path / "meta.json"
        self.endpoints_path = self.path / "endpoints.json"
        self.console_link = self.path / "console"
        self.log_path = self.path / "emulator.log"
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

    def read_meta(self) -> dict:
        try:
            meta = json.loads(self.meta_path.read_text())
        except (OSError, ValueError) as e:
            raise StateCorrupt(f"{self.meta_path}: unreadable ({e}); move the folder away to start a fresh meter") from e
        for key in ("format", "board", "unique_id", "world_ns", "rtc"):
            if key not in meta:
                raise StateCorrupt(f"{self.meta_path}: missing {key!r}; move the folder away to start a fresh meter")
        if meta["format"] != FORMAT:
            raise StateCorrupt(f"{self.meta_path}: state format {meta['format']}, this emulator reads {FORMAT}")
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
        fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
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
