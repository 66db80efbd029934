"""Host extras of dlms_get: every object's every attribute, and the selections a real client sends (gurux-dlms
1.0.203's readRowsByEntry and readRowsByRange on an event profile), with variants the model refuses."""

from __future__ import annotations

from collections.abc import Iterator

# gurux's entry descriptor {from entry, to entry, from column, to column} and range descriptor {the clock, from, to,
# all columns} (local date-times of 2025-12-01 05:30 and 08:00 at the meter's +330 minutes)
ENTRY = bytes.fromhex("0204060000000206000000031200011200 00".replace(" ", ""))
CLOCK = bytes.fromhex("020412000809060000010000ff0f02120000")
RANGE = (b"\x02\x04" + CLOCK + b"\x09\x0c" + bytes.fromhex("07e90c0101051e0000ff8000") + b"\x09\x0c"
         + bytes.fromhex("07e90c0101080000 00ff8000".replace(" ", "")) + b"\x01\x00")


# the probe meter's names(): 20 registers, demand, clock, name, the instantaneous and scaler profiles (23, 24), the
# name plate and its 5 items (25-30), disconnect (31), the limiter and the prepaid data (32-39), the event profiles
# (40-46), their last-event codes and scaler profile, the alert push setup (55), the load profiles (the daily one 57)
# and their registers, the associations (68-71); from 63 on reached by their names: index 63 takes a name from the
# input (host_tests/fuzz/test_targets.py checks these against the probe's names)
PROFILES = range(40, 47)
POWER = 42  # 0.0.99.98.2.255
DAILY = 57  # 1.0.99.2.0.255
# the probe meter's names from 63 on, {class, name}: the block load registers, the billing period's power factor, the
# associations
BY_NAME = ((3, "1.0.11.27.0.255"), (3, "1.0.1.29.0.255"), (3, "1.0.9.29.0.255"), (3, "1.0.2.29.0.255"),
           (3, "1.0.13.0.0.255"), (15, "0.0.40.0.0.255"), (15, "0.0.40.0.1.255"), (15, "0.0.40.0.2.255"),
           (15, "0.0.40.0.3.255"))


def seeds() -> Iterator[bytes]:
    for k in range(63):
        for attr in (1, 2, 3, 7, 8):
            yield bytes((k, attr))
    for cls, name in BY_NAME:
        for attr in (1, 2, 3, 7, 8):
            yield bytes((0x40 | 63,)) + bytes(int(b) for b in name.split(".")) + bytes((cls, attr))
    for k in PROFILES:
        yield bytes((0x80 | k, 2, 2)) + ENTRY
        yield bytes((0x80 | k, 2, 1)) + RANGE
    yield bytes((0x80 | POWER, 2, 2)) + ENTRY[:-6] + b"\x12\x00\x02\x12\x00\x02"  # the code column only
    yield bytes((0x80 | POWER, 2, 1)) + RANGE[:-2] + b"\x01\x01\x02\x04"  # columns asked for by range: refused
    yield bytes((0x80 | POWER, 2, 3)) + ENTRY  # selector 3
    yield bytes((0x80 | 0, 2, 2)) + ENTRY  # a register with selective access
    yield bytes((0x80 | 23, 2, 2)) + ENTRY  # the instantaneous profile: no selective access
    yield bytes((0x80 | DAILY, 2, 2)) + ENTRY  # the daily load profile (no rows here) by entry
    yield bytes((0xC0 | POWER, 1, 2))  # a profile's name under class 1
    yield bytes((63,)) + bytes.fromhex("0000636200ff") + b"\x02"  # a category the meter does not have
