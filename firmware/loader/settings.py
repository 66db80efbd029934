# The meter's loader settings (meter/config.json, outside the app slots, kept across updates). Missing keys take
# the defaults; a file that does not parse or holds a wrong value is not half-used: the loader runs on the safe
# defaults and records a "config-invalid" event naming the key.
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
    "recovery_relay": lambda v: v in (RELAY_DISCONNECT, RELAY_HOLD),
    "recovery_time_limit_s": lambda v: strict.is_int(v, 60, 86400),
    "relay_pulse_ms": lambda v: strict.is_int(v, 10, 1000),
}


def load():
    """The settings (a dict with every key of DEFAULTS) and the problem found, or None."""
    try:
        raw = store.read_json(PATH, {})
    except ValueError:
        return dict(DEFAULTS), "does not parse"
    if not isinstance(raw, dict):
        return dict(DEFAULTS), "not an object"
    out = dict(DEFAULTS)
    for k, v in raw.items():
        check = _CHECKS.get(k)
        if check is None:
            continue  # settings of the application (issues 5 and 6) live in the same file
        if not check(v):
            return dict(DEFAULTS), "bad value for " + k
        out[k] = v
    return out, None
