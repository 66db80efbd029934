# The meter's mode, stored outside the app slots. Development (a fresh board, the emulator): REPL and Ctrl-C work
# and development keys are trusted. Locked (after provisioning): keyboard interrupt and REPL are off and only signed
# commands change state. A missing file means a fresh board; an unreadable or malformed one fails closed (locked).
# boot.py and main.py apply the same rule in their own handlers (stage 0 cannot rely on the loader being there).
import json

from loader import store

DEVELOPMENT = "development"
LOCKED = "locked"
PATH = "meter/mode.json"
_CTRL_C = 3
_ENOENT = 2


def current():
    try:
        with open(PATH) as f:
            rec = json.loads(f.read())
    except OSError as e:
        return DEVELOPMENT if e.args[0] == _ENOENT else LOCKED  # missing: a fresh board; unreadable: locked
    except (ValueError, MemoryError, RuntimeError):  # not JSON, or nested past what the heap can parse: locked
        return LOCKED
    m = rec.get("mode") if isinstance(rec, dict) else None
    return m if m in (DEVELOPMENT, LOCKED) else LOCKED


def apply(mode):
    """Enable or disable the keyboard interrupt on the console to match the mode (boot.py and main.py start with it
    off: MicroPython turns it on again for each file it runs)."""
    import micropython

    micropython.kbd_intr(_CTRL_C if mode == DEVELOPMENT else -1)


def store_mode(mode):
    if mode not in (DEVELOPMENT, LOCKED):
        raise ValueError("unknown mode")
    store.write_json(PATH, {"mode": mode})
