"""What the meter reads from flash at power-up: every persisted record and settings file the loader and the app read
at start-up, one damaged at a time inside an otherwise valid locked meter, through the same functions the boot
runs. The rule under test (loader/settings.py, loader/starts.py): "a stored setting must not make start-up fail in a
loop" — whatever a file holds, its readers accept it or fall back to their documented default (with an event), and
a locked meter stays locked (a damaged mode file never reads as development).

The boot, in the order the firmware runs it (boot.py, then main.py):
  loader/early.py run        mode.current, mode.apply, store.cleanup, count_boot (boots.json),
                             loaders.take_revert_note (loaders.json)
  loader/context.py Context  board.load (board.json), mode.current (mode.json), identity.json
  loader/startup.py          update.pending (update.json) and, when one is pending, the install (startup._install);
                             startup.choose: update.boot_choice and slots.select (slots.json, slots/a/manifest.cbor);
                             recovery.restore_relay (recovery-relay.json, supply-hold.json, config.json's loader keys);
                             update.slots_facts (both slots' manifest.cbor and image.json); loaders.under_test;
                             starts.begin (starts.json) and its journal event
  app/main.py _main          Metering (calibration.json, config.json's metering keys, meter/energy.a/.b),
                             Supply (events.json, supply.json, config.json, disconnect.json, supply-hold.json,
                             clock.json, credit.json), group 67 and Network as main._main wires them (config.json's head-end)
startup._prepare and app.main._main themselves are not called: they put the slot on sys.path, arm a watchdog and
run the app's event loop; the probe calls the functions they call, in their order. The board's hardware is a
stand-in `machine` (pins read high, relay pulses recorded, no sleeps) when the runtime has none.

Input: byte 0 chooses the file (FILES), byte 1 how it is damaged, the rest drives the damage:
  byte 1 bits 0-1  0: the rest is the file's raw content; 1: a structure-aware mutation of the file's real content
                   (JSON or CBOR as the file is: types swapped 5 / 5.0 / True / "5", keys dropped and added, values
                   nested, huge numbers, NaN and infinities, long and odd strings, the values the readers give
                   meaning to (slot names, modes, bounds), the root replaced) driven by the rest; 2: the same, then the text cut short at a point the rest names; 3: the file missing
         bit 2     for the register files: the CRC the firmware checks is put right after the damage
         bit 3     for the register files: energy.b instead of energy.a
Documented outcome that is not a finding: a board file that is missing or no board definition (loader/board.py
raises ValueError: a meter cannot start without its pins; main.py's handler resets) is BoardMissing, and so is a
board file with an "id" whose other fields the start-up cannot use (KeyError, TypeError, ... from loader/hal.py,
app/calibration.py or app/metering.py; loader/board.py's ValueError for a number no float holds, a rating of
10**400 amps, which CPython's float() would raise OverflowError for and MicroPython's make infinite): provisioning
writes it once, nothing at run time changes it and nothing can stand in for it.
(That a damaged board file stops a locked meter in a reset loop is a limitation this target reports, not hides.)"""

import json

import fuzzcore

import cbor

ERRORS = ()  # set below: BoardMissing
MODULES = ("loader/early.py", "loader/context.py", "loader/startup.py", "loader/store.py", "loader/settings.py",
           "loader/mode.py", "loader/journal.py", "loader/starts.py", "loader/slots.py", "loader/update.py",
           "loader/recovery.py", "loader/supply_hold.py", "loader/loaders.py", "loader/board.py",
           "loader/wallclock.py", "app/meter_settings.py", "app/supply_settings.py", "app/calibration.py",
           "app/credit_store.py", "app/registers.py", "app/events.py", "app/network.py", "app/disconnect.py",
           "app/clock.py", "app/main.py", "app/event_logs.py")
MEM_BASE = 512 * 1024  # a whole start-up: the app's objects, event ring, register and credit records
MEM_PER_BYTE = 256


class BoardMissing(ValueError):
    """loader/board.py's documented ValueError: no board definition at meter/board.json."""


ERRORS = (BoardMissing,)

