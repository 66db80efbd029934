# A stored setting must never keep a meter failing at start-up. The loader counts app starts that have not yet
# proved healthy (meter/starts.json, written before the app is imported); the app clears the count once it has run
# for 10 readings (app/supply.py). After STRIKES_MAX such starts in a row the settings the app reads at start-up are
# set aside (renamed to <file>.set-aside, kept for a head-end or engineer to read back) and the app starts on its
# defaults; event "settings-set-aside" records which (411 in the meter's ring). Each change is one atomic write or
# rename, so a power cut leaves the count or the files as before or after it.
import os

from loader import store

PATH = "meter/starts.json"
STRIKES_MAX = 3
SETTINGS = ("meter/supply.json", "meter/config.json", "meter/calibration.json")
ASIDE = ".set-aside"


def begin():
    """Count this start; returns the settings files set aside now (usually none)."""
    try:
        rec = store.read_json(PATH, {})
    except ValueError:
        rec = {}
    got = rec.get("failed") if isinstance(rec, dict) else None
    n = got if type(got) is int and got >= 0 else 0
    aside = []
    if n >= STRIKES_MAX:
        for p in SETTINGS:
            if store.exists(p):
                if store.exists(p + ASIDE):
                    os.remove(p + ASIDE)  # the newer evidence replaces the older
                os.rename(p, p + ASIDE)
                aside.append(p)
        n = 0
    store.write_json(PATH, {"failed": n + 1})
    return aside


def healthy():
    """The app has run: a later failure starts the count again."""
    store.write_json(PATH, {"failed": 0})


def forget():
    """Take this module off the heap: it is needed at start-up and once more, at the app's 10th reading."""
    import loader

    loader.forget("loader.starts")
