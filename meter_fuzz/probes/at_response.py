"""What an NB-IoT module (or anything on its UART line) can send the meter: the AT channel's line and URC handling
(app/modem_at.py `AtChannel.feed`, the BC660K dialect's `urc` in app/modem_bc660k.py, the transport's URC handlers
in app/modem.py `Modem.registration/opened/datagram/closed/restarted`), driven synchronously as the reader task drives
it (`AtChannel.run` reads at most 64 bytes and calls `feed`): no event loop, and the same code in the VM.

No exception is documented for the module's output: whatever it sends is taken in or counted away, never raised
(ERRORS names the channel's own errors, AtError and AtTimeout, which only `command` raises, never `feed`: one of
them here would be a verdict of "rejected" for a path that cannot raise it). Invariants (fuzzcore.Violation):
- bounded memory: the line buffer, the read chunk, the hex buffer and every socket's receive slots keep their size,
  at most INFO_LINES information lines are kept, the queue never holds more than QUEUE datagrams;
- no line makes the dialect or the transport raise (the channel swallows that as `faults`: a finding here);
- a well-formed `+QIURC: "recv",<id>,<len>,"<hex>"` placed on its own line anywhere in the noise is delivered
  byte-exact exactly once to its socket, and nothing else arrives or is counted meanwhile;
- a command's final result is one the command waits for (OK, ERROR, +CME/+CMS ERROR, its own finals);
- after AT+CEREG? is answered, the dialect reads a registration stat (an int) from the information lines the
  channel kept (Dialect.registration, its awaited command stood in by one already answered).

Input: three header bytes, the marker datagram's payload, then the noise.
  byte 0  bits 0-1 the command in flight (0 none, 1 a bare command, 2 AT+CEREG? with its prefix, 3 AT+QISEND with
          its finals, skip_ok and the `>` prompt); bits 2-4 the read size (64 for half of the values, else 1, 7, 31, 50); bit 5 the marker's hex in lower
          case; bit 6 a second socket open; bit 7 unused.
  byte 1  bits 0-5 the marker's payload length (taken from the input, then padded with a counting pattern); 0xFF
          the largest datagram (512 bytes).
  byte 2  bits 0-2 the marker's socket id (mod 5); bits 3-5 where in the noise it goes (eighths).
"""

import binascii

import fuzzcore
from micropython import const

from app import modem, modem_at, modem_bc660k

ERRORS = (modem_at.AtError, modem_at.AtTimeout)
MODULES = ("app/modem_at.py", "app/modem_bc660k.py", "app/modem.py")
MEM_BASE = 48 * 1024
MEM_PER_BYTE = 64

_READS = (64, 64, 64, 64, 1, 7, 31, 50)  # mostly whole reads, as a busy line gives
_IP = "10.0.0.1"
_HEADER = const(3)


class _NoStream:
    """The channel's stream: never read or written here (the probe calls feed as the reader task does)."""

    def write(self, buf):
        raise fuzzcore.Violation("the channel wrote while only reading")


def _marker(sid, payload, lower):
    hexd = binascii.hexlify(payload)
    if not lower:
        hexd = hexd.upper()
    return b'+QIURC: "recv",%d,%d,"' % (sid, len(payload)) + hexd + b'"\r\n'


def _feed(at, sockets, data, step, got):
    """Feed `data` in reads of `step` bytes through the channel's own read chunk, taking each socket's datagrams
    after every read (as the app's receiving task does)."""
    chunk = at._chunk
    i = 0
    n = len(data)
    while i < n:
        k = min(step, n - i)
        chunk[:k] = data[i : i + k]
        at.feed(chunk, k)
        i += k
        for s in sockets:
            _take(s, got)


def _take(s, got):
    # Socket.recv is a coroutine that returns at once while a datagram is queued: run it by hand, no event loop
    while s._count > (1 if s._held else 0):
        co = s.recv()
        try:
            co.send(None)
        except StopIteration as e:
            got.append((s.id, bytes(e.value)))
        else:
            raise fuzzcore.Violation("Socket.recv waited with a datagram queued")


def _counters(m):
    out = [m.stray, m.bad_urcs, m.at.faults]
    for s in m.sockets.values():
        out.append(s.dropped)
        out.append(s.malformed)
    return out