LOCKED_MODE = {"mode": "locked"}
BOARD = {"schema": 1, "id": "esp32_devkitc", "mcu": {"family": "esp32", "arch": "xtensawin", "freq_hz": 160000000},
         "heap_bytes": 160000, "flash": {"block_size": 4096, "block_count": 512, "erase_cycles": 100000,
                                         "erase_us": 45000, "page_program_us": 400},
         "pins": {"led": {"gpio": 2, "active": "high"}, "button": {"gpio": 0, "active": "low", "pull": "up"},
                  "relay_set": {"gpio": 25}, "relay_reset": {"gpio": 26},
                  "relay_feedback": {"gpio": 27, "active": "low", "pull": "up"},
                  "cover": {"gpio": 32, "active": "high", "pull": "up"}},
         "adc": {"bits": 12, "vref": 1.1, "attenuation_db": 11, "channels": {"voltage": {"gpio": 34},
                                                                            "current": {"gpio": 35}},
                 "bias_volts": 1.3, "read_us": 30},
         "uarts": {"console": {"id": 0, "baud": 115200, "tx": 1, "rx": 3},
                   "modem": {"id": 1, "baud": 115200, "tx": 18, "rx": 19},
                   "optical": {"id": 2, "baud": 9600, "tx": 17, "rx": 16}},
         "modem": {"type": "bc660k", "pwrkey": 23},
         "frontend": {"type": "adc", "rate_hz": 4000, "burst_cycles": 10, "period_ms": 1000},
         "calibration": {"v_gain": 400.0, "i_gain": 100.0, "phase_deg": 0.0, "v_offset": 0, "i_offset": 0},
         "metering": {"nominal_voltage": 230.0, "nominal_frequency": 50.0, "ib_amps": 5.0, "imax_amps": 60.0,
                      "accuracy": {"pf1_from_ib": 0.1, "pf_low_from_ib": 0.2, "starting_ib": 0.02}}}
CONFIG = {"recovery_relay": "disconnect", "recovery_time_limit_s": 600, "relay_pulse_ms": 100,
          "persist_interval_s": 60, "md_period_s": 1800, "tz_offset_min": 330,
          "tou": [["00:00", 1], ["06:00", 2], ["18:00", 3]], "tou_weekend": [["00:00", 1]],
          "headend": {"ip": "10.64.0.1", "port": 4059, "uplink_s": 600}}
SUPPLY = {"control_mode": 1, "tariff": {"flat": 1000, "tou": {"3": 1400}, "fixed_daily": 20},
          "windows": {"daily": [["18:00", "08:00"]], "weekdays": [6], "holidays": []}, "allowance": 0,
          "emergency": 2000, "thresholds": [30, 10, 0],
          "load_limit": {"threshold_w": 4000, "over_s": 10, "lockout_s": 120, "max_trips": 3}}

# (path, format): J a JSON file, C a CBOR one, R the register files (CBOR and a CRC-32), B a packed binary file
# (app/event_logs.py's compartments)
FILES = (
    ("meter/config.json", "J"),
    ("meter/mode.json", "J"),
    ("meter/boots.json", "J"),
    ("meter/loaders.json", "J"),
    ("meter/identity.json", "J"),
    ("meter/board.json", "J"),
    ("meter/update.json", "J"),
    ("meter/slots.json", "J"),
    ("slots/a/manifest.cbor", "C"),
    ("meter/supply-hold.json", "J"),
    ("meter/starts.json", "J"),
    ("meter/update-events.json", "J"),
    ("meter/calibration.json", "J"),
    ("meter/supply.json", "J"),
    ("meter/credit.json", "J"),
    ("meter/energy.a", "R"),
    ("meter/events.json", "J"),
    ("meter/disconnect.json", "J"),
    ("meter/clock.json", "J"),
    ("slots/b/manifest.cbor", "C"),  # the other slot (an earlier app kept for rollback): update.slots_facts reads it
    ("meter/logs/2.bin", "B"),  # IS 15959's power events' compartment: the boot's power events are added to it
    ("meter/logs/5.bin", "B"),  # the non-rollover (tamper) compartment: a cover off at power-up adds to it
)
OPENED = "meter/recovery-relay.json"  # present with supply-hold.json damaged: restore_relay then reads it
APP_FILE = "app/__init__.py"  # the template slot's one file
APP_TEXT = b"# the fuzz template's app\n"
OLD_TEXT = b"# the fuzz template's earlier app, in slot b\n"
NOT_IN_TEMPLATE = {"meter/update.json": {"hash": "00" * 32, "permanent": False}}  # mutated from, absent by default

