"""Host side of the grid and load model (the model itself runs in the VM: emulator/device/_emu_grid.py): the
settable keys, their parsing into the canonical values the VM reads, defaults from the board, and scenario files.

Canonical settings are a flat dict keyed like `meter-emu ctl set` (grid.voltage, load.type, ...), stored in
STATE/meta.json["grid"] so they survive power cuts and restarts of `meter-emu run`."""

from __future__ import annotations

import json
import math
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


def _number(key: str, raw: Any, lo: float, hi: float) -> float:
    if isinstance(raw, bool):
        raise ControlError(f"{key}: expected a number {lo}..{hi}, got {raw!r}")
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise ControlError(f"{key}: expected a number {lo}..{hi}, got {raw!r}") from None
    if not math.isfinite(v) or v < lo or v > hi:
        raise ControlError(f"{key}: {raw!r} is outside {lo}..{hi}")
    return v


def _none(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "off"))


def _pairs(key: str, raw: Any, what: str) -> list[list]:
    """'a:b,c:d' or [[a, b], ...] → [[str/num, ...], ...]."""
    if isinstance(raw, list):
        out = []
        for item in raw:
            if not isinstance(item, (list, tuple)):
                raise ControlError(f"{key}: expected {what}, got {raw!r}")
            out.append(list(item))
        return out
    if not isinstance(raw, str):
        raise ControlError(f"{key}: expected {what}, got {raw!r}")
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
                raise ControlError(f"{key}: each harmonic is ORDER:FRACTION[:PHASE_DEG], got {item!r}")
            try:
                order = int(str(item[0]).strip())
            except ValueError:
                raise ControlError(f"{key}: harmonic order must be an integer 2..50, got {item[0]!r}") from None
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
            raise ControlError(f"{key}: expected FACTOR:SECONDS (e.g. 0.7:2 or 1.15:5), got {raw!r}")
        return [_number(key, items[0][0], 0, 2), _number(key, items[0][1], 0, 86400)]
    if key == "load.type":
        if raw not in LOAD_TYPES:
            raise ControlError(f"{key}: expected one of {', '.join(LOAD_TYPES)}, got {raw!r}")
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
        raise ControlError(f"{key}: expected 0 (import) or 1 (export), got {raw!r}")
    if key == "load.steps":
        if _none(raw):
            return None
        out = []
        for item in _pairs(key, raw, "AMPS:SECONDS,..."):
            if len(item) != 2:
                raise ControlError(f"{key}: each step is AMPS:SECONDS, got {item!r}")
            out.append([_number(key, item[0], 0, 1000), _number(key, item[1], 0.001, 86400 * 7)])
        if not out:
            raise ControlError(f"{key}: expected AMPS:SECONDS,... (at least one step)")
        return out
    if key == "bl0942.error_rate":
        return _number(key, raw, 0, 1)
    raise ControlError(f"unknown key {key!r}")


CUT_KEY = "power.cut"  # a scenario step that cuts the power at its device time, for this many seconds
CUT_MAX_S = 86400


def parse_scenario(data: Any, source: str = "scenario") -> dict:
    """A scenario file's content → {"steps": [[at_us, {key: canonical}], ...], "repeat", "period_us"} (sorted by
    time); ControlError naming the problem."""

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
    out = []
    for n, step in enumerate(steps):
        where = f"steps[{n}]"
        if (not isinstance(step, dict) or "at" not in step or len(step) != 2
                or not (set(step) == {"at", "set"} or set(step) == {"at", "cut"})):
            raise bad(where, 'expected {"at": seconds, "set": {key: value, ...}} or {"at": seconds, "cut": seconds}')
        at = step["at"]
        if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at) or at < 0:
            raise bad(f"{where}.at", f"expected seconds >= 0 since the scenario started, got {at!r}")
        if "cut" in step:
            off = step["cut"]
            if isinstance(off, bool) or not isinstance(off, (int, float)) or not 0 < off <= CUT_MAX_S:
                raise bad(f"{where}.cut", f"expected seconds off, > 0 and <= {CUT_MAX_S}, got {off!r}")
            out.append([int(round(at * 1e6)), {CUT_KEY: float(off)}])
            continue
        if not isinstance(step["set"], dict) or not step["set"]:
            raise bad(f"{where}.set", "expected an object of settings, e.g. {\"load.current\": 5}")
        vals = {}
        for key, raw in step["set"].items():
            if key not in SETTABLE:
                raise bad(f"{where}.set.{key}", "unknown key; scenario keys: " + ", ".join(SETTABLE))
            try:
                vals[key] = parse(key, raw)
            except ControlError as e:
                raise bad(f"{where}.set", str(e)) from None
        out.append([int(round(at * 1e6)), vals])
    if any(out[k][0] > out[k + 1][0] for k in range(len(out) - 1)):
        raise bad("steps", "times (at) must not decrease")
    period = data.get("period")
    period_us = None
    if period is not None:
        if isinstance(period, bool) or not isinstance(period, (int, float)) or not period > out[-1][0] / 1e6:
            raise bad("period", f"expected seconds > the last step's at ({out[-1][0] / 1e6}), got {period!r}")
        period_us = int(round(period * 1e6))
    if repeat and period_us is None:
        raise bad("period", "required with \"repeat\": true (the length of one cycle, in seconds)")
    return {"steps": out, "repeat": repeat, "period_us": period_us}


def load_scenario(path: str | Path) -> dict:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as e:
        raise ControlError(f"{p}: cannot read: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise ControlError(f"{p}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    return parse_scenario(data, str(p))
