"""Recordings of emulated runs (`meter-emu run --record FILE`, `meter-emu replay FILE`): every input the host side
delivered to the device, stamped with the boot, the point (the n-th select.poll of that boot) and the device time
at which the firmware met it (emulator/device/_emu_gate.py), plus what the run started from and how it ended.

One JSON object per line:
    {"recording": 1, "board": ..., "firmware_tree": sha256, "start": {"fresh": {"seed", "rtc_ns", "blank"}} |
        {"meta": {...}, "flash_zlib_b64": ...}, "created": ISO time}
    {"boot": b, "n": point, "us": device µs, "in": [item, ...]}      items: {"console": hex}, {"interrupt": true},
                                                                     {"bus": msg}, {"cut": seconds off | null},
                                                                     {"reset": "hard"|"soft"}, {"stop": true}
    {"boot": b, "power_on": off_ns}                                  power restored by hand after off_ns of RTC time
    {"end": {"boots": b, "flash_sha256": ..., "console_sha256": ..., "inputs": n}}
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import zlib
from pathlib import Path
from typing import IO, Any

from .errors import ControlError

FORMAT = 1


def firmware_tree_hash(root: Path) -> str:
    """sha256 over the firmware folder's files (relative path and content), so a replay can tell a changed firmware."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


class Recorder:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.f: IO[str] = open(self.path, "w", encoding="utf-8")
        self.inputs = 0

    def _line(self, obj: dict) -> None:
        self.f.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self.f.flush()

    def header(self, board: str, firmware_tree: str, start: dict) -> None:
        self._line({"recording": FORMAT, "board": board, "firmware_tree": firmware_tree, "start": start,
                    "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})

    def delivery(self, boot: int, n: int, us: int, items: list[dict]) -> None:
        self.inputs += 1
        self._line({"boot": boot, "n": n, "us": us, "in": items})

    def power_on(self, boot: int, off_ns: int) -> None:
        self._line({"boot": boot, "power_on": off_ns})

    def end(self, summary: dict) -> None:
        self._line({"end": dict(summary, inputs=self.inputs)})
        self.f.close()


def start_of_fresh(seed: int | None, rtc_ns: int, blank: bool) -> dict:
    return {"fresh": {"seed": seed, "rtc_ns": rtc_ns, "blank": blank}}


def start_of_state(meta: dict, flash: bytes) -> dict:
    return {"meta": meta, "flash_zlib_b64": base64.b64encode(zlib.compress(flash, 9)).decode()}


class Recording:
    """A recording read back for a replay; ControlError naming the line and the problem when it is malformed."""

    def __init__(self, path: str | Path):
        from .grid import read_text_file

        self.path = Path(path)
        try:
            lines = read_text_file(self.path).splitlines()
        except ControlError as e:
            raise ControlError(f"{e}; expected a recording (meter-emu run --record)") from None
        rows = []
        for k, line in enumerate(lines, 1):
            try:
                rows.append(json.loads(line))
            except (ValueError, RecursionError):
                raise ControlError(f"{self.path}:{k}: not JSON") from None
            if not isinstance(rows[-1], dict):
                raise ControlError(f"{self.path}:{k}: expected an object")
        head = rows[0]
        if head.get("recording") != FORMAT:
            raise ControlError(f"{self.path}:1: not a meter-emu recording of format {FORMAT}")
        for key, kind in (("board", str), ("firmware_tree", str), ("start", dict)):
            if not isinstance(head.get(key), kind):
                raise ControlError(f"{self.path}:1: {'missing' if key not in head else 'a malformed'} {key!r}")
        self.board: str = head["board"]
        self.firmware_tree: str = head["firmware_tree"]
        self.start: dict = head["start"]
        self._check_start()
        self.events: list[dict] = []
        self.end: dict | None = None
        for k, row in enumerate(rows[1:], 2):
            if "end" in row:
                if not isinstance(row["end"], dict):
                    raise ControlError(f"{self.path}:{k}: 'end' must be an object")
                self.end = row["end"]
            elif "power_on" in row:
                _check_int(self.path, k, row, "boot", "power_on")
                self.events.append(row)
            else:
                _check_int(self.path, k, row, "boot", "n", "us")
                items = row.get("in")
                if not isinstance(items, list) or not all(isinstance(i, dict) and len(i) == 1 for i in items):
                    raise ControlError(f"{self.path}:{k}: 'in' must be a list of one-key objects")
                for item in items:
                    kind = next(iter(item))
                    _check_item(self.path, k, kind, item[kind])
                self.events.append(row)

    def _check_start(self) -> None:
        """The start is a fresh meter ({"fresh": {"seed", "rtc_ns", "blank"}}) or a state folder's meta.json and
        flash image; the image is decoded here, so a damaged one is refused before anything runs."""
        bad = f"{self.path}:1: a malformed 'start'"
        fresh = self.start.get("fresh")
        self._flash: bytes | None = None
        if fresh is not None:
            if not (isinstance(fresh, dict) and (fresh.get("seed") is None or (type(fresh["seed"]) is int
                                                                               and fresh["seed"] >= 0))
                    and type(fresh.get("rtc_ns")) is int and isinstance(fresh.get("blank", False), bool)):
                raise ControlError(f"{bad}: 'fresh' needs an integer seed (or null), rtc_ns and blank")
            return
        b64 = self.start.get("flash_zlib_b64")
        if not isinstance(self.start.get("meta"), dict) or not isinstance(b64, str):
            raise ControlError(f"{bad}: neither a fresh meter nor a flash image with its meta")
        try:
            self._flash = zlib.decompress(base64.b64decode(b64, validate=True))
        except (ValueError, zlib.error) as e:
            raise ControlError(f"{bad}: the flash image does not decode ({e})") from None

    def stamp(self, boot: int, index: int) -> list[int] | None:
        """[point, device µs] of event `index` when it is a delivery in `boot`, else None."""
        if index < len(self.events):
            row = self.events[index]
            if row["boot"] == boot and "n" in row:
                return [row["n"], row["us"]]
        return None

    def flash(self) -> bytes | None:
        return self._flash


def _check_item(path: Path, k: int, kind: str, value: Any) -> None:
    from .gate import GATED

    if kind == "console":
        try:
            bytes.fromhex(value)
        except (TypeError, ValueError):
            raise ControlError(f"{path}:{k}: console bytes must be hex") from None
    elif kind == "bus":
        if not isinstance(value, dict) or value.get("t") not in GATED:
            raise ControlError(f"{path}:{k}: a bus input must be one of the gated messages ({', '.join(sorted(GATED))})")
    elif kind == "cut":
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise ControlError(f"{path}:{k}: a cut's time off must be seconds >= 0 or null (power-on by hand)")
    elif kind == "reset":
        if value not in ("hard", "soft"):
            raise ControlError(f"{path}:{k}: a reset is 'hard' or 'soft'")
    elif kind in ("interrupt", "stop"):
        if value is not True:
            raise ControlError(f"{path}:{k}: {kind} must be true")
    else:
        raise ControlError(f"{path}:{k}: unknown input {kind!r}")


def _check_int(path: Path, k: int, row: dict, *keys: str) -> None:
    for key in keys:
        v: Any = row.get(key)
        if type(v) is not int or v < 0:
            raise ControlError(f"{path}:{k}: {key!r} must be an integer >= 0, got {v!r}")
