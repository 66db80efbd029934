# The supply settings: how the disconnect control, the prepaid credit and the load limit behave, in
# meter/supply.json (outside the app slots, so an update keeps them). Written at provisioning or by the head-end's
# signed "supply.config" command, which is checked here whole before anything is written; a file that does not
# check at boot is not half-used: the meter runs on the defaults (credit never disconnects) and records an event.
from app import credit, disconnect, load_limit
from loader import store, strict

PATH = "meter/supply.json"
THRESHOLDS_MAX = 8
AMOUNT_MAX = 100000000  # minor units: a sanity bound for allowances and emergency credit (1,000,000.00)
DEFAULTS = {  # type: dict
    "control_mode": disconnect.DEFAULT_MODE,
    "tariff": None,  # None: the meter keeps no credit (postpaid); the relay follows remote commands only
    "windows": {},  # no-disconnection windows: {"daily": [["18:00", "08:00"]], "weekdays": [6], "holidays": [..]}
    "allowance": 0,  # the balance may go this far below zero before credit disconnects
    "thresholds": [30, 10, 0],  # credit alerts, percent of the last top-up
    "emergency": 0,  # emergency credit the consumer may take once until the next top-up (0: none)
    "load_limit": {},  # load_limit.DEFAULTS (threshold 0 W: off)
}


class SettingsError(ValueError):
    pass


def _amount(v, what):
    if not strict.is_int(v, 0, AMOUNT_MAX):
        raise SettingsError("bad value for " + what)
    return v


def parse(raw):
    """The settings with their parsed forms ("tariff_p", "windows_p", "limit_p"), or SettingsError naming the first
    bad field. Missing keys take the defaults; unknown keys are refused (a typo must not pass silently)."""
    if not isinstance(raw, dict):
        raise SettingsError("supply settings are not an object")
    for k in raw:
        if k not in DEFAULTS:
            raise SettingsError("unknown supply setting " + str(k))
    out = dict(DEFAULTS)
    out.update(raw)
    if not strict.is_int(out["control_mode"], 0, 6):  # 5.0 and True are not modes (loader/strict.py)
        raise SettingsError("bad value for control_mode")
    try:
        tariff = None if out["tariff"] is None else credit.parse_tariff(out["tariff"])
        windows = credit.parse_windows(out["windows"])
        limit = load_limit.parse(out["load_limit"])
    except ValueError as e:
        raise SettingsError(str(e)) from None
    _amount(out["allowance"], "allowance")
    _amount(out["emergency"], "emergency")
    th = out["thresholds"]
    if type(th) is not list or len(th) > THRESHOLDS_MAX or not all(strict.is_int(p, 0, 100) for p in th):
        raise SettingsError("bad value for thresholds")
    out["tariff_p"] = tariff
    out["windows_p"] = windows
    out["limit_p"] = limit
    return out


def load():
    """(settings, problem or None)."""
    try:
        return parse(store.read_json(PATH, {})), None
    except ValueError as e:
        return parse({}), "supply settings: " + str(e)


def save(raw):
    """Check `raw` whole, then replace the file atomically; returns the parsed settings. Raises SettingsError."""
    parsed = parse(raw)
    store.write_json(PATH, raw)
    return parsed
