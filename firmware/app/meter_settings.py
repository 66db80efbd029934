# The application's metering settings, in meter/config.json beside the loader's (outside the app slots), read by the
# file's one rule (loader/settings.py read): missing keys take the defaults; a wrong value is not half-used:
# metering runs on all its defaults and records event 411 naming the key.
from loader import settings, store, strict

PATH = "meter/config.json"
MD_PERIODS = (300, 600, 900, 1800, 3600)
DEFAULTS = {
    "persist_interval_s": 60,  # registers to flash (docs/metering.md: wear arithmetic)
    "md_period_s": 1800,  # maximum-demand integration period, aligned to the clock
    "tz_offset_min": 330,  # local time = RTC (UTC) + this; TOU zones follow local time (India: +05:30)
    "tou": [["00:00", 1]],  # [start "HH:MM", zone 1..8], the zone runs until the next start; one zone by default
    "tou_weekend": None,  # the same for Saturday and Sunday, or None for the weekday table
    "billing_day": 1,  # the billing period ends at local 00:00 of this day of each month (1-28: in every month)
}


def _hhmm(s):
    if type(s) is not str or len(s) != 5 or s[2] != ":" or not (s[:2] + s[3:]).isdigit():
        return None
    try:
        h = int(s[:2])
        m = int(s[3:])
    except ValueError:
        return None
    return h * 60 + m if 0 <= h < 24 and 0 <= m < 60 else None


def parse_tou(table):
    """[(minute of day, zone)] sorted, starting at 00:00; None for a bad table."""
    if not isinstance(table, list) or not 1 <= len(table) <= 24:
        return None
    out = []
    for ent in table:
        if not isinstance(ent, list) or len(ent) != 2:
            return None
        minute = _hhmm(ent[0])
        zone = ent[1]
        if minute is None or not strict.is_int(zone, 1, 8):
            return None
        out.append((minute, zone))
    out.sort()
    if out[0][0] != 0:
        return None
    for k in range(1, len(out)):
        if out[k][0] == out[k - 1][0]:
            return None
    return out


_CHECKS = {
    "persist_interval_s": lambda v: strict.is_int(v, 10, 3600),
    "md_period_s": lambda v: strict.is_int(v) and v in MD_PERIODS,
    "tz_offset_min": lambda v: strict.is_int(v, -720, 840),
    "tou": lambda v: parse_tou(v) is not None,
    "tou_weekend": lambda v: v is None or parse_tou(v) is not None,
    "billing_day": lambda v: strict.is_int(v, 1, 28),
}


CALENDAR = ("tz_offset_min", "tou", "tou_weekend", "billing_day")  # what a signed meter.calendar command may change


def check_calendar(new):
    """The problem with a calendar change (an object of CALENDAR keys, at least one), or None."""
    if not isinstance(new, dict) or not new:
        return "not an object"
    for k in new:
        if k not in CALENDAR:
            return "unknown field " + str(k)
        if not _CHECKS[k](new[k]):
            return "bad value for " + k
    return None


def save_calendar(new):
    """Merge a checked calendar change into the settings file in one atomic write (the loader's keys and the other
    metering settings are kept). ValueError when the file holds a bad metering value: the next boot would run on
    the defaults and drop the new calendar with it."""
    try:
        raw = store.read_json(PATH, {})
    except ValueError:
        raw = {}  # unreadable: the loader and metering already run on their defaults
    if not isinstance(raw, dict):
        raw = {}
    raw.update(new)
    for k, check in _CHECKS.items():
        if k in raw and not check(raw[k]):
            raise ValueError("bad value for %s in %s" % (k, PATH))
    store.write_json(PATH, raw)


def load():
    """(settings, problem or None)."""
    return settings.read(DEFAULTS, _CHECKS, PATH)


def zone_at(table, minute):
    """The TOU zone of a minute of the day in a parsed table."""
    zone = table[0][1]
    for start, z in table:
        if start <= minute:
            zone = z
        else:
            break
    return zone
