# IS 15959's block load profile in flash: a row per demand period (app/registers.py closes it: its end, average
# voltage and current, and the import, apparent and export energy in it), in a file per UTC day under meter/load
# (named by the day's number), kept for DAYS days. On the heap only for one write or one read (app/metering.py and
# app/dlms_profiles.py import it and forget it after).
#
# Power cuts: a row is appended whole with its CRC-32. littlefs keeps a file as it was at its last close, so a cut in
# a write loses that row only; a row whose CRC fails (damage) and a trailing part row are skipped by every reader,
# never read as figures, and the next row after a part one is put where a row starts. Flash: one append per period
# (at 15 min, 96 a day into one 2.5 KB file) and a file removed a day; host_tests/bench/load_profile_wear.py gives
# the 15-year figure.
import binascii
import os
import struct

from micropython import const

DIR = "meter/load"
DAYS = const(12)  # days kept: IS 15959 asks for at least 10 days of block load profile
_ROW = "<IHIIII"  # end (RTC s), average V (0.01 V), average I (mA), import Wh, apparent VAh, export Wh (milli-units)
_BODY = const(22)
SIZE = const(26)  # a row and its CRC-32
_LIMITS = (0xFFFFFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)


def _path(day):
    return DIR + "/" + str(day)


def pack(row):
    """A row's 26 bytes; each figure clamped to its field (a damaged front end's figure: the field's limit, never a
    wrapped number)."""
    body = struct.pack(_ROW, *[min(max(0, int(v)), _LIMITS[k]) for k, v in enumerate(row)])
    return body + struct.pack("<I", binascii.crc32(body) & 0xFFFFFFFF)


def unpack(data):
    """The row in 26 bytes, or None when its CRC fails."""
    if len(data) != SIZE or struct.unpack("<I", data[_BODY:])[0] != binascii.crc32(data[:_BODY]) & 0xFFFFFFFF:
        return None
    return struct.unpack(_ROW, data[:_BODY])


def capture(row):
    """Append `row` (app/registers.py's `closed`) to its day's file; a new day's first row removes the files older
    than DAYS. OSError when the flash refuses (full: the caller records the row lost)."""
    day = row[0] // 86400
    try:
        os.mkdir(DIR)
    except OSError:
        pass  # there already
    size = _size(day)
    with open(_path(day), "ab") as f:
        if size and size % SIZE:  # a part row at the end (damage): filled out, so this row starts where rows do
            f.write(bytes(SIZE - size % SIZE))
        f.write(pack(row))
    if size is None:
        for d in days():
            if d <= day - DAYS:
                os.remove(_path(d))


def days():
    """The day numbers that have a file, oldest first (a name that is not a day's number is not the profile's)."""
    try:
        names = os.listdir(DIR)
    except OSError:
        return []
    return sorted(int(n) for n in names if n.isdigit())


def _size(day):
    try:
        return os.stat(_path(day))[6]
    except OSError:
        return None


def count():
    """Rows held (entries_in_use): whole rows in the files, a damaged one among them included."""
    return sum((_size(d) or 0) // SIZE for d in days())


def rows(lo=None, hi=None):
    """The rows whose end lies in [lo, hi] (RTC s; None: no bound), in file order (oldest day first, each day as
    written), one at a time: a read of 26 bytes per row, no file held open between rows (a DLMS read in blocks
    takes them over many requests)."""
    buf = bytearray(SIZE)
    for d in days():
        if (lo is not None and (d + 1) * 86400 <= lo) or (hi is not None and d * 86400 > hi):
            continue
        k = 0
        while True:
            try:
                with open(_path(d), "rb") as f:
                    f.seek(k * SIZE)
                    n = f.readinto(buf)
            except OSError:
                break  # removed meanwhile (a new day's prune)
            if n != SIZE:
                break
            k += 1
            row = unpack(buf)
            if row is not None and (lo is None or row[0] >= lo) and (hi is None or row[0] <= hi):
                yield row
