"""Host side of the grid and load model (the model itself runs in the VM: emulator/device/_emu_grid.py): the
settable keys, their parsing into the canonical values the VM reads, defaults from the board, and scenario files.

Canonical settings are a flat dict keyed like `meter-emu ctl set` (grid.voltage, load.type, ...), stored in
STATE/meta.json["grid"] so they survive power cuts and restarts of `meter-emu run`."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import ControlError

LOAD_TYPES = ("resistive", "inductive", "capacitive", "rectifier")

SETTABLE = {
    "grid.voltage": "RMS volts of the grid (fundamental and harmonics), 0..600; default the board's nominal voltage",
    "grid.frequency": "Hz, 40..70; default the board's nominal frequency",
    "grid.drift_hz": "peak of a slow sinusoidal wander of the frequency, Hz, 0..5",
    "grid.drift_period_s": "period of that wander, seconds, 1..86400 (default 600)",
    "grid.harmonics": "voltage harmonics: ORDER:FRACTION[:PHASE_DEG],... e.g. 3:0.05,5:0.03:30 ('none' clears); "
                      "order 2..50, fraction of the fundamental 0..0.5",
    "grid.sag": "FACTOR:SECONDS, e.g. 0.7:2 (sag) or 1.15:5 (swell): the voltage x FACTOR (0..2) for SECONDS "
                "(0..86400) from now; 'none' ends it",
    "load.type": "resistive | inductive (lags) | capacitive (leads) | rectifier (odd harmonics)",
    "load.current": "the load's RMS amperes, 0..1000 (total, harmonics included)",
    "load.pf": "displacement power factor magnitude 0..1 (inductive and capacitive loads; resistive is 1)",
    "load.export": "1: power flows to the grid (the current is inverted), 0: import",
    "load.steps": "a stepping load AMPS:SECONDS,... repeated from now, e.g. 5:60,0.5:60 ('none' ends it; "
                  "it overrides load.current while set)",
    "bl0942.error_rate": "probability per byte of a flipped bit in the BL0942's answers (0..1)",
}
ANCHORED = {"grid.sag": "grid.sag_from", "load.steps": "load.steps_from"}


def defaults(board: dict) -> dict:
    m = board.get("metering", {})
    return {
        "grid.voltage": float(m.get("nominal_voltage", 230.0)),
        "grid.frequency": float(m.get("nominal_frequency", 50.0)),
        "grid.drift_hz": 0.0,
        "grid.drift_period_s": 600.0,
        "grid.harmonics": [],
        "grid.sag": None,
        "grid.sag_from": None,
        "load.type": "resistive",
        "load.current": 0.0,
        "load.pf": 1.0,
        "load.export": 0,
        "load.steps": None,
        "load.steps_from": None,
        "relay.closed": True,
        "bl0942.error_rate": 0.0,
    }


TRUTH_KEYS = ("import_wh", "export_wh", "q_import_varh", "q_export_varh", "s_vah", "seconds")


def zero_truth() -> dict:
    return {k: 0.0 for k in TRUTH_KEYS}


def shown(raw: Any, limit: int = 40) -> str:
    """A value as a message quotes it, cut short (a 400-digit number is not worth a screen)."""
    r = repr(raw)
    return r if len(r) <= limit else r[:limit - 3] + "..."


def num(x: float) -> str:
    """A bound as a message shows it: 316224000, not 3.16224e+08."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def finite(key: str, raw: Any, lo: float, hi: float) -> float:
    """A setting's number, finite and within lo..hi; ControlError naming the key and the range otherwise (NaN and
    the infinities are refused by name: `inf` parses as a float and would wedge the board)."""
    if isinstance(raw, bool):
        raise ControlError(f"{key}: expected a number {num(lo)}..{num(hi)}, got {shown(raw)}")
    try:
        v = float(raw)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond a float's range
        raise ControlError(f"{key}: expected a number {num(lo)}..{num(hi)}, got {shown(raw)}") from None
    if not math.isfinite(v):
        raise ControlError(f"{key}: {shown(raw)} is not a finite number; expected {num(lo)}..{num(hi)}")
    if v < lo or v > hi:
        raise ControlError(f"{key}: {shown(raw)} is outside {num(lo)}..{num(hi)}")
    return v


_number = finite


def _none(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "off"))


def _pairs(key: str, raw: Any, what: str) -> list[list]:
    """'a:b,c:d' or [[a, b], ...] → [[str/num, ...], ...]."""
    if isinstance(raw, list):
        out = []
        for item in raw:
            if not isinstance(item, (list, tuple)):
                raise ControlError(f"{key}: expected {what}, got {shown(raw)}")
            out.append(list(item))
        return out
    if not isinstance(raw, str):
        raise ControlError(f"{key}: expected {what}, got {shown(raw)}")
    return [part.split(":") for part in raw.split(",") if part.strip()]


