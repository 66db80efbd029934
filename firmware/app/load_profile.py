# IS 15959's stored profiles in flash: the block load profile, a row per demand period (app/registers.py closes it:
# its end, average voltage and current, and the import, apparent and export energy in it), in a file per UTC day
# under meter/load, 12 days' files kept; the daily load profile, a row per local day (its midnight and the import,
# apparent and export registers then), in a file per 32 days under meter/daily, 3 files kept (at least 64 days); and
# the billing profile, a row per billing period (a calendar month: app/metering.py's monthly billing reset), in a file
# per 366 days under meter/billing, 2 files kept (at least 12 months; IS 15959 asks for 6; app/billing.py closes a
# period). On the heap only for one write or one read (app/metering.py, app/meter_group.py and app/dlms_load.py import
# it and forget it after); the billing reset's code is a module of its own, so a row's write or read does not carry it.
#
# Power cuts: a row is appended whole with its CRC-32. littlefs keeps a file as it was at its last close, so a cut in
# a write loses that row only; a row whose CRC fails (damage) and a trailing part row are skipped by every reader,
# never read as figures, and the next row after a part one is put where a row starts. Flash: one append per row (a
# block row at 15 min: 96 a day into one 2.5 KB file) and a file removed a day; host_tests/bench/load_profile_wear.py
# gives the 15-year figure.
import binascii
import os
import struct

from micropython import const

_DAY = const(86400)
_CHUNK = const(256)  # bytes of rows read at a time, at most 8 rows: 8 block or daily, 2 billing rows
_PAGE = const(16)  # rows per SMP answer at most (an SMP frame of about 0.6 KB)
_BILLING_PAGE = const(4)  # a billing row's 14 figures: 4 a page keep an answer near 0.5 KB too
_LIMITS = {"H": 0xFFFF, "I": 0xFFFFFFFF, "Q": 0xFFFFFFFFFFFFFFFF}


class Kind:
    """One stored profile: its folder, row format (the first field the row's time, RTC s), the seconds a file spans
    and the files kept."""

    def __init__(self, folder, fmt, span, keep):
        self.dir = folder
        self.fmt = fmt
        self.body = struct.calcsize(fmt)
        self.size = self.body + 4  # and the CRC-32
        self.span = span
        self.keep = keep

    def path(self, key):
        return self.dir + "/" + str(key)


# end (RTC s), average V (0.01 V), average I (mA), import Wh, apparent VAh, export Wh in the period (milli-units)
BLOCK = Kind("meter/load", "<IHIIII", _DAY, 12)  # IS 15959 asks for at least 10 days
# local midnight (RTC s), then the import Wh, apparent VAh and export Wh registers (milli-units)
DAILY = Kind("meter/daily", "<IQQQ", 32 * _DAY, 3)  # at least 64 days: IS 15959 asks for 60
# the billing date: the billing period's end (local midnight of a month's first day, RTC s); the period's average
# power factor (thousandths: import over apparent energy in it; 0 not known); then at its end the import Wh register,
# import by TOU zone 1-8, apparent VAh, export Wh (milli-units), the period's maximum demand (W) and when it was set
# (RTC s; 0 not known)
BILLING = Kind("meter/billing", "<IH" + "Q" * 11 + "II", 366 * _DAY, 2)
DIR = BLOCK.dir
DAYS = BLOCK.keep
SIZE = BLOCK.size


def pack(row, kind=BLOCK):
    """A row's bytes with their CRC; each figure clamped to its field (a damaged front end's figure: the field's
    limit, never a wrapped number)."""
    body = struct.pack(kind.fmt, *[min(max(0, int(v)), _LIMITS[kind.fmt[k + 1]]) for k, v in enumerate(row)])
    return body + struct.pack("<I", binascii.crc32(body) & 0xFFFFFFFF)


def unpack(data, kind=BLOCK):
    """The row in `data`, or None when its CRC fails."""
    b = kind.body
    if len(data) != kind.size or struct.unpack("<I", data[b:])[0] != binascii.crc32(data[:b]) & 0xFFFFFFFF:
        return None
    return struct.unpack(kind.fmt, data[:b])


def capture(row, kind=BLOCK):
    """Append `row` to its file; a new file's first row removes the files past those kept. OSError when the flash
    refuses (full: the caller records the row lost)."""
    key = row[0] // kind.span
    try:
        os.mkdir(kind.dir)
    except OSError:
        pass  # there already
    size = _size(kind, key)
    if size is None:  # a new file: first the oldest go, so that it and the keep - 1 newest before it are left, and
        # any later than it (stamped by a clock set back since); by count, not age, so a clock set a year ahead for one
        # row costs the profile no day. A full flash then has room for the row.
        held = keys(kind)
        older = [k for k in held if k < key]
        for k in older[:max(0, len(older) - kind.keep + 1)] + [k for k in held if k > key]:
            try:
                os.remove(kind.path(k))
            except OSError:
                pass  # tried again at the next new file
    with open(kind.path(key), "ab") as f:
        if size and size % kind.size:  # a part row at the end (damage): filled out, so this row starts where rows do
            f.write(bytes(kind.size - size % kind.size))
        f.write(pack(row, kind))


