# The meter's mode, stored outside the app slots. Development (a fresh board, the emulator): REPL and Ctrl-C work
# and development keys are trusted. Locked (after provisioning): keyboard interrupt and REPL are off and only signed
# commands change state. A missing file means a fresh board; an unreadable one fails closed (locked).
from loader import store

DEVELOPMENT = "development"
LOCKED = "locked"
PATH = "meter/mode.json"
_CTRL_C = 3


def current():
    try:
        rec = store.read_json(PATH)
    except ValueError:
        return LOCKED
    if rec is None:
        return DEVELOPMENT
    m = rec.get("mode") if isinstance(rec, dict) else None
    return m if m in (DEVELOPMENT, LOCKED) else LOCKED


def apply(mode):
    """Enable or disable the keyboard interrupt on the console to match the mode."""
    import micropython

    micropython.kbd_intr(_CTRL_C if mode == DEVELOPMENT else -1)


def store_mode(mode):
    if mode not in (DEVELOPMENT, LOCKED):
        raise ValueError("unknown mode")
    store.write_json(PATH, {"mode": mode})