def parse(key: str, raw: Any) -> Any:
    """The canonical value of one setting; ControlError naming the key and what it allows."""
    if key == "grid.voltage":
        return _number(key, raw, 0, 600)
    if key == "grid.frequency":
        return _number(key, raw, 40, 70)
    if key == "grid.drift_hz":
        return _number(key, raw, 0, 5)
    if key == "grid.drift_period_s":
        return _number(key, raw, 1, 86400)
    if key == "grid.harmonics":
        if _none(raw):
            return []
        out = []
        for item in _pairs(key, raw, "ORDER:FRACTION[:PHASE_DEG],..."):
            if len(item) not in (2, 3):
                raise ControlError(f"{key}: each harmonic is ORDER:FRACTION[:PHASE_DEG], got {shown(item)}")
            try:
                order = int(str(item[0]).strip())
            except ValueError:
                raise ControlError(f"{key}: harmonic order must be an integer 2..50, got {shown(item[0])}") from None
            if not 2 <= order <= 50:
                raise ControlError(f"{key}: harmonic order must be an integer 2..50, got {order}")
            frac = _number(key, item[1], 0, 0.5)
            phase = _number(key, item[2], -360, 360) if len(item) == 3 else 0.0
            out.append([order, frac, phase])
        if len({h[0] for h in out}) != len(out):
            raise ControlError(f"{key}: an order appears twice")
        return sorted(out)
    if key == "grid.sag":
        if _none(raw):
            return None
        items = _pairs(key, raw if not isinstance(raw, list) or (raw and isinstance(raw[0], list)) else [raw],
                       "FACTOR:SECONDS")
        if len(items) != 1 or len(items[0]) != 2:
            raise ControlError(f"{key}: expected FACTOR:SECONDS (e.g. 0.7:2 or 1.15:5), got {shown(raw)}")
        return [_number(key, items[0][0], 0, 2), _number(key, items[0][1], 0, 86400)]
    if key == "load.type":
        if raw not in LOAD_TYPES:
            raise ControlError(f"{key}: expected one of {', '.join(LOAD_TYPES)}, got {shown(raw)}")
        return raw
    if key == "load.current":
        return _number(key, raw, 0, 1000)
    if key == "load.pf":
        return _number(key, raw, 0, 1)
    if key == "load.export":
        if isinstance(raw, bool):
            return int(raw)
        if str(raw).strip().lower() in ("1", "true", "yes", "on"):
            return 1
        if str(raw).strip().lower() in ("0", "false", "no", "off"):
            return 0
        raise ControlError(f"{key}: expected 0 (import) or 1 (export), got {shown(raw)}")
    if key == "load.steps":
        if _none(raw):
            return None
        out = []
        for item in _pairs(key, raw, "AMPS:SECONDS,..."):
            if len(item) != 2:
                raise ControlError(f"{key}: each step is AMPS:SECONDS, got {shown(item)}")
            out.append([_number(key, item[0], 0, 1000), _number(key, item[1], 0.001, 86400 * 7)])
        if not out:
            raise ControlError(f"{key}: expected AMPS:SECONDS,... (at least one step)")
        return out
    if key == "bl0942.error_rate":
        return _number(key, raw, 0, 1)
    raise ControlError(f"unknown key {key!r}")


CUT_KEY = "power.cut"  # a scenario step that cuts the power at its device time, for this many seconds
CUT_MAX_S = 86400
SCENARIO_MAX_S = 10 * 366 * 86400  # a step's `at` and a cycle's period: at most ten years of device time


