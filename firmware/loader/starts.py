# A stored setting must never keep a meter failing at start-up. The loader counts app starts that failed before
# they proved healthy (meter/starts.json): a start the app ended with an exception (`crashed`, from the loader's
# handler) or that the watchdog ended (seen at the next start: `begin(hung=True)`). A start ended by a power cut or a
# reset is not a failure: anyone can cut a meter's power, and counting those let three quick power cuts set a locked
# meter's signed settings aside (found by `meter-fuzz attack`). The app clears the count once it has run for 10
# readings (app/supply.py). After STRIKES_MAX failed starts in a row the settings the app reads at start-up are set
# aside (renamed to <file>.set-aside, kept for a head-end or engineer to read back) and the app starts on its
# defaults; event "settings-set-aside" records which (411 in the meter's ring). Each change is one atomic write or
# rename, so a power cut leaves the count or the files as before or after it.
import os

from loader import store

PATH = "meter/starts.json"
STRIKES_MAX = 3
SETTINGS = ("meter/supply.json", "meter/config.json", "meter/calibration.json")
ASIDE = ".set-aside"


def _failed():
    try:
        rec = store.read_json(PATH, {})
    except ValueError:
        rec = {}
    if not isinstance(rec, dict):
        rec = {}
    got = rec.get("failed")
    return (got if type(got) is int and got >= 0 else 0), rec.get("open") is True


def begin(hung=False):
    """Note this start; returns the settings files set aside now (usually none). `hung`: the reset that led to this
    start was the watchdog's, so the last start, if it never proved healthy, failed."""
    n, was_open = _failed()
    if was_open and hung:
        n += 1
    aside = []
    if n >= STRIKES_MAX:
        for p in SETTINGS:
            if store.exists(p):
                if store.exists(p + ASIDE):
                    os.remove(p + ASIDE)  # the newer evidence replaces the older
                os.rename(p, p + ASIDE)
                aside.append(p)
        n = 0
    store.write_json(PATH, {"failed": n, "open": True})
    return aside


def crashed():
    """The app ended with an exception before it proved healthy: one failed start."""
    n, was_open = _failed()
    store.write_json(PATH, {"failed": n + 1 if was_open else n})


def healthy():
    """The app has run: a later failure starts the count again."""
    store.write_json(PATH, {"failed": 0})


def forget():
    """Take this module off the heap: it is needed at start-up and once more, at the app's 10th reading."""
    import loader

    loader.forget("loader.starts")
