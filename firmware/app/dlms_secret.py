# The DLMS meter reader's secret (IS 15959's meter reader association, client SAP 32, low-level security: the
# client sends the secret itself in its AARQ, app/cosem.py). The meter keeps only its SHA-256, in a file of its own
# (32 bytes, written whole by write-then-rename), set and cleared by a signed "dlms.reader" command (SMP group 66
# command 9, app/supply_group.py). No file: no meter reader association (nobody reads the load profiles over DLMS).
# A file of another size is no secret either: nothing authenticates against it, and nothing at start-up reads it
# (a session's AARQ does), so it can never stop the meter starting.
# A wrong secret is event 420; the third in a row locks the meter reader out for _LOCK_MS (every AARQ refused
# unchecked, no more events): a guess every 3.3 minutes at most, whoever holds the probe. The count and the lock
# outlive a session (the app's context keeps them), not a restart (a power event in the log).
# On the heap for one AARQ or one command at a time.
import hashlib
import time

from micropython import const

from loader import store

PATH = "meter/dlms-reader.bin"
SIZE = 32  # bytes of a SHA-256
_TRIES = const(3)  # wrong secrets in a row before the lock
_LOCK_MS = const(600000)


def check(ctx, log, secret):
    """Whether `secret` is the meter reader's, the lock against guessing applied (its state in ctx.reader_tries:
    [wrong secrets in a row, ticks ms the lock ends or None]); a wrong one is event 420 in `log` (None: none kept)."""
    g = getattr(ctx, "reader_tries", None)
    if g is None:
        g = ctx.reader_tries = [0, None]
    now = time.ticks_ms()
    if g[1] is not None:
        if time.ticks_diff(g[1], now) > 0:
            return False
        g[0], g[1] = 0, None
    try:
        ok = matches(secret)
    except OSError:  # the flash: no secret that can be checked is no secret
        ok = False
    if ok:
        g[0] = 0
        return True
    g[0] += 1
    if g[0] >= _TRIES:
        g[1] = time.ticks_add(now, _LOCK_MS)
    if log is not None:
        from app import events

        log.add(events.READER_REFUSED, "reader secret refused" + (
            ", locked %d min" % (_LOCK_MS // 60000) if g[0] >= _TRIES else ""))
    return False


def matches(secret):
    """Whether `secret` (bytes) is the meter reader's: its SHA-256 against the stored one, every byte compared
    whatever the first difference (no timing tells how much of a guess was right)."""
    want = store.read_bytes(PATH)
    if want is None or len(want) != SIZE:
        return False
    got = hashlib.sha256(secret).digest()
    diff = 0
    for k in range(SIZE):
        diff |= got[k] ^ want[k]
    return diff == 0


def is_set():
    """Whether a meter reader's secret is stored (a file of the right size)."""
    want = store.read_bytes(PATH)
    return want is not None and len(want) == SIZE


def save(digest):
    """Store the secret's SHA-256 (32 bytes), or clear it (None). A power cut leaves the old file or the new one."""
    if digest is None:
        import os

        try:
            os.remove(PATH)
        except OSError:  # none stored
            pass
        return
    store.write_atomic(PATH, digest)