def _seconds(v: Any, lo: float, hi: float, lo_open: bool = False) -> float | None:
    """A JSON number of seconds within lo..hi (above lo with lo_open), else None (bools, strings, NaN, infinities
    and integers beyond a float's range are not seconds)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    if not math.isfinite(f) or f < lo or (lo_open and f <= lo) or f > hi:
        return None
    return f


def parse_scenario(data: Any, source: str = "scenario",
                   more: Mapping[str, Callable[[str, Any], Any]] | None = None) -> dict:
    """A scenario file's content → {"steps": [[at_us, {key: canonical}], ...], "repeat", "period_us"} (sorted by
    time); ControlError naming the problem. `more`: keys of other models a step may set, with their checks."""
    more = more or {}

    def bad(where: str, what: str) -> ControlError:
        return ControlError(f"{source}: {where}: {what}")

    if not isinstance(data, dict):
        raise bad("top level", 'expected an object {"steps": [...], "repeat": false}')
    unknown = set(data) - {"steps", "repeat", "period"}
    if unknown:
        raise bad(sorted(unknown)[0], "unknown key; a scenario takes steps, repeat, period")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise bad("steps", "expected a non-empty list of {\"at\": seconds, \"set\": {key: value}}")
    repeat = data.get("repeat", False)
    if not isinstance(repeat, bool):
        raise bad("repeat", f"expected true or false, got {repeat!r}")
    out: list[list] = []
    for n, step in enumerate(steps):
        where = f"steps[{n}]"
        if (not isinstance(step, dict) or "at" not in step or len(step) != 2
                or not (set(step) == {"at", "set"} or set(step) == {"at", "cut"})):
            raise bad(where, 'expected {"at": seconds, "set": {key: value, ...}} or {"at": seconds, "cut": seconds}')
        at = _seconds(step["at"], 0, SCENARIO_MAX_S)
        if at is None:
            raise bad(f"{where}.at", f"expected seconds since the scenario started, 0..{SCENARIO_MAX_S}, "
                      f"got {step['at']!r}")
        if "cut" in step:
            off = _seconds(step["cut"], 0, CUT_MAX_S, lo_open=True)
            if off is None:
                raise bad(f"{where}.cut", f"expected seconds off, > 0 and <= {CUT_MAX_S}, got {step['cut']!r}")
            out.append([int(round(at * 1e6)), {CUT_KEY: off}])
            continue
        if not isinstance(step["set"], dict) or not step["set"]:
            raise bad(f"{where}.set", "expected an object of settings, e.g. {\"load.current\": 5}")
        vals = {}
        for key, raw in step["set"].items():
            if key not in SETTABLE and key not in more:
                raise bad(f"{where}.set.{key}", "unknown key; scenario keys: " + ", ".join([*SETTABLE, *more]))
            try:
                vals[key] = more[key](key, raw) if key in more else parse(key, raw)
            except ControlError as e:
                raise bad(f"{where}.set", str(e)) from None
        out.append([int(round(at * 1e6)), vals])
    times: list[int] = [s[0] for s in out]
    if any(times[k] > times[k + 1] for k in range(len(times) - 1)):
        raise bad("steps", "times (at) must not decrease")
    period = data.get("period")
    period_us = None
    if period is not None:
        p = _seconds(period, times[-1] / 1e6, SCENARIO_MAX_S, lo_open=True)
        if p is None:
            raise bad("period", f"expected seconds > the last step's at ({times[-1] / 1e6}) and <= "
                      f"{SCENARIO_MAX_S}, got {period!r}")
        period_us = int(round(p * 1e6))
    if repeat and period_us is None:
        raise bad("period", "required with \"repeat\": true (the length of one cycle, in seconds)")
    return {"steps": out, "repeat": repeat, "period_us": period_us}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_text_file(path: str | Path) -> str:
    """A text file's content; ControlError with the path and the problem for a file that is missing, a folder,
    unreadable, empty, or not UTF-8 text (UTF-16, binary). A UTF-8 byte order mark is allowed."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except IsADirectoryError:
        raise ControlError(f"{p}: is a folder, not a file") from None
    except OSError as e:
        raise ControlError(f"{p}: cannot read: {e.strerror or e}") from None
    if not raw.strip():
        raise ControlError(f"{p}: empty file")
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(raw) >= 2 and len(raw) % 2 == 0 and
                                                  (not any(raw[0::2]) or not any(raw[1::2]))):
        raise ControlError(f"{p}: UTF-16 text; save it as UTF-8")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ControlError(f"{p}: not a UTF-8 text file (byte 0x{raw[e.start]:02x} at offset {e.start})") from None
    if "\0" in text:
        raise ControlError(f"{p}: not a text file (a NUL byte at offset {text.index(chr(0))})")
    return text


def read_json_file(path: str | Path) -> Any:
    """A JSON file's content; ControlError with the path and the problem for a file that is not UTF-8 text (see
    read_text_file) or not JSON (NaN and Infinity are not JSON either)."""
    p = Path(path)
    try:
        text = read_text_file(p)
    except ControlError as e:
        raise ControlError(f"{e}; expected a JSON file") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise ControlError(f"{p}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise ControlError(f"{p}: invalid JSON: nested too deeply") from None
    except ValueError as e:  # NaN, Infinity
        raise ControlError(f"{p}: invalid JSON: {e}") from None


def load_scenario(path: str | Path, more: Mapping[str, Callable[[str, Any], Any]] | None = None) -> dict:
    return parse_scenario(read_json_file(path), str(path), more)
