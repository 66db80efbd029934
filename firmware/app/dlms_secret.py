# The DLMS meter reader's secret (IS 15959's meter reader association, client SAP 32, low-level security: the
# client sends the secret itself in its AARQ, app/cosem.py). The meter keeps only digest(meter id, secret), a SHA-256
# salted with its own id (a flash dump gives a hash to guess against that fits no other meter), in a file of its own
# (32 bytes, written whole by write-then-rename), set and cleared by a signed "dlms.reader" command (SMP group 66
# command 9, app/supply_group.py). No file: no meter reader association (nobody reads the load profiles over DLMS).
# A file of another size is no secret either: nothing authenticates against it, and nothing at start-up reads it
# (a session's AARQ does), so it can never stop the meter starting.
#
# Guessing: the third wrong secret in a row locks the meter reader out (every AARQ refused unchecked) for 10 minutes,
# each further lock without a right secret in between twice as long, up to a day; one event (420) per lock. The count
# of wrong secrets and of locks is on flash (TRIES_PATH, written at each wrong secret and when a lock ends), so a
# restart or a power cut does not lift a lock: a meter that starts locked serves the whole lock again from its first
# AARQ. On the heap for one AARQ or one command at a time.
import hashlib
import time

from micropython import const

from loader import store

PATH = "meter/dlms-reader.bin"
TRIES_PATH = "meter/dlms-reader-tries"  # 2 bytes: wrong secrets in a row, locks in a row
SIZE = 32  # bytes of a SHA-256
_TRIES = const(3)  # wrong secrets in a row before a lock
_LOCK_MS = const(600000)  # the first lock; each next one twice as long, up to _LOCK_MAX_MS
_LOCK_MAX_MS = const(86400000)


def digest(meter_id, secret):
    """What the meter keeps of the secret: SHA-256 of its id (UTF-8), a zero byte and the secret (ota_tool/supply.py
    reader_digest computes the same)."""
    return hashlib.sha256(meter_id.encode() + b"\x00" + secret).digest()


def matches(meter_id, secret):
    """Whether `secret` (bytes) is the meter reader's: its digest against the stored one, every byte compared
    whatever the first difference (no timing tells how much of a guess was right)."""
    want = store.read_bytes(PATH)
    if want is None or len(want) != SIZE:
        return False
    got = digest(meter_id, secret)
    diff = 0
    for k in range(SIZE):
        diff |= got[k] ^ want[k]
    return diff == 0


def is_set():
    """Whether a meter reader's secret is stored (a file of the right size)."""
    want = store.read_bytes(PATH)
    return want is not None and len(want) == SIZE


def save(ctx, stored):
    """Store the secret's digest (32 bytes), or clear it (None). A power cut leaves the old file or the new one. The
    guessing count starts again."""
    import os

    if stored is None:
        try:
            os.remove(PATH)
        except OSError:  # none stored
            pass
    else:
        store.write_atomic(PATH, stored)
    ctx.reader_tries = [0, 0, None]
    _keep(0, 0)


def lock_ms(locks):
    """How long lock number `locks` (1, 2, ...) lasts."""
    return min(_LOCK_MS << min(max(locks, 1) - 1, 8), _LOCK_MAX_MS)


def check(ctx, log, secret):
    """Whether `secret` is the meter reader's, the lock against guessing applied (ctx.reader_tries: [wrong secrets in
    a row, locks in a row, ticks ms the lock ends or None], from TRIES_PATH at the first check after a start); a lock
    is event 420 in `log` (None: none kept)."""
    g = getattr(ctx, "reader_tries", None)
    now = time.ticks_ms()
    if g is None:
        raw = store.read_bytes(TRIES_PATH)
        wrong, locks = (raw[0], raw[1]) if raw is not None and len(raw) == 2 else (0, 0)
        # a meter that stopped while locked serves the whole lock again (a restart lifts nothing)
        g = ctx.reader_tries = [wrong, locks, time.ticks_add(now, lock_ms(locks)) if wrong >= _TRIES and locks
                                else None]
    if g[2] is not None:
        # locked while the lock's end is ahead, and never further ahead than a lock lasts (ticks wrap: a lock
        # nobody came back to for days must not read as ahead again)
        left = time.ticks_diff(g[2], now)
        if 0 < left <= lock_ms(g[1]):
            return False
        g[0], g[2] = 0, None
        _keep(0, g[1])
    ok = matches(ctx.meter_id, secret)
    if ok:
        if g[0] or g[1]:
            g[0] = g[1] = 0
            _keep(0, 0)
        return True
    g[0] += 1
    if g[0] >= _TRIES:
        g[1] = min(g[1] + 1, 255)
        g[2] = time.ticks_add(now, lock_ms(g[1]))
        if log is not None:
            from app import events

            log.add(events.READER_REFUSED, "reader locked %d min after %d wrong secrets" % (
                lock_ms(g[1]) // 60000, _TRIES))
    _keep(g[0], g[1])
    return False


def _keep(wrong, locks):
    try:
        store.write_atomic(TRIES_PATH, bytes((min(wrong, 255), locks)))
    except OSError:  # a full flash: the count stays in RAM (a restart would lift the lock)
        pass


def command(group, req, bad_request):
    """SMP group 66 command 9 for app/supply_group.py's SupplyGroup `group`: a read gives whether a secret is set; a
    write with `sha256` (32 bytes, or empty to clear) checked, then authorised (signed dlms.reader), stored, the
    guessing count started again and a DLMS session in progress ended (event 410)."""
    from app import events
    from loader import smp

    if "sha256" in req and group.ctx.server.op == smp.OP_WRITE:  # a read changes nothing
        new = req.get("sha256")
        if type(new) is not bytes or len(new) not in (0, SIZE):
            raise group._error(events.COMMAND_REFUSED, "dlms.reader: bad sha256", bad_request)
        group._authorise(req, "dlms.reader", {"sha256": new})
        save(group.ctx, new or None)
        room = getattr(group.ctx.server, "make_room", None)  # (the releasers: a DLMS session in progress)
        if room is not None:
            room()
        group.s.log.add(events.SETTINGS_CHANGED, "dlms reader secret " + ("set" if new else "cleared"))
    return {"set": is_set()}
