"""Board definitions (boards/<id>.json, format in boards/SCHEMA.md): find, load and validate them on the host.

A board file is plain JSON that the firmware also reads on the device (as meter/board.json), so `load_board` returns
the parsed dict unchanged. Validation is strict: every field is checked for type, range and what the board's MCU
family can actually do (GPIO numbers, input-only pins, ADC pins, UART ids and pin functions), unknown keys are
errors (typo protection), and no GPIO may serve two roles. Every problem is reported, each as
``<file>: <json.path>: <what was expected>, got <value>``, in one `BoardError`.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BOARDS_DIR = Path(os.environ.get("METERKIT_BOARDS") or ROOT / "boards")
"""Where board files live: the repository's boards/ folder, or $METERKIT_BOARDS when set (read at import)."""

SCHEMA_VERSION = 1

ESP32 = "esp32"
RP2040 = "rp2040"
FAMILIES = (ESP32, RP2040)

XTENSAWIN = "xtensawin"
ARMV6M = "armv6m"
ARCHES = (XTENSAWIN, ARMV6M)
ARCH_OF_FAMILY = {ESP32: XTENSAWIN, RP2040: ARMV6M}
"""mpy-cross ``-march`` for each MCU family."""

USB_CONSOLE = "usb"
"""`uarts.console.id` of a board whose console is the MCU's own USB CDC port (no pins, no baud rate)."""

FRONTEND_ADC = "adc"
FRONTEND_BL0942 = "bl0942"
FRONTENDS = (FRONTEND_ADC, FRONTEND_BL0942)
# calibration keys per front end (firmware/app/calibration.py)
CALIBRATION_KEYS = {FRONTEND_ADC: ("v_gain", "i_gain", "phase_deg", "v_offset", "i_offset"),
                    FRONTEND_BL0942: ("v_scale", "i_scale", "p_scale", "cf_per_kwh")}

MODEM_TYPES = ("bc660k",)
"""`modem.type` values: the cellular modules the firmware has an AT dialect for (firmware/app/modem.py DIALECTS;
host_tests/unit/test_board_modem.py checks the two lists agree)."""

MODEM_ERRORS = {
    "bc660k": {
        3: "operation not allowed",
        4: "operation not supported",
        30: "no network service",
        50: "bad parameter",
        302: "UE busy",
        304: "PDN not active",
        552: "invalid parameter",
        553: "no memory",
        563: "socket id in use",
        566: "connect refused",
        568: "socket busy",
        569: "timeout",
        570: "network down",
        573: "unreachable",
        602: "no RRC connection",
    },
}
"""What each module's `+CME ERROR: <n>` (AT+CMEE=1) and `+QIOPEN: <id>,<err>` numbers mean, by `modem.type`. The
firmware keeps only the numbers (app.modem_at AtError.code, a meter's `last_error`): names would cost RAM on every
meter. This is the one table of them (docs/firmware-engineer.md points here)."""


def modem_error_name(kind: str, code: int) -> str:
    """The name of a module's error number ("" when the table has none): `modem_error_name("bc660k", 302)` is
    "UE busy"."""
    return MODEM_ERRORS.get(kind, {}).get(code, "")

ESP32_ATTENUATIONS_DB = (0, 2.5, 6, 11)
"""`adc.attenuation_db` values: MicroPython's ADC.ATTN_0DB, ATTN_2_5DB, ATTN_6DB, ATTN_11DB."""
ESP32_FULL_SCALE_V = {0: 0.95, 2.5: 1.25, 6: 1.75, 11: 3.1}
"""Approximate input volts at the top code for each ESP32 attenuation (the emulator's ADC model uses the same)."""