_template = {}  # path -> bytes: the valid meter, written anew for each input
_state = {}


# -- the board's hardware, when the runtime has no machine.Pin ---------------------------------------------------------
class _Pin:
    OUT = 1
    IN = 0
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 1
    IRQ_RISING = 2

    def __init__(self, gpio, mode=0, pull=None, value=None):
        self.gpio = gpio

    def value(self, v=None):
        return 1 if v is None else None

    def irq(self, handler=None, trigger=0):
        return None


class _Machine:
    Pin = _Pin
    PWRON_RESET = 1
    WDT_RESET = 3

    @staticmethod
    def unique_id():
        return b"\x24\x6f\x28\x01\x02\x03"

    @staticmethod
    def reset_cause():
        return 1

    @staticmethod
    def reset():
        raise fuzzcore.Violation("start-up reset the meter")


def _hardware():
    """Put the stand-in where `import machine` finds it (when the runtime has no machine.Pin); returns what was
    there, for _hardware_back. It is taken away again after each input, so that code run later in the same process
    (a test run sharing it) sees the runtime as it was; loader.hal and loader.context keep the stand-in they
    imported."""
    import sys

    was = sys.modules.get("machine")
    try:
        import machine

        if hasattr(machine, "Pin") and hasattr(machine, "unique_id"):
            return machine
    except ImportError:
        pass
    sys.modules["machine"] = _Machine
    return was


def _hardware_back(was):
    import sys

    if was is None:
        sys.modules.pop("machine", None)
    else:
        sys.modules["machine"] = was


class _Front:
    """The metering front end (it reads no file: its UART and ADC are the board's)."""

    kind = "adc"
    pulses = None

    def set_constants(self, consts):
        pass


# -- the template meter ------------------------------------------------------------------------------------------------
def setup():
    # the modules the start-up forgets once their work is done (loader/startup.py, context.py, app/events.py): kept,
    # so that no input pays for importing them again (a first import that compiles a module's source weighs more
    # than the memory bound allows for it)
    fuzzcore.keep_loaded("app.event_logs", "loader.install", "loader.bundle", "loader.early", "loader.recovery",
                         "loader.loaders", "loader.starts", "loader.board")
    was = _hardware()
    try:
        _make_template()
    finally:
        _hardware_back(was)


