# The names both app/dlms_objects.py and app/dlms_profiles.py use (profiles, their capture objects) and the COSEM
# date-time, in a module of their own so that neither imports the other (dlms_objects imports dlms_profiles for one
# read at a time). IS 15959-2's names (STANDARDS.md).
import time

from micropython import const

from app import cosem, registers
from loader import wallclock

_CATEGORIES = const(7)  # IS 15959's event categories: 0 voltage ... 6 control
_NOT_SPECIFIED = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\x01"  # a date-time nobody knows: status invalid

CLOCK = cosem.obis("0.0.1.0.0.255")
MAX_DEMAND = cosem.obis(registers.MD_OBIS)
EVENT_LOGS = tuple(cosem.obis("0.0.99.98.%d.255" % k) for k in range(_CATEGORIES))
LAST_EVENT = tuple(cosem.obis("0.0.96.11.%d.255" % k) for k in range(_CATEGORIES))
INSTANT_PROFILE = cosem.obis("1.0.94.91.0.255")  # IS 15959's instantaneous profile: one row, taken when read
SCALER_PROFILE = cosem.obis("1.0.94.91.3.255")  # and its scaler profile: the same registers' scalers and units
EVENT_SCALERS = cosem.obis("1.0.94.91.7.255")  # the event profiles' scaler profile: their registers' scalers, units
# the event profiles' columns after the clock and the code: the registers IS 15959 captures at each event, in its
# order (current, voltage, power factor, import energy)
EVENT_SNAPSHOT = tuple(cosem.obis(c) for c in ("1.0.11.7.0.255", "1.0.12.7.0.255", "1.0.13.7.0.255", "1.0.1.8.0.255"))
# IS 15959's stored profiles (app/dlms_load.py, on the heap for a read only): the block load, daily load and billing
# profiles (their buffers first: SELECTIVE bytes of them, the ones with selective access) and their scaler profiles,
# then the block load registers and the billing period's average power factor; six bytes each, in one bytes object
# apiece, as the session holds them
LOAD_PROFILES = (b"\x01\x00\x63\x01\x00\xff\x01\x00\x63\x02\x00\xff"  # 1.0.99.1.0.255, 1.0.99.2.0.255
                 b"\x01\x00\x62\x01\x00\xff"  # 1.0.98.1.0.255
                 b"\x01\x00\x5e\x5b\x04\xff\x01\x00\x5e\x5b\x05\xff"  # 1.0.94.91.4.255, 1.0.94.91.5.255
                 b"\x01\x00\x5e\x5b\x06\xff")  # 1.0.94.91.6.255
SELECTIVE = const(18)
LOAD_REGISTERS = (b"\x01\x00\x0c\x1b\x00\xff\x01\x00\x0b\x1b\x00\xff"  # 1.0.12.27.0.255, 1.0.11.27.0.255
                  b"\x01\x00\x01\x1d\x00\xff\x01\x00\x09\x1d\x00\xff\x01\x00\x02\x1d\x00\xff"  # 1.0.1/9/2.29.0.255
                  b"\x01\x00\x0d\x00\x00\xff")  # 1.0.13.0.0.255
ASSOCIATION = cosem.obis("0.0.40.0.0.255")  # the current association
PUBLIC_ASSOCIATION = cosem.obis("0.0.40.0.1.255")  # IS 15959's names: the public client's association
READER_ASSOCIATION = cosem.obis("0.0.40.0.2.255")  # the meter reader's
UTILITY_ASSOCIATION = cosem.obis("0.0.40.0.3.255")  # and the utility settings'
NAME_PLATE = cosem.obis("0.0.94.91.10.255")  # IS 15959's name plate details: one row of the items below
# the name plate's items (class 1, octet-strings), in IS 15959's order: serial number (the meter id), device id (FLAG
# and the serial number, as IS 15959 meters give it: what an alert push names the meter by), manufacturer, firmware
# version, current rating
PLATE_ITEMS = tuple(cosem.obis(c) for c in ("0.0.96.1.0.255", "0.0.96.1.2.255", "0.0.96.1.1.255", "1.0.0.2.0.255",
                                             "0.0.94.91.12.255"))
FLAG = b"MKT"  # the manufacturer's three-letter FLAG id (IS 15959): the logical device name's and the device id's start
PUSH_SETUP = b"\x00\x04\x19\x09\x00\xff"  # IS 15959's alert push setup, 0.4.25.9.0.255 (class 40: app/dlms_push.py)


def date_time(rtc, tz_offset_min):
    """A COSEM date-time (12 octets) of RTC seconds (UTC) in local time; deviation not specified (0x8000), as
    IS 15959 meters send it; status 0. None gives the not-specified value with status invalid."""
    if rtc is None:
        return _NOT_SPECIFIED
    t = time.gmtime(rtc + tz_offset_min * 60 - wallclock.PORT_EPOCH_S)
    return bytes((t[0] >> 8, t[0] & 0xFF, t[1], t[2], t[6] + 1, t[3], t[4], t[5], 0, 0x80, 0x00, 0))


def among(names, obis):
    """Whether `obis` is one of the six-byte names packed in `names`."""
    k = names.find(obis)
    return len(obis) == 6 and k >= 0 and k % 6 == 0
