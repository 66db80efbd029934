# The meter's settings file (meter/config.json, outside the app slots, kept across updates) and the one rule every
# reader of it follows (read): the loader's keys here, metering's in app/meter_settings.py. Missing keys take the
# defaults; a file that does not parse or holds a wrong value for one of a reader's keys is not half-used: that
# reader runs on all its safe defaults and records an event naming the key.
from loader import store, strict

PATH = "meter/config.json"
RELAY_DISCONNECT = "disconnect"  # recovery opens the relay: the loader does not meter, so no free power
RELAY_HOLD = "hold"  # recovery leaves the relay as it is (a utility that prefers supply over billing)
DEFAULTS = {
    "recovery_relay": RELAY_DISCONNECT,
    "recovery_time_limit_s": 600,
    "relay_pulse_ms": 100,
}
_CHECKS = {
    "recovery_relay": lambda v: type(v) is str and v in (RELAY_DISCONNECT, RELAY_HOLD),
    "recovery_time_limit_s": lambda v: strict.is_int(v, 60, 86400),
    "relay_pulse_ms": lambda v: strict.is_int(v, 10, 1000),
}


def load():
    """The loader's settings (a dict with every key of DEFAULTS) and the problem found, or None."""
    return read(DEFAULTS, _CHECKS)


def read(defaults, checks, path=PATH):
    """(settings, problem or None) for one reader of the file. `checks` holds a check for each key the reader owns,
    by type and value (loader/strict.py: 5, 5.0 and True differ); keys it does not own are another reader's and
    left alone. A file that does not parse, is not an object or holds one bad value gives all of `defaults`, never
    a mix (a set of settings nobody wrote, e.g. a TOU table with another time zone). Never raises: a stored setting
    must not make start-up fail in a loop."""
    try:
        raw = store.read_json(path, {})
    except ValueError:
        return dict(defaults), "does not parse"
    if not isinstance(raw, dict):
        return dict(defaults), "not an object"
    out = dict(defaults)
    for k, check in checks.items():
        if k not in raw:
            continue
        try:
            ok = check(raw[k])
        except (TypeError, ValueError):  # a check that meets a value of a type it never expected
            ok = False
        if not ok:
            return dict(defaults), "bad value for " + k
        out[k] = raw[k]
    return out, None
