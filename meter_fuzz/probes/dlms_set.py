"""The utility association's SET (app/dlms_supply.py `put`, as app/dlms_port.py's Port.put hands it every SET that a
held, authenticated and ciphered utility association brings: the `dlms_utility` target reaches that far and stops),
over a running development meter's own supply and metering on its own files (built as app/main.py builds them:
smp_dispatch_dev's Meter, in a scratch folder of its own): the clock's time and time zone, the limiter's threshold
and its durations, and objects and attributes it does not write.

Input: up to 8 records `[sel][u8 n][n bytes]` (n past the input's end takes what is left), put one after the other
on the same meter. sel bits 0-2 pick the (class, attribute) from TARGETS; bit 3 set, the probe types the value: the
attribute's own A-XDR tag (and, for the clock's octet-string, its length 12), then the record's bytes, cut or padded
with zeros to the type's size, so that the value's own checks are reached; clear, the record's bytes are the data as
sent (any tag, any length).

put() documents no exception (a refusal is a data-access-result): ERRORS names one it never raises. Invariants
(fuzzcore.Violation):
- the result is one put documents: 0 done, 2 temporary failure, 3 not written here, 12 another type, 250 refused;
- a SET answered anything but 0 changes no file of the meter's;
- after every SET the files a start reads load without a problem: the metering settings (meter/config.json) and the
  supply's (meter/supply.json) check, so the next start does not fall back to the defaults (event 411) — **no
  setting persisted that makes start-up fail or fall back**;
- a limiter SET answered 0 leaves the supply's limit the value sent (the next reading acts on it), and a time-zone
  SET answered 0 leaves the metering's offset and the settings file's the value sent (minutes east: the negation).
Each input starts from the meter's template (its files and objects as its first start left them) when the one
before it changed anything."""

import smp_dispatch_dev as dev
from fuzzcore import check

from app import cosem, dlms_supply, meter_settings, supply_settings


class NoError(Exception):
    """Never raised: put documents no exception for any SET."""


ERRORS = (NoError,)
MODULES = ("app/dlms_supply.py", "app/supply_settings.py", "app/meter_settings.py", "app/clock.py")
MEM_BASE = 512 * 1024  # (the meter's objects are built in the traced window after an input that changed them)
MEM_PER_BYTE = 256
MAX_RECORDS = 8
# (class, attribute): the clock's time and time zone, the limiter's threshold active and normal, emergency (not
# written), the durations, then objects put does not write: the limiter's monitored value, a data object
TARGETS = ((8, 2), (8, 3), (71, 3), (71, 4), (71, 5), (71, 6), (71, 7), (1, 2))
# the typed value's (tag, size) per (class, attribute): a date-time (octet-string of 12), a long, a double-long, a
# double-long-unsigned
_TYPES = {(8, 2): (cosem.OCTET_STRING, 12), (8, 3): (cosem.LONG, 2), (71, 3): (cosem.DOUBLE_LONG, 4),
          (71, 4): (cosem.DOUBLE_LONG, 4), (71, 5): (cosem.DOUBLE_LONG, 4), (71, 6): (cosem.DOUBLE_LONG_UNSIGNED, 4),
          (71, 7): (cosem.DOUBLE_LONG_UNSIGNED, 4)}
_RESULTS = (0, 2, 3, 12, 250)
_LIMIT_KEYS = {3: "threshold_w", 4: "threshold_w", 6: "over_s", 7: "lockout_s"}
METER = dev.Meter("dlms_set", dev.MODE, dev.TRUST, ())


def setup():
    METER.setup()
    check(meter_settings.load()[1] is None and supply_settings.load()[1] is None,
          "the template's settings files do not load clean")


def records(data):
    """The input's (sel, bytes) records."""
    out = []
    i = 0
    n = len(data)
    while i < n and len(out) < MAX_RECORDS:
        sel = data[i]
        k = data[i + 1] if i + 1 < n else 0
        out.append((sel, bytes(data[i + 2:i + 2 + k])))
        i += 2 + k
    return out


def value(sel, raw):
    """The SET's data: the record's bytes as they are, or typed by the probe (sel bit 3)."""
    target = TARGETS[sel & 7]
    typed = _TYPES.get(target)
    if not sel & 8 or typed is None:
        return raw
    tag, size = typed
    body = (raw + bytes(size))[:size]
    return bytes((tag, size)) + body if tag == cosem.OCTET_STRING else bytes((tag,)) + body


def run(data):
    m = METER
    if m.template is None:
        m.setup()
    dev.os.chdir(m.base)
    if m.dirty or m.stale:
        m.fresh()
    out = []
    try:
        for sel, raw in records(data):
            cls, attr = TARGETS[sel & 7]
            d = value(sel, raw)
            before = dev._snapshot(".")
            r = dlms_supply.put(m.supply, cls, attr, d, m.metering.cfg["tz_offset_min"])
            check(r in _RESULTS, "put answered %r, no result it documents" % (r,))
            after = dev._snapshot(".")
            if after != before:
                m.dirty = True
            if r != 0:
                check(after == before, "a SET answered %d changed the meter's files: %r" % (
                    r, sorted(p for p in after if after.get(p) != before.get(p))[:4]))
            check(meter_settings.load()[1] is None, "a SET left meter/config.json that the next start would "
                                                    "not use: %r" % (meter_settings.load()[1],))
            check(supply_settings.load()[1] is None, "a SET left meter/supply.json that the next start would "
                                                     "not use: %r" % (supply_settings.load()[1],))
            if r == 0:
                _as_sent(m, cls, attr, d)
            out.append(r)
    finally:
        if m.dirty:
            m.stale = True
    return out


def _as_sent(m, cls, attr, d):
    v = int.from_bytes(d[1:], "big")
    if cls == 71:
        got = m.supply.limit.conf[_LIMIT_KEYS[attr]]
        check(got == v, "the limiter's %s is %r after a SET of %d" % (_LIMIT_KEYS[attr], got, v))
    elif (cls, attr) == (8, 3):
        east = (v & 0x8000) * 2 - v
        check(m.metering.cfg["tz_offset_min"] == east, "the metering's offset is %r after a SET of %d" % (
            m.metering.cfg["tz_offset_min"], east))
        check(meter_settings.load()[0]["tz_offset_min"] == east, "the settings file's offset is not the one SET")
