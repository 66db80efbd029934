# The supply's COSEM objects (app/dlms_objects.py hands them here; this module is on the heap only while one of them
# is read), over what app/supply.py keeps, read-only as the rest of the model:
# - the limiter (class 71, 0.0.17.0.0.255): app/load_limit.py's settings. It watches active power (1.0.1.7.0.255,
#   attribute 2, W); its threshold is the limit in W (0: no limit, the meter's setting for "off"); the power must be
#   above it for min_over_threshold_duration (the settings' over_s) to trip the supply, and the supply comes back after
#   min_under_threshold_duration (lockout_s) unless the trips lock it. There is no emergency profile (its threshold
#   is the normal one). Its actions name the disconnect control's script table (0.0.10.0.106.255, IS 15959's name)
#   with selector 1 (disconnect) and 2 (reconnect): what the meter does, through its class-70 engine; the meter has no
#   script table object of its own.
# - the clock's time and time zone (class 8, 0.0.1.0.0.255, attributes 2 and 3): read in app/dlms_objects.py, set
#   here (put): the time as the signed clock command sets it, the zone as the signed calendar command sets the
#   metering calendar's offset.
# - IS 15959's prepaid data (class 1, 0.0.94.96.19-25.255): the metering mode (0: import only; the balance is charged
#   for imported energy, export is registered and not credited), the payment mode (1 prepaid: the meter has a tariff;
#   0 postpaid), and the ledger's money in its minor units (paise): the last recharge's amount, when it was applied,
#   the balance right after it, the current balance (negative inside the allowance or with emergency credit taken) and
#   its time (the last reading's, when the balance was last charged). A damaged credit record (the balance not known,
#   top-ups refused until the head-end's reset: app/credit_store.py) answers temporary-failure for the money.
from micropython import const

from app import cosem, supply_settings
from app.dlms_names import date_time

_TEMPORARY_FAILURE = const(2)
_IMPORT_ONLY = const(0)
_POWER = b"\x02\x03\x12\x00\x03\x09\x06\x01\x00\x01\x07\x00\xff\x0f\x02"  # {class 3, 1.0.1.7.0.255, attribute 2}
_SCRIPTS = b"\x09\x06\x00\x00\x0a\x00\x6a\xff"  # 0.0.10.0.106.255, the disconnect control's script table
# attribute 8, emergency_profile: {id 0, activation time not specified, duration 0}; 9: no group ids; 10: not active
_NO_EMERGENCY = b"\x02\x03\x12\x00\x00\x09\x0c\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\x01\x06\x00\x00\x00\x00"
_NO_GROUPS = b"\x01\x00"
_NOT_ACTIVE = b"\x03\x00"


def _money(v):
    return cosem.number(cosem.DOUBLE_LONG, max(-0x80000000, min(0x7FFFFFFF, v)))  # clamped, never wrapped


def get(objects, cls, obis, attr):
    """What app/dlms_objects.py Objects.get hands here: a known object of the supply's, the limiter (class 71) or a
    prepaid one (attribute 1 and the access rights answered there)."""
    supply = objects.supply
    if cls == 71:
        return _limiter(supply.limit.conf, attr)
    if attr != 2:
        return cosem.READ_WRITE_DENIED
    k = obis[4] - 19  # 0.0.94.96.19.255, metering mode ... 25, the current balance's time
    if k == 0:
        return cosem.number(cosem.UNSIGNED, _IMPORT_ONLY)
    if k == 1:
        return cosem.number(cosem.UNSIGNED, 0 if supply.prepaid is None else 1)
    store = supply.store
    if store.problem is not None:
        return _TEMPORARY_FAILURE
    last = store.last  # [when, the balance after] of the last recharge, None: none since the record began
    if k == 2:
        return _money(store.ledger.topup)
    if k == 3:
        return cosem.octets(date_time(None if last is None else last[0], objects.tz()))
    if k == 4:
        return _money(0 if last is None else last[1])
    if k == 5:
        return _money(store.ledger.balance)
    return cosem.octets(date_time(objects.tick.rtc, objects.tz()))