def _bounded(m, line):
    at = m.at
    fuzzcore.check(at.line is line and len(line) == modem_bc660k.LINE_MAX, "the line buffer changed or grew")
    fuzzcore.check(len(at._chunk) == 64 and len(at._hex) == 64, "the read chunk or hex buffer grew")
    fuzzcore.check(0 <= at._n <= len(line), "line length %d outside the buffer" % at._n)
    fuzzcore.check(len(at.info) <= modem_at.INFO_LINES, "%d information lines kept" % len(at.info))
    for s in m.sockets.values():
        fuzzcore.check(len(s._slots) == modem.QUEUE and 0 <= s._count <= modem.QUEUE, "the receive queue grew")
        for slot in s._slots:
            fuzzcore.check(len(slot) == m.max_datagram, "a receive slot grew to %d bytes" % len(slot))


def _pend(at, kind):
    """The state AtChannel.command sets before it awaits the final result (its own assignments, in its order)."""
    if kind == 0:
        return
    at.info.clear()
    at.final = None
    at._prefix = b"+CEREG: " if kind == 2 else None
    at._finals = (b"SEND OK", b"SEND FAIL") if kind == 3 else ()
    at._skip_ok = kind == 3
    at._done.clear()
    at._pending = True
    at._want_prompt = kind == 3


def run(data):
    if len(data) < _HEADER:
        data = bytes(data) + bytes(_HEADER - len(data))
    mode, size, where = data[0], data[1], data[2]
    m = modem.Modem(_NoStream(), modem_bc660k)
    at = m.at
    line = at.line
    sid = (where & 7) % modem_bc660k.SOCKETS
    ids = [sid]
    if mode & 0x40:
        ids.append((sid + 1) % modem_bc660k.SOCKETS)
    for k in ids:
        s = modem.Socket(m, k, _IP, 5683, 5683)
        s.is_open = True
        m.sockets[k] = s
    sockets = list(m.sockets.values())
    n = modem_bc660k.MAX_DATAGRAM if size == 0xFF else size & 0x3F  # the largest rarely: it is 1 kB of hex to feed
    payload = bytearray(data[_HEADER : _HEADER + n])
    for i in range(len(payload), n):
        payload.append(i & 0xFF)
    noise = data[_HEADER + min(n, len(data) - _HEADER) :]
    cut = len(noise) * ((where >> 3) & 7) // 7
    kind = mode & 3
    step = _READS[(mode >> 2) & 7]
    _pend(at, kind)

    got = []
    _feed(at, sockets, noise[:cut], step, got)
    _feed(at, sockets, b"\r\n", step, got)  # whatever line the noise left open ends here
    _bounded(m, line)
    before = _counters(m)
    mark = []
    _feed(at, sockets, _marker(sid, payload, mode & 0x20), step, mark)
    fuzzcore.check(mark == [(sid, bytes(payload))], "the marker datagram arrived as %r" % (mark[:3],))
    fuzzcore.check(_counters(m) == before, "the marker datagram was counted as dropped, malformed or stray")
    _feed(at, sockets, noise[cut:], step, got)
    _bounded(m, line)
    fuzzcore.check(at.faults == 0, "the dialect or the transport raised on a line (%d faults)" % at.faults)
    final = at.final
    if kind and final is not None:
        ok = ((final == b"OK" and kind != 3) or final == b"ERROR" or final.startswith(b"+CME ERROR: ")
              or final.startswith(b"+CMS ERROR: ") or final in at._finals)
        fuzzcore.check(ok, "final result %r for a command that does not wait for it" % (final[:40],))
        fuzzcore.check(not at._pending, "a final result left the command pending")
    stat = None
    if kind == 2 and final is not None:
        stat = _registration(m.dialect, at.info)
        fuzzcore.check(type(stat) is int and stat >= -1, "registration stat %r" % (stat,))
    return len(got), m.stray, m.bad_urcs, at.overlong, at.unknown, at.info_dropped, stat


class _Answered:
    """The channel after AT+CEREG? was answered: its information lines, as the real channel kept them."""

    def __init__(self, info):
        self.info = info

    async def command(self, cmd, timeout_ms, prefix=None, finals=(), skip_ok=False, data=None):
        return b"OK"


def _registration(dialect, info):
    """The dialect's reading of the +CEREG information lines (Dialect.registration, its coroutine run by hand: the
    command it awaits has already been answered)."""
    co = dialect.registration(_Answered(info))
    try:
        co.send(None)
    except StopIteration as e:
        return e.value
    raise fuzzcore.Violation("Dialect.registration waited for an answered command")