def _make_template():
    import hashlib
    import os

    from app import calibration, credit_store, disconnect, events, registers
    from loader import LOADER_API, journal, store, supply_hold

    _scratch()
    for d in ("meter", "slots", "slots/a", "slots/a/app", "slots/b", "slots/b/app"):
        os.mkdir(d)

    def put(path, obj):
        store.write_json(path, obj)

    put("meter/board.json", BOARD)
    put("meter/mode.json", LOCKED_MODE)
    put("meter/config.json", CONFIG)
    put("meter/supply.json", SUPPLY)
    put("meter/boots.json", {"boots": 41})
    put("meter/loaders.json", {"active": "a"})
    put("meter/identity.json", {"meter_id": "m-0001"})
    put("meter/slots.json", {"active": "a", "confirmed": "a", "test": None, "tries": 0,
                             "trial": {"hash": "ab" * 32, "version": "1.0.0", "outcome": "confirmed", "reason": ""}})
    put("meter/starts.json", {"failed": 1})
    put("meter/clock.json", {"set_at": 1800000000, "drift_s": -3, "ppm": 12, "sets": 4})
    for slot, version, text in (("a", "1.0.0", APP_TEXT), ("b", "0.9.0", OLD_TEXT)):
        with open("slots/%s/%s" % (slot, APP_FILE), "wb") as f:
            f.write(text)
        manifest = {"format": 1, "board": BOARD["id"], "loader_api": LOADER_API, "version": version,
                    "files": [{"path": APP_FILE, "size": len(text), "sha256": hashlib.sha256(text).digest()}]}
        with open("slots/%s/manifest.cbor" % slot, "wb") as f:
            f.write(cbor.dumps(manifest))
    # the records the firmware writes, by its own writers
    journal._sink[:] = []
    journal.event("installed", "slot a 1.0.0")
    journal.event("confirmed", "slot a 1.0.0")
    journal._pending[:] = []
    supply_hold.write(False)
    store.write_record(calibration.PATH, calibration.KIND, calibration.VERSION,
                       {"frontend": "adc", "constants": {"v_gain": 401.5, "i_gain": 99.25, "phase_deg": 0.4,
                                                         "p_gain": 1.0, "p_offset_w": 0.1, "i_noise": 0.002},
                        "steps": ["gain", "phase"], "at": 1800000000})
    store.write_record(disconnect.STATE_FILE, disconnect.RECORD, disconnect.RECORD_VERSION,
                       {"mode": 1, "state": 1, "reason": ""})
    cs = credit_store.CreditStore()
    cs.ledger.credit(50000)
    cs.tokens.mark(7)
    cs.import_mj = 123456789
    cs.day, cs.month = 20800, 24323
    cs.save()
    regs = registers.Registers()
    regs.add(registers.IMPORT, 9876543210)
    regs.extra["at"] = 1800000100
    p = registers.Persist()
    p.save(regs)
    p.save(regs)
    log = events.EventLog(clock=lambda: 1800000200, logs=events.LOGS)
    log.load()
    log.add(events.POWER_FAIL, "last saved reading", 1800000100)
    log.add(events.POWER_RESTORE, "power on")
    log.add(events.COVER_OPEN, "cover open")
    log.add(events.SETTINGS_CHANGED, "tou")
    for path in _walk(".", ""):
        with open(path, "rb") as f:
            _template[path] = f.read()
    _state["board"] = BOARD["id"]


def _walk(top, prefix):
    import os

    out = []
    for ent in os.ilistdir(top) if hasattr(os, "ilistdir") else [(n, 0x4000 if os.path.isdir(top + "/" + n) else 0)
                                                                   for n in os.listdir(top)]:
        rel = prefix + ent[0]
        if ent[1] == 0x4000:
            out.extend(_walk(top + "/" + ent[0], rel + "/"))
        else:
            out.append(rel)
    return out


# -- the damage --------------------------------------------------------------------------------------------------------
_NAN = "\x00nan\x00"
_INF = "\x00inf\x00"
_NINF = "\x00-inf\x00"
_KEYS = ("kind", "v", "data", "mode", "active", "test", "tries", "confirmed", "permanent", "trial", "hash", "failed",
         "boots", "held", "headend", "reverted", "meter_id", "id", "seq", "floor", "ring", "ledger", "tokens",
         "import_mj", "day", "month", "constants", "frontend", "steps", "at", "set_at", "sets", "state", "reason",
         "recovery_relay", "tou", "tou_weekend", "persist_interval_s", "md_period_s", "tz_offset_min",
         "relay_pulse_ms", "recovery_time_limit_s", "tariff", "windows", "allowance", "thresholds", "emergency",
         "load_limit", "control_mode", "version", "event", "detail", "outcome", "format", "files", "path", "size",
         "sha256", "board", "loader_api", "wh", "mj", "md", "pins", "flash", "metering", "frontend", "calibration",
         "ip", "port", "uplink_s", "flat", "slabs", "daily", "v_gain", "", "\u00e9")

# values the readers give meaning to: slot and mode names, record kinds, bounds of the checks
_WORDS = ("a", "b", "c", "development", "locked", "disconnect", "hold", "adc", "bl0942", "calibration", "events",
          "credit", "disconnect", "supply-hold", "00" * 32, "ab" * 32, "zz" * 32, "10.64.0.1", "fd00::1", "testing",
          "confirmed", "rolled-back", "gain", "phase", "offset", "18:00", "00:00", "24:00", "23:59", "1", "9",
          0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 59, 60, 86400, 86401, 100, 1000, 1001, 600, 1800, 4059, 65535, 65536,
          1800000000, 4102444800, 4102444801, 1 << 30, 1 << 40, (1 << 62) + 1, 1 << 63, -1, -720, -721, 840, 841, True, False, None, 0.0,
          1.5, -0.0, [], {}, [["00:00", 1]], [["18:00", 1]])