FLASH_BLOCK_SIZE = 4096
BOARD_ID = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True)
class _Family:
    """What an MCU family's silicon allows, as far as a board file can get it wrong."""

    gpio_max: int
    unusable: dict[int, str]  # GPIO → why a board file may not use it
    input_only: frozenset[int]
    adc_pins: tuple[int, ...]
    adc_text: str
    adc_bits: tuple[int, ...]
    uart_ids: tuple[int, ...]
    uart_tx: dict[int, tuple[int, ...]] | None  # fixed pin functions; None: any pin through the GPIO matrix
    uart_rx: dict[int, tuple[int, ...]] | None
    usb_console: bool
    freq_hz: tuple[int, ...] | range
    freq_text: str
    heap_max: int


_ESP32_FLASH = "is wired to the module's SPI flash (GPIO 6..11)"
_ESP32_ABSENT = "does not exist on the ESP32 (no GPIO 20, 24, 28..31)"
_FAMILY = {
    ESP32: _Family(
        gpio_max=39,
        unusable={**{g: _ESP32_FLASH for g in range(6, 12)}, **{g: _ESP32_ABSENT for g in (20, 24, 28, 29, 30, 31)}},
        input_only=frozenset(range(34, 40)),
        adc_pins=tuple(range(32, 40)),
        adc_text="an ADC1 pin 32..39 for esp32 (ADC2 cannot be read while Wi-Fi is on)",
        adc_bits=(9, 10, 11, 12),
        uart_ids=(0, 1, 2),
        uart_tx=None,
        uart_rx=None,
        usb_console=False,
        freq_hz=(80_000_000, 160_000_000, 240_000_000),
        freq_text="one of 80000000, 160000000, 240000000 for esp32",
        heap_max=8 * 1024 * 1024,  # with PSRAM
    ),
    RP2040: _Family(
        gpio_max=29,
        unusable={},
        input_only=frozenset(),
        adc_pins=(26, 27, 28),
        adc_text="an ADC pin 26..28 for rp2040 (GPIO 29 is VSYS/3 on the Pico)",
        adc_bits=(12,),
        uart_ids=(0, 1),
        uart_tx={0: (0, 12, 16, 28), 1: (4, 8, 20, 24)},
        uart_rx={0: (1, 13, 17, 29), 1: (5, 9, 21, 25)},
        usb_console=True,
        freq_hz=range(10_000_000, 250_000_001),
        freq_text="an integer 10000000..250000000 for rp2040",
        heap_max=264 * 1024,
    ),
}

_TOP_REQUIRED = ("schema", "id", "name", "mcu", "heap_bytes", "flash", "pins", "adc", "uarts", "modem", "frontend",
                 "calibration", "metering")
_OUTPUT, _INPUT, _ANALOG = "output", "input", "analogue input"


class BoardError(ValueError):
    """A board file that cannot be used. `errors` holds one line per problem; str() joins them."""

    def __init__(self, errors: str | Iterable[str]):
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("\n".join(self.errors))


# -- finding and loading -----------------------------------------------------------------------------------------

def list_boards(boards_dir: Path | None = None) -> list[str]:
    """Ids of the board files in `boards_dir` (default BOARDS_DIR), sorted."""
    d = BOARDS_DIR if boards_dir is None else Path(boards_dir)
    return sorted(p.stem for p in d.glob("*.json") if p.is_file())


def board_path(board_id: str, boards_dir: Path | None = None) -> Path:
    """The file of a known board id; BoardError listing the known ids otherwise."""
    d = BOARDS_DIR if boards_dir is None else Path(boards_dir)
    path = d / f"{board_id}.json"
    if not (BOARD_ID.fullmatch(board_id) and path.is_file()):
        known = list_boards(d)
        raise BoardError(f"unknown board {_show(board_id)}: no such file in {_display(d)}; known boards: "
                         + (", ".join(known) if known else "none"))
    return path