def block(row):
    """The block load profile takes a closed period's row (app/registers.py `closed`)."""
    capture(row, BLOCK)


def daily(row, first):
    """The daily load profile takes a local day's row at its first reading; at the first reading after a start
    (`first`) only when the profile has no row for that day yet (the meter was off at midnight: the registers stood
    still since, so the row is the midnight's)."""
    if first:
        newest = last(DAILY)
        if newest is not None and newest[0] >= row[0]:
            return
    capture(row, DAILY)


def billing(row):
    """The billing profile takes a billing period's row (app/metering.py); not again when its newest row is as late
    (a power cut after the row went in and before the registers said so: the reset runs again, the row does not)."""
    newest = last(BILLING)
    if newest is None or newest[0] < row[0]:
        capture(row, BILLING)


def keys(kind=BLOCK):
    """The files' keys (day numbers for the block profile), oldest first; a name that is not a number is not the
    profile's."""
    try:
        names = os.listdir(kind.dir)
    except OSError:
        return []
    return sorted(int(n) for n in names if n.isdigit())


days = keys


def _size(kind, key):
    try:
        return os.stat(kind.path(key))[6]
    except OSError:
        return None


def count(kind=BLOCK):
    """Rows held (entries_in_use): the files' whole rows, a damaged one among them (read as None: see rows)."""
    return sum((_size(kind, k) or 0) // kind.size for k in keys(kind))


def rows(lo=None, hi=None, kind=BLOCK, skip=0):
    """The rows, oldest file first and each as written. Without bounds every row held, a damaged one as None (so
    that entry k is the k-th row held, as count() counts them), after the first `skip` (found by the files' sizes,
    not read); with bounds (RTC s, both included) the readable rows whose time lies in them. Read _CHUNK bytes of rows
    at a time (8 block or daily, 2 billing rows), no file held open between them (a DLMS
    read in blocks takes them over many requests)."""
    size = kind.size
    chunk = min(8, _CHUNK // size)
    buf = bytearray(size * chunk)
    span = kind.span
    whole = lo is None and hi is None
    for key in keys(kind):
        if (lo is not None and (key + 1) * span <= lo) or (hi is not None and key * span > hi):
            continue
        n = 0
        if skip:
            held = (_size(kind, key) or 0) // size
            if skip >= held:
                skip -= held
                continue
            n, skip = skip, 0
        while True:
            try:
                with open(kind.path(key), "rb") as f:
                    f.seek(n * size)
                    got = f.readinto(buf) // size
            except OSError:
                break  # removed meanwhile (a new file's prune)
            for i in range(got):
                row = unpack(buf[i * size:(i + 1) * size], kind)
                if row is None:
                    if whole:
                        yield None
                elif (lo is None or row[0] >= lo) and (hi is None or row[0] <= hi):
                    yield row
            if got < chunk:
                break
            n += got


def last(kind=BLOCK):
    """The newest readable row: the last of the newest file that has one (a file whose rows are all damaged does not
    hide the row before it, which the guards of daily and billing go by), or None."""
    for key in reversed(keys(kind)):
        newest = None
        for row in rows(key * kind.span, (key + 1) * kind.span - 1, kind):
            newest = row
        if newest is not None:
            return newest
    return None


def page(req, bad_request):
    """SMP group 65 command 3 (app/meter_group.py): {kind: "block"|"daily"|"billing", since: RTC s (rows stamped later;
    0 all), limit: 1-16} -> {kind, held, rows, more}: the readable rows oldest first, each its time then its integer
    figures (billing rows: at most 4 a page, whatever the limit), `held` the rows in flash (a damaged one counted),
    `more` whether rows after the last sent are held. A request of another shape: EINVAL with the group's
    `bad_request` code."""
    from loader import smp, strict

    kind = req.get("kind")
    since = req.get("since", 0)
    limit = req.get("limit", _PAGE)
    if type(kind) is not str or kind not in ("block", "daily", "billing") or not strict.is_int(since, 0, 0xFFFFFFFF) \
            or not strict.is_int(limit, 1, _PAGE):
        raise smp.SmpError(smp.EINVAL, bad_request)
    k = BLOCK if kind == "block" else DAILY if kind == "daily" else BILLING
    if k is BILLING:
        limit = min(limit, _BILLING_PAGE)
    out = []  # type: list
    more = False
    for row in rows(since + 1, None, k):
        if len(out) == limit:
            more = True
            break
        out.append(list(row))
    return {"kind": kind, "held": count(k), "rows": out, "more": more}