def _variant(v, b, json_file):
    """Another value in v's place: the same number in another type, a huge or odd number, an odd string, a
    container, None."""
    k = b % 24
    if k == 0:
        return None
    if k == 1:
        return True
    if k == 2:
        return False
    if k == 3:
        return 5
    if k == 4:
        return 5.0
    if k == 5:
        return "5"
    if k == 6:
        return []
    if k == 7:
        return {}
    if k == 8:
        return [v]
    if k == 9:
        return {"x": v}
    if k == 10:
        return 1 << 64
    if k == 11:
        return -(1 << 63) - 1
    if k == 12:
        return 10 ** 400 if json_file else 10 ** 30  # JSON holds any int; CBOR's end at 64 bits
    if k == 13:
        return 1e308
    if k == 14:
        return -1
    if k == 15:
        return _NAN if json_file else float("nan")
    if k == 16:
        return _INF if json_file else float("inf")
    if k == 17:
        return _NINF if json_file else float("-inf")
    if k == 18:
        return ""
    if k == 19:
        return "x" * (64 + b)
    if k == 20:
        return "\u00e9\u20ac\U0001f600"
    if k == 21:
        return b"\x00" * (b & 63) if not json_file else "\\"
    if type(v) in (int, float) and type(v) is not bool:
        return -v if k == 22 else v + 1
    if type(v) is str:
        return v + v if k == 22 else v[:-1]
    return 0


def _slots(obj, out):
    """Every (container, key) under obj, depth first."""
    if type(obj) is dict:
        for k in list(obj.keys()):
            out.append((obj, k))
            _slots(obj[k], out)
    elif type(obj) is list:
        for i in range(len(obj)):
            out.append((obj, i))
            _slots(obj[i], out)
    return out


def _mutate(obj, ops, json_file):
    """Apply the ops (pairs of bytes: operation, which place) to a copy of the decoded file; returns the new root."""
    root = [obj]
    i = 0
    while i + 1 < len(ops) and i < 32:
        op, at = ops[i], ops[i + 1]
        i += 2
        places = _slots(root[0], [(root, 0)])
        c, k = places[at % len(places)]
        kind = op % 8
        if kind <= 2:
            c[k] = _variant(c[k], op >> 3, json_file)
        elif kind == 3:
            if c is not root:
                if type(c) is dict:
                    c.pop(k)
                else:
                    c.pop(k)
        elif kind == 4:
            tgt = c[k]
            key = _KEYS[(op >> 3) % len(_KEYS)]
            if type(tgt) is dict:
                tgt[key] = _variant(None, at, json_file)
            elif type(tgt) is list:
                tgt.append(_variant(None, at, json_file))
            elif type(c) is dict:
                c[key] = _variant(c[k], at, json_file)
        elif kind == 5:
            v = c[k]
            for _ in range(1 + (op >> 3)):
                v = [v] if at & 1 else {"n": v}
            c[k] = v
        elif kind == 6:
            w = _WORDS[at % len(_WORDS)]
            c[k] = json.loads(json.dumps(w)) if type(w) in (list, dict) else w  # a copy: no state between inputs
        else:
            root[0] = _variant(root[0], op >> 3, json_file)
    return root[0]


def _json_text(obj):
    text = json.dumps(obj)
    for mark, word in ((_NAN, "NaN"), (_INF, "Infinity"), (_NINF, "-Infinity")):
        quoted = json.dumps(mark)
        if quoted in text:
            text = word.join(text.split(quoted))
    return text.encode()