def load_board(board: str | os.PathLike[str], boards_dir: Path | None = None) -> dict[str, Any]:
    """Load and validate a board given by id (looked up in `boards_dir`, default BOARDS_DIR) or by path (anything
    with a '/' or ending in .json). Returns the parsed JSON as a plain dict; raises BoardError."""
    text = os.fspath(board)
    if isinstance(board, os.PathLike) or text.endswith(".json") or "/" in text or os.sep in text:
        path = Path(text)
    else:
        path = board_path(text, boards_dir)
    source = _display(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise BoardError(f"{source}: cannot read: {e.strerror or e}") from None
    data = parse_board(raw, source)
    validate_board(data, source, file_stem=path.stem)
    return data


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for k, v in pairs:
        if k in seen:
            raise _DuplicateKey(k)
        seen[k] = v
    return seen


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (MicroPython's json cannot read it)")


def parse_board(raw: bytes | str, source: str) -> Any:
    """Parse board JSON strictly: UTF-8, no duplicate keys, no NaN/Infinity. Errors give line and column."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as e:
        raise BoardError(f"{source}: not UTF-8 text (byte {e.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise BoardError(f"{source}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except _DuplicateKey as e:
        raise BoardError(f"{source}: invalid JSON: key {_show(e.args[0])} appears twice in one object") from None
    except ValueError as e:
        raise BoardError(f"{source}: invalid JSON: {e}") from None


def _display(path: Path) -> str:
    """A path as error messages show it: relative to the repository (boards/x.json) or to the cwd if possible."""
    p = Path(path).absolute()
    for base in (ROOT, Path.cwd()):
        try:
            return p.relative_to(base).as_posix()
        except ValueError:
            pass
    return str(path)


def _show(value: Any) -> str:
    try:
        s = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        s = repr(value)
    return s if len(s) <= 60 else s[:57] + "..."


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return _is_int(v) or (isinstance(v, float) and math.isfinite(v))


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _ranges(values: Iterable[int]) -> str:
    """1, 2, 3, 5 → '1..3, 5'."""
    out: list[str] = []
    vs = sorted(values)
    i = 0
    while i < len(vs):
        j = i
        while j + 1 < len(vs) and vs[j + 1] == vs[j] + 1:
            j += 1
        out.append(str(vs[i]) if j == i else f"{vs[i]}, {vs[j]}" if j == i + 1 else f"{vs[i]}..{vs[j]}")
        i = j + 1
    return ", ".join(out)


# -- validation --------------------------------------------------------------------------------------------------

def validate_board(data: Any, source: str, *, file_stem: str | None = None) -> None:
    """Check a parsed board definition against boards/SCHEMA.md; raise BoardError listing every problem, each line
    prefixed with `source` and the JSON path. With `file_stem`, `id` must equal it."""
    _Validator(source).run(data, file_stem)


class _Validator:
    def __init__(self, source: str):
        self.source = source
        self.errors: list[str] = []
        self.family: _Family | None = None
        self.family_name = ""
        self.used: dict[int, str] = {}  # GPIO → path of its first role

    def fail(self, path: str, message: str) -> None:
        self.errors.append(f"{self.source}: {path}: {message}" if path else f"{self.source}: {message}")

    # generic shapes ------------------------------------------------------------------------------------------
    def obj(self, path: str, value: Any, required: Iterable[str], optional: Iterable[str] = ()) -> dict | None:
        """`value` if it is an object; reports its missing and unknown keys."""
        required = tuple(required)
        allowed = set(required) | set(optional)
        if not isinstance(value, dict):
            where = "expected an object" if path else "expected a JSON object at the top level"
            self.fail(path, f"{where}, got {_show(value)}")
            return None
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), sorted(allowed), 1)
                hint = f" (did you mean {_show(close[0])}?)" if close else ""
                self.fail(_join(path, key), f"unknown key{hint}; {path or 'a board'} takes: "
                          + ", ".join(sorted(allowed)))
        for key in required:
            if key not in value:
                self.fail(_join(path, key), "missing (required)")
        return value

    def integer(self, path: str, value: Any, lo: int, hi: int, suffix: str = "") -> int | None:
        if _is_int(value) and lo <= value <= hi:
            return value
        self.fail(path, f"expected an integer {lo}..{hi}{suffix}, got {_show(value)}")
        return None

    def number(self, path: str, value: Any, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False,
               suffix: str = "") -> float | None:
        if _is_number(value) and (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi):
            return value
        low = f"> {_fmt(lo)}" if lo_open else f">= {_fmt(lo)}"
        high = f"< {_fmt(hi)}" if hi_open else f"<= {_fmt(hi)}"
        self.fail(path, f"expected a number {low} and {high}{suffix}, got {_show(value)}")
        return None

    def choice(self, path: str, value: Any, choices: Iterable[Any], suffix: str = "") -> Any:
        choices = tuple(choices)
        # Where the choices are measurements (some are floats), 11 and 11.0 are the same; where they are ids or
        # counts, the device needs the exact JSON type (UART(1.0) fails), and True is never 1.
        numeric = any(isinstance(c, float) for c in choices)
        for c in choices:
            same_type = _is_number(value) if numeric and _is_number(c) else type(value) is type(c)
            if same_type and value == c:
                return value
        wanted = _show(choices[0]) if len(choices) == 1 else "one of " + ", ".join(_show(c) for c in choices)
        self.fail(path, f"expected {wanted}{suffix}, got {_show(value)}")
        return None

    def string(self, path: str, value: Any) -> str | None:
        if isinstance(value, str) and value.strip():
            return value
        self.fail(path, f"expected a non-empty string, got {_show(value)}")
        return None

    def text(self, path: str, value: Any) -> None:
        """A note: a string or a list of strings."""
        if isinstance(value, str):
            return
        if isinstance(value, list):
            for i, line in enumerate(value):
                if not isinstance(line, str):
                    self.fail(f"{path}[{i}]", f"expected a string, got {_show(line)}")
            return
        self.fail(path, f"expected a string or a list of strings, got {_show(value)}")

    # GPIOs ---------------------------------------------------------------------------------------------------
    def gpio(self, path: str, value: Any, use: str, pull: Any = None) -> int | None:
        """A GPIO number used as `use` (output / input / analogue input) with an optional internal pull."""
        fam = self.family
        hi = fam.gpio_max if fam else 39
        g = self.integer(path, value, 0, hi, f" for {self.family_name}" if fam else "")
        if g is None:
            return None
        if fam is not None:
            if g in fam.unusable:
                self.fail(path, f"GPIO {g} {fam.unusable[g]}, so a board cannot use it")
                return None
            if use == _OUTPUT and g in fam.input_only:
                self.fail(path, f"GPIO {g} is input-only on {self.family_name} "
                                f"({_ranges(fam.input_only)}), and {path.rsplit('.', 1)[0]} needs an output")
            if pull in ("up", "down") and g in fam.input_only:
                self.fail(path, f"GPIO {g} has no internal pull resistors on {self.family_name} "
                                f"({_ranges(fam.input_only)}): set pull to null and fit an external resistor")
            if use == _ANALOG and g not in fam.adc_pins:
                self.fail(path, f"expected {fam.adc_text}, got {g}")
        if g in self.used:
            self.fail(path, f"GPIO {g} is already used by {self.used[g]} (a GPIO has one role)")
        else:
            self.used[g] = path
        return g

    def pin(self, path: str, value: Any, use: str, *, level: bool = False, pull: bool = False) -> None:
        keys = ["gpio"] + (["active"] if level else []) + (["pull"] if pull else [])
        p = self.obj(path, value, keys)
        if p is None:
            return
        if "active" in p:
            self.choice(_join(path, "active"), p["active"], ("high", "low"))
        pull_value = None
        if "pull" in p:
            pull_value = self.choice(_join(path, "pull"), p["pull"], ("up", "down", None))
        if "gpio" in p:
            self.gpio(_join(path, "gpio"), p["gpio"], use, pull_value)

    # the board -----------------------------------------------------------------------------------------------
    def run(self, data: Any, file_stem: str | None) -> None:
        if isinstance(data, dict) and "schema" in data and not (
                _is_int(data["schema"]) and data["schema"] == SCHEMA_VERSION):
            # anything else would be checked against the wrong schema
            self.fail("schema", f"expected {SCHEMA_VERSION} (the only board schema this tool reads), "
                                f"got {_show(data['schema'])}")
            raise BoardError(self.errors)
        top = self.obj("", data, _TOP_REQUIRED, ("notes", "bl0942"))
        if top is None:
            raise BoardError(self.errors)
        if "id" in top:
            board_id = top["id"]
            if not (isinstance(board_id, str) and BOARD_ID.fullmatch(board_id)):
                self.fail("id", "expected a board id: lowercase letters, digits and _, starting with a letter, "
                                f"at most 32 characters, got {_show(board_id)}")
            elif file_stem is not None and board_id != file_stem:
                self.fail("id", f"expected {_show(file_stem)} (the file name without .json), got {_show(board_id)}")
        if "name" in top:
            self.string("name", top["name"])
        if "mcu" in top:
            self.mcu(top["mcu"])
        if "heap_bytes" in top:
            hi = self.family.heap_max if self.family else _FAMILY[ESP32].heap_max
            self.integer("heap_bytes", top["heap_bytes"], 16 * 1024, hi,
                         f" for {self.family_name}" if self.family else "")
        if "flash" in top:
            self.flash(top["flash"])
        # Pins first, then ADC channels, then UARTs: a conflict is reported at the later role.
        if "pins" in top:
            self.pins(top["pins"])
        if "adc" in top:
            self.adc(top["adc"])
        if "uarts" in top:
            self.uarts(top["uarts"])
        if "modem" in top:
            self.modem(top["modem"])
        kind = self.frontend(top["frontend"]) if "frontend" in top else None
        if kind == FRONTEND_BL0942 and isinstance(top.get("uarts"), dict) and "metering" not in top["uarts"]:
            self.fail("uarts.metering", "missing (required when frontend.type is \"bl0942\": the IC's UART)")
        if kind == FRONTEND_BL0942:
            if "bl0942" not in top:
                self.fail("bl0942", "missing (required when frontend.type is \"bl0942\": the IC's circuit)")
            else:
                self.bl0942(top["bl0942"])
        elif "bl0942" in top and kind is not None:
            self.fail("bl0942", f"only for frontend.type \"bl0942\" (this board's is {_show(kind)})")
        if "calibration" in top:
            self.calibration(top["calibration"], kind)
        if "metering" in top:
            self.metering(top["metering"])
        if "notes" in top:
            self.text("notes", top["notes"])
        if self.errors:
            raise BoardError(self.errors)

    def mcu(self, value: Any) -> None:
        m = self.obj("mcu", value, ("family", "arch", "freq_hz"))
        if m is None:
            return
        family = self.choice("mcu.family", m["family"], FAMILIES) if "family" in m else None
        if family is not None:
            self.family, self.family_name = _FAMILY[family], family
        if "arch" in m:
            arch = self.choice("mcu.arch", m["arch"], ARCHES, " (mpy-cross -march)")
            if arch is not None and family is not None and arch != ARCH_OF_FAMILY[family]:
                self.fail("mcu.arch", f"expected {_show(ARCH_OF_FAMILY[family])} for {family} (mpy-cross -march), "
                                      f"got {_show(arch)}")
        if "freq_hz" in m:
            f = m["freq_hz"]
            fam = self.family
            if fam is None:
                self.integer("mcu.freq_hz", f, 1_000_000, 500_000_000)
            elif not (_is_int(f) and f in fam.freq_hz):
                self.fail("mcu.freq_hz", f"expected {fam.freq_text}, got {_show(f)}")

    def flash(self, value: Any) -> None:
        f = self.obj("flash", value, ("block_size", "block_count"), ("erase_cycles", "erase_us", "page_program_us"))
        if f is None:
            return
        if "block_size" in f and (not _is_int(f["block_size"]) or f["block_size"] != FLASH_BLOCK_SIZE):
            self.fail("flash.block_size", f"expected {FLASH_BLOCK_SIZE} (the flash erase sector littlefs uses on "
                                          f"esp32 and rp2040), got {_show(f['block_size'])}")
        if "block_count" in f:
            self.integer("flash.block_count", f["block_count"], 16, 4096, " (64 KiB..16 MiB of 4 KiB blocks)")
        if "erase_cycles" in f:
            self.integer("flash.erase_cycles", f["erase_cycles"], 1000, 10_000_000)
        if "erase_us" in f:
            self.integer("flash.erase_us", f["erase_us"], 0, 2_000_000)
        if "page_program_us" in f:
            self.integer("flash.page_program_us", f["page_program_us"], 0, 10_000)

    def pins(self, value: Any) -> None:
        p = self.obj("pins", value, ("led", "button", "relay_set", "relay_reset", "relay_feedback"), ("cover",))
        if p is None:
            return
        if "led" in p:
            self.pin("pins.led", p["led"], _OUTPUT, level=True)
        if "button" in p:
            self.pin("pins.button", p["button"], _INPUT, level=True, pull=True)
        if "relay_set" in p:
            self.pin("pins.relay_set", p["relay_set"], _OUTPUT)
        if "relay_reset" in p:
            self.pin("pins.relay_reset", p["relay_reset"], _OUTPUT)
        if "relay_feedback" in p:
            self.pin("pins.relay_feedback", p["relay_feedback"], _INPUT, level=True, pull=True)
        if "cover" in p:
            self.pin("pins.cover", p["cover"], _INPUT, level=True, pull=True)

    def adc(self, value: Any) -> None:
        a = self.obj("adc", value, ("bits", "vref", "channels"),
                     ("attenuation_db", "nonlinearity", "bias_volts", "read_us"))
        if a is None:
            return
        fam = self.family
        if "bits" in a:
            if fam is None:
                self.integer("adc.bits", a["bits"], 8, 16)
            else:
                self.choice("adc.bits", a["bits"], fam.adc_bits, f" for {self.family_name}")
        if "vref" in a:
            self.number("adc.vref", a["vref"], 0, 5, lo_open=True)
        att = a.get("attenuation_db")
        if self.family_name == ESP32:
            if "attenuation_db" not in a:
                self.fail("adc.attenuation_db", "missing (required for esp32: one of "
                          + ", ".join(_show(x) for x in ESP32_ATTENUATIONS_DB) + ")")
            else:
                self.choice("adc.attenuation_db", att, ESP32_ATTENUATIONS_DB, " for esp32")
        elif self.family_name == RP2040:
            if att is not None:
                self.fail("adc.attenuation_db", f"must be absent or null for rp2040 (its ADC has no attenuator), "
                                                f"got {_show(att)}")
        elif att is not None:
            self.choice("adc.attenuation_db", att, ESP32_ATTENUATIONS_DB)
        if "channels" in a:
            ch = self.obj("adc.channels", a["channels"], ("voltage", "current"))
            if ch is not None:
                for name in ("voltage", "current"):
                    if name in ch:
                        self.pin(f"adc.channels.{name}", ch[name], _ANALOG)
        if "bias_volts" in a:
            # the DC level must sit inside the converter's range, or half of every wave is clipped
            fs = None
            if self.family_name == ESP32 and _is_number(att) and att in ESP32_FULL_SCALE_V:
                fs, why = ESP32_FULL_SCALE_V[att], f" (the ADC's full scale at {_fmt(att)} dB)"
            elif self.family_name == RP2040 and _is_number(a.get("vref")) and a["vref"] > 0:
                fs, why = a["vref"], " (adc.vref, the ADC's full scale)"
            if fs is None:
                self.number("adc.bias_volts", a["bias_volts"], 0, 5, lo_open=True)
            else:
                self.number("adc.bias_volts", a["bias_volts"], 0, fs, lo_open=True, hi_open=True, suffix=why)
        if "read_us" in a:
            self.integer("adc.read_us", a["read_us"], 1, 1000, " (µs per ADC.read_u16 call)")
        if "nonlinearity" in a:
            self.text("adc.nonlinearity", a["nonlinearity"])

    def uarts(self, value: Any) -> None:
        u = self.obj("uarts", value, ("console", "modem"), ("metering", "optical"))
        if u is None:
            return
        ids: dict[Any, str] = {}
        for role in ("console", "metering", "modem", "optical"):
            if role in u:
                self.uart(f"uarts.{role}", role, u[role], ids)

    def uart(self, path: str, role: str, value: Any, ids: dict[Any, str]) -> None:
        fam = self.family
        if isinstance(value, dict) and value.get("id") == USB_CONSOLE:
            if role != "console":
                self.fail(f"{path}.id", f"{_show(USB_CONSOLE)} is only for uarts.console; expected a UART id")
            elif fam is not None and not fam.usb_console:
                self.fail(f"{path}.id", f"{self.family_name} has no USB device of its own; expected a UART id "
                                        f"{_ranges(fam.uart_ids)} (the board's USB-serial bridge is a UART)")
            for key in value:
                if key != "id":
                    self.fail(_join(path, key), f"not allowed with \"id\": {_show(USB_CONSOLE)} "
                                                "(a USB CDC console has no pins and no baud rate)")
            return
        u = self.obj(path, value, ("id", "baud", "tx", "rx"))
        if u is None:
            return
        uid = None
        if "id" in u:
            uid_value = u["id"]
            usb = f" (or {_show(USB_CONSOLE)} for the console)" if role == "console" and (
                fam is None or fam.usb_console) else ""
            if fam is None:
                uid = self.integer(f"{path}.id", uid_value, 0, 2, usb)
            else:
                uid = self.choice(f"{path}.id", uid_value, fam.uart_ids, f" for {self.family_name}{usb}")
            if uid is not None:
                if uid in ids:
                    self.fail(f"{path}.id", f"UART {uid} is already used by {ids[uid]}")
                else:
                    ids[uid] = path
        if "baud" in u:
            self.integer(f"{path}.baud", u["baud"], 300, 5_000_000)
        for key, use, table in (("tx", _OUTPUT, fam.uart_tx if fam else None),
                                ("rx", _INPUT, fam.uart_rx if fam else None)):
            if key not in u:
                continue
            g = self.gpio(f"{path}.{key}", u[key], use)
            if g is not None and table is not None and uid in table and g not in table[uid]:
                self.fail(f"{path}.{key}", f"GPIO {g} cannot be UART{uid} {key.upper()} on {self.family_name}; "
                                           f"UART{uid} {key.upper()} is on GPIO {', '.join(map(str, table[uid]))}")

    def modem(self, value: Any) -> None:
        m = self.obj("modem", value, ("type", "pwrkey"))
        if m is None:
            return
        if "type" in m:
            self.choice("modem.type", m["type"], MODEM_TYPES, " (the modules the firmware has an AT dialect for)")
        if "pwrkey" in m and m["pwrkey"] is not None:
            self.gpio("modem.pwrkey", m["pwrkey"], _OUTPUT)

    def frontend(self, value: Any) -> str | None:
        f = self.obj("frontend", value, ("type",), ("rate_hz", "burst_cycles", "period_ms", "address"))
        if f is None or "type" not in f:
            return None
        kind = self.choice("frontend.type", f["type"], FRONTENDS)
        allowed = {FRONTEND_ADC: ("rate_hz", "burst_cycles", "period_ms"), FRONTEND_BL0942: ("address", "period_ms")}
        if kind is None:
            return None
        for key in f:
            if key != "type" and key not in allowed[kind]:
                self.fail(f"frontend.{key}", f"not used by a {kind} front end (it takes: "
                          + ", ".join(allowed[kind]) + ")")
        if "rate_hz" in f:
            self.integer("frontend.rate_hz", f["rate_hz"], 500, 20000, " (samples per second per channel)")
        if "burst_cycles" in f:
            self.integer("frontend.burst_cycles", f["burst_cycles"], 1, 50, " (mains cycles per burst)")
        if "period_ms" in f:
            lo = 100 if kind == FRONTEND_ADC else 200
            self.integer("frontend.period_ms", f["period_ms"], lo, 10000, " (ms between measurements)")
        if "address" in f:
            self.integer("frontend.address", f["address"], 0, 3, " (the BL0942's A1/A2 pins)")
        if kind == FRONTEND_ADC:
            for key in ("rate_hz", "burst_cycles", "period_ms"):
                if key not in f:
                    self.fail(f"frontend.{key}", "missing (required for an adc front end)")
        return kind

    def bl0942(self, value: Any) -> None:
        b = self.obj("bl0942", value, ("shunt_ohm", "divider_ohm", "vref"))
        if b is None:
            return
        if "shunt_ohm" in b:
            self.number("bl0942.shunt_ohm", b["shunt_ohm"], 0, 1, lo_open=True)
        if "vref" in b:
            self.number("bl0942.vref", b["vref"], 0, 5, lo_open=True)
        if "divider_ohm" in b:
            d = b["divider_ohm"]
            if not (isinstance(d, list) and len(d) == 2 and all(_is_number(x) and x > 0 for x in d)):
                self.fail("bl0942.divider_ohm", f"expected [R_top, R_bottom] in ohms, both > 0, got {_show(d)}")

    def calibration(self, value: Any, kind: str | None = FRONTEND_ADC) -> None:
        keys = CALIBRATION_KEYS.get(kind or FRONTEND_ADC, CALIBRATION_KEYS[FRONTEND_ADC])
        c = self.obj("calibration", value, keys)
        if c is None:
            return
        for key in ("v_scale", "i_scale", "p_scale", "cf_per_kwh"):
            if key in c:
                self.number(f"calibration.{key}", c[key], 0, 1e9, lo_open=True)
        for key in ("v_gain", "i_gain"):
            if key in c:
                self.number(f"calibration.{key}", c[key], 0, 1e6, lo_open=True)
        if "phase_deg" in c:
            self.number("calibration.phase_deg", c["phase_deg"], -20, 20)
        for key in ("v_offset", "i_offset"):
            if key in c:
                self.integer(f"calibration.{key}", c[key], -65535, 65535, " (read_u16 counts)")

    def metering(self, value: Any) -> None:
        m = self.obj("metering", value, ("nominal_voltage", "nominal_frequency", "ib_amps", "imax_amps"), ("accuracy",))
        if m is None:
            return
        if "accuracy" in m:
            a = self.obj("metering.accuracy", m["accuracy"], ("pf1_from_ib", "pf_low_from_ib", "starting_ib"))
            for key in ("pf1_from_ib", "pf_low_from_ib", "starting_ib"):
                if a is not None and key in a:
                    self.number(f"metering.accuracy.{key}", a[key], 0, 1, lo_open=True, hi_open=True,
                                suffix=" (a fraction of ib_amps)")
        if "nominal_voltage" in m:
            self.number("metering.nominal_voltage", m["nominal_voltage"], 0, 500, lo_open=True)
        if "nominal_frequency" in m:
            self.choice("metering.nominal_frequency", m["nominal_frequency"], (50.0, 60.0))
        ib = self.number("metering.ib_amps", m["ib_amps"], 0, 1000, lo_open=True) if "ib_amps" in m else None
        if "imax_amps" in m:
            imax = self.number("metering.imax_amps", m["imax_amps"], 0, 1000, lo_open=True)
            if imax is not None and ib is not None and imax <= ib:
                self.fail("metering.imax_amps", f"expected a number greater than ib_amps ({_fmt(ib)}), got {_show(imax)}")


def main(argv: list[str] | None = None) -> int:
    """`python -m meterkit.boards [ID_OR_PATH ...]`: validate the given boards (default: all in BOARDS_DIR)."""
    names = (sys.argv[1:] if argv is None else argv) or list_boards()
    status = 0
    for name in names:
        try:
            board = load_board(name)
        except BoardError as e:
            print(e, file=sys.stderr)
            status = 1
        else:
            print(f"{board['id']}: ok")
    return status


if __name__ == "__main__":
    sys.exit(main())