def put(supply, cls, attr, data, tz):
    """A SET (the utility association's, app/dlms_port.py; `tz` the calendar's offset, minutes east of UTC) of the
    clock's time (class 8 attribute 2, below: _set_clock) or of the limiter: threshold active or normal (3, 4: a
    double-long, W, 0 for no limit; both are the one limit), min over and under threshold duration (6, 7: a
    double-long-unsigned, s). The supply's settings change as the signed SMP command changes them (checked whole,
    written atomically, event 410 "dlms: ..."; a trip in progress carries over; the value it already has: nothing
    written). A data-access-result: 0 done, 2 temporary failure while the settings file does not check (a
    whole new one, the signed SMP command, first), 3 an object or attribute not written here, 12 a value of another
    type, 250 one the settings refuse."""
    if cls == 8 and attr == 2:  # (a known object, app/dlms_hls.py asked first: the meter has one clock, one limiter)
        return _set_clock(supply, data, tz)
    if cls == 8 and attr == 3:
        return _set_zone(supply, data)
    if cls != 71 or attr not in (3, 4, 6, 7):
        return cosem.READ_WRITE_DENIED
    if len(data) != 5 or data[0] != (cosem.DOUBLE_LONG if attr < 6 else cosem.DOUBLE_LONG_UNSIGNED):
        return cosem.TYPE_UNMATCHED
    v = int.from_bytes(data[1:], "big")
    if attr < 6 and v >= 0x80000000:
        return cosem.OTHER_REASON  # a negative limit
    if supply_settings.load()[1] is not None:  # the file does not check and the meter runs on the defaults: one
        return _TEMPORARY_FAILURE  # field written over them would make the defaults the head-end's settings for good
    key = "threshold_w" if attr < 6 else "over_s" if attr == 6 else "lockout_s"
    if supply.limit.conf[key] == v:
        return 0  # as it is: no write, no event
    raw = {k: supply.settings[k] for k in supply_settings.DEFAULTS}  # what the settings file holds
    limit = dict(raw["load_limit"])
    limit[key] = v
    raw["load_limit"] = limit
    try:
        supply.configure(raw, "dlms: ")
    except ValueError:  # supply_settings.SettingsError
        return cosem.OTHER_REASON
    return 0


def _set_clock(supply, data, tz):
    """The clock set from a COSEM date-time (an octet-string of 12), as the signed SMP "clock.set" sets it (event
    151 with the drift; app/clock.py): local time, with its deviation (minutes, UTC = local + deviation) or, not
    specified (0x8000, as IS 15959 meters send it), the calendar's offset; day of week, hundredths and status are not
    read. 12 for another type, 250 for a field not specified, a date that does not exist, or a time outside
    2025-2100."""
    if len(data) != 14 or data[0] != cosem.OCTET_STRING or data[1] != 12:
        return cosem.TYPE_UNMATCHED
    from app import dlms_select  # (Hinnant's civil-date arithmetic: no mktime, which is local time on CPython)

    dt = data[2:]
    dev = (dt[9] << 8) | dt[10]
    if dev != 0x8000:
        dev -= (dev & 0x8000) << 1
        if not -720 <= dev <= 720:
            return cosem.OTHER_REASON
        tz = -dev
    t = dlms_select.rtc(dt, tz)
    back = None if t is None else date_time(t, tz)
    if back is None or back[:3] != dt[:3] or back[5:8] != dt[5:8]:  # a field not specified, Feb 30, 25:00, ...
        return cosem.OTHER_REASON
    try:
        supply.set_clock(t)
    except ValueError:  # outside 2025-2100 (app/clock.py)
        return cosem.OTHER_REASON
    return 0


def _set_zone(supply, data):
    """The clock's time_zone (attribute 3: a long, minutes from local time to UTC, the Blue Book's sign: India -330),
    set as the signed "meter.calendar" command sets the calendar's tz_offset_min: checked, merged into the metering
    settings file in one atomic write, used from the next reading on (the TOU zones, the billing day, local times),
    event 410 "dlms: calendar"; the zone it already has: nothing written. 12 for another type, 250 for a zone the
    calendar refuses (local time more than 14 h ahead of UTC or 12 h behind), 2 while the settings file holds a bad
    metering value (a whole new one, the signed SMP command, first: the next start would drop the zone with it)."""
    from app import events, meter_settings

    if len(data) != 3 or data[0] != cosem.LONG:
        return cosem.TYPE_UNMATCHED
    v = (data[1] << 8) | data[2]
    new = {"tz_offset_min": (v & 0x8000) * 2 - v}  # (-long: the offset east of UTC)
    if meter_settings.check_calendar(new) is not None:
        return cosem.OTHER_REASON
    m = supply.m
    if m.cfg["tz_offset_min"] == new["tz_offset_min"]:
        return 0  # as it is: no write, no event
    try:
        meter_settings.save_calendar(new)
    except ValueError:
        return _TEMPORARY_FAILURE
    m.set_calendar(new)
    supply.log.add(events.SETTINGS_CHANGED, "dlms: calendar")
    return 0


def _limiter(conf, attr):
    if attr == 2:  # monitored_value
        return _POWER
    if 3 <= attr <= 5:  # threshold_active, _normal, _emergency: the monitored value's type, W
        return cosem.number(cosem.DOUBLE_LONG, min(0x7FFFFFFF, conf["threshold_w"]))
    if attr in (6, 7):  # min_over_threshold_duration, min_under_threshold_duration, s
        return cosem.number(cosem.DOUBLE_LONG_UNSIGNED, min(0xFFFFFFFF, conf["over_s" if attr == 6 else "lockout_s"]))
    if attr == 8:
        return _NO_EMERGENCY
    if attr == 9:
        return _NO_GROUPS
    if attr == 10:
        return _NOT_ACTIVE
    if attr == 11:  # actions: over the threshold the script that disconnects, under it the one that reconnects
        return cosem.structure(cosem.structure(_SCRIPTS, cosem.number(cosem.LONG_UNSIGNED, 1)),
                               cosem.structure(_SCRIPTS, cosem.number(cosem.LONG_UNSIGNED, 2)))
    return cosem.READ_WRITE_DENIED