def _damage(path, fmt, how, rest):
    """The chosen file's new content (bytes), or None for a missing file."""
    mode = how & 3
    if mode == 3:
        return None
    base = _template.get(path)
    if mode == 0:
        body = bytes(rest)
    else:
        if fmt == "J":
            real = json.loads(base if base is not None else json.dumps(NOT_IN_TEMPLATE[path]))
            try:
                body = _json_text(_mutate(real, rest, True))
            except MemoryError:  # the VM's heap cannot build the file the mutation grew (a string repeated to 393 KB):
                body = bytes(rest)  # the raw bytes instead, as for a CBOR value the encoder cannot take
        elif fmt == "B":  # the real bytes, with (position, value) pairs from the rest written over them
            body = bytearray(base)
            for k in range(0, len(rest) - 1, 2):
                body[rest[k] % len(body)] = rest[k + 1]
            body = bytes(body)
        else:
            real = cbor.loads(base[:-4] if fmt == "R" else base)
            try:
                body = cbor.dumps(_mutate(real, rest, False))
            except ValueError:  # CBORError: past the encoder's depth or integer range; the bytes as they are
                body = bytes(rest)
        if mode == 2 and rest:
            body = body[: rest[-1] * len(body) // 256]
    if fmt == "R" and how & 4:
        import binascii

        if mode == 0 and len(body) >= 4:
            body = body[:-4]
        body = body + (binascii.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big")
    return body


# -- the boot ----------------------------------------------------------------------------------------------------------
def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def _scratch():
    """fuzzcore.scratch's fresh empty folder, on /dev/shm where there is one: each input writes a whole meter's
    files, and /tmp on a disk makes that milliseconds an input."""
    import os

    if "shm" not in _state:
        try:
            os.stat("/dev/shm")
            _state["shm"] = "/dev/shm/meter-fuzz-boot_records-%d" % fuzzcore._pid()
        except OSError:
            _state["shm"] = None
    base = _state["shm"]
    if base is None:
        return fuzzcore.scratch("boot_records")
    os.chdir("/")
    fuzzcore._rmtree(base)
    os.mkdir(base)
    os.chdir(base)
    return base


def _lay_out(target, content):
    import os

    _scratch()
    for d in ("meter", "meter/logs", "slots", "slots/a", "slots/a/app", "slots/b", "slots/b/app"):
        os.mkdir(d)
    for path, data in _template.items():
        if path != target:
            _write(path, data)
    if content is not None:
        _write(target, content)
    if target == "meter/supply-hold.json":
        _write(OPENED, b'{"by": "recovery"}')


def _reset_module_state():
    from loader import board, journal

    board._board = None
    journal._sink[:] = []
    journal._pending[:] = []


def _boot(journal_read):
    """The start-up's readers, in the firmware's order (see the module's docstring). `journal_read`: the update
    journal is the damaged file, and this start-up has an update event to record (most have none)."""
    import _appwire

    from app.metering import Metering
    from app.supply import Supply
    from loader import board as board_file
    from loader import early, journal, loaders, mode, recovery, starts, startup, update

    _appwire.fresh_ram()
    early.run()
    try:
        board_file.load()
    except ValueError as e:
        raise BoardMissing(str(e)) from None
    from loader.context import Context

    ctx = Context()
    pulses = []
    ctx.hal.relay_pulse = lambda connect, ms=100: pulses.append(connect) is None  # no coil, no sleep
    if update.pending():
        startup._install(ctx.board)
    name, manifest, test = startup.choose(ctx.board, False)
    if name is None:
        return ctx, None, None, None  # recovery mode: it serves SMP until its time limit, then resets
    recovery.restore_relay(ctx)
    ctx.loader_test = loaders.under_test()
    ctx.test_boot = test or ctx.loader_test
    ctx.slot = name
    ctx.facts = update.slots_facts(name, manifest)  # as startup._prepare
    aside = starts.begin()
    if aside:
        journal.event("settings-set-aside", "%d failed starts: %s" % (starts.STRIKES_MAX, ", ".join(aside)))
    elif journal_read:  # the start-up's update events (a rollback, an install, recovery's relay) read the journal
        journal.event("rollback", "slot b not confirmed before reset")
    meter = Metering(ctx, _Front())
    sup = Supply(ctx, meter, set_rtc=lambda t: None)
    meter.listeners.append(sup.on_reading)
    net = _appwire.network(ctx, sup.log)
    codes = [e[1] for e in sup.log.ring]
    fuzzcore.check(mode.current() in (mode.DEVELOPMENT, mode.LOCKED), "mode.current() gave %r" % (mode.current(),))
    return ctx, meter, sup, (net, codes)


def run(data):
    if not _template:
        setup()
    if len(data) < 2:
        data = bytes(data) + bytes(2 - len(data))
    path, fmt = FILES[data[0] % len(FILES)]
    how = data[1]
    if fmt == "R" and how & 8:
        path = "meter/energy.b"
    content = _damage(path, fmt, how, data[2:])
    _state["size"] = 0 if content is None else len(content)
    _lay_out(path, content)
    _reset_module_state()
    was = _hardware()
    try:
        ctx, meter, sup, rest = _boot(path == "meter/update-events.json")
    except (KeyError, TypeError, AttributeError, IndexError, ValueError, ArithmeticError) as e:
        if path != "meter/board.json" or isinstance(e, BoardMissing):
            raise
        # the board file past its "id": trusted provisioning data, nothing at run time writes it and nothing can
        # stand in for it (pins, UARTs, front end); a damaged one stops every start-up (reported, by design)
        raise BoardMissing("board definition unusable: %s %s" % (type(e).__name__, e)) from None
    finally:
        _reset_module_state()
        _hardware_back(was)
    if path == "meter/mode.json":
        _check_mode(ctx.mode, content)
    else:
        fuzzcore.check(ctx.mode == "locked", "a locked meter read as %r after damage to %s" % (ctx.mode, path))
    if path.startswith("slots/b/"):
        _check_other_slot(ctx)
    if meter is None:
        return "recovery"
    net, codes = rest
    _check_events(meter, sup, codes)
    _check_power_log(sup)
    return "app", ctx.meter_id, sup.control.state, net is not None, len(codes)


def mem_size(data):
    """The damaged file's size, for the memory oracle: a structure-aware mutation can make a file far larger than its
    input (a value repeated: 97 bytes of input, a 393 KB mode file), and the readers' cost follows the file."""
    return _state.get("size", 0)


def _check_other_slot(ctx):
    """Whatever the other slot's manifest holds, the meter boots its active slot a, and the other slot's facts (what
    an image state read reports) are (version or None, its hash, bootable): an app that read it at its start once
    stopped there."""
    booted = getattr(ctx, "slot", None)
    fuzzcore.check(booted == "a", "damage to slot b's manifest booted %r" % (booted,))
    f = getattr(ctx, "facts", {}).get("b")
    fuzzcore.check(f is None or (len(f) == 3 and (f[0] is None or type(f[0]) is str) and type(f[2]) is bool),
                   "slot b's facts are not (version, hash, bootable): %r" % (f,))


def _check_events(meter, sup, codes):
    """Every reader that fell back to its defaults said so in the app's event ring."""
    from app import events, meter_settings, supply_settings

    fuzzcore.check(not meter.noted, "metering's start-up events never reached the ring: %r" % (meter.noted,))
    for name, reader, code in (("metering settings", meter_settings.load, events.SETTINGS_INVALID),
                               ("supply settings", supply_settings.load, events.SETTINGS_INVALID)):
        _, problem = reader()
        fuzzcore.check(problem is None or code in codes, "%s fell back (%s) without event %d" % (name, problem, code))
    if sup.store.problem is not None:
        fuzzcore.check(events.CREDIT_RECORD_DAMAGED in codes, "a damaged credit record without its event")


def _check_power_log(sup):
    """Whatever a compartment file holds, the boot's power restoration is in IS 15959's power log (app/event_logs.py:
    from the file, or from the ring when the file is of a newer app or cannot be read)."""
    rows = sup.log.compartments("rows", 2)
    fuzzcore.check(bool(rows) and rows[-1][1] == 102, "the boot's power restoration is not in the power log: %r"
                   % (rows[-3:],))


def _check_mode(got, content):
    """A locked meter whose mode file is damaged stays locked: development only for a missing file (a fresh board)
    or one that really says development."""
    if got != "development":
        return
    if content is None:
        return
    try:
        rec = json.loads(content)
    except Exception:  # noqa: BLE001 - any failure to parse: it must not have read as development
        rec = None
    ok = type(rec) is dict and rec.get("mode") == "development"
    fuzzcore.check(ok, "a damaged mode file (%r) read as development" % (bytes(content[:60]),))
