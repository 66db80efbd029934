# The AT channel to a cellular module (3GPP TS 27.007 framing), below every dialect: the module's bytes become lines
# and `>` prompts; one command at a time is matched to its final result; every other line goes to the dialect as an
# unsolicited result (URC), whenever it arrives — between a command's lines or after its OK.
#
# Memory is fixed when the channel is made, whatever the module sends: one line buffer (a line longer than it is
# discarded up to its end and counted, never grown), one read chunk, one small buffer through which a command's data
# is written as hex (never the whole command at once), at most INFO_LINES information lines kept per command (more
# are counted). A dialect whose data comes as quoted hex in a URC names that URC's head (`data_head`): the channel
# decodes the quoted digits into bytes as they arrive, so the line buffer holds a datagram once, not its hex twice.
# Error results keep the module's number only: names would cost RAM on every meter, and the host names them
# (meterkit.boards.MODEM_ERRORS). Bytes are never decoded as text, so NULs, 0xFF and lone CRs are just bytes. Nothing
# blocks: the reader awaits the stream (app/modem.py `UartStream` over the board's UART, MicroPython's
# `asyncio.StreamReader` in the tests, or anything with the same async `readinto`/`write`/`drain`), and a command
# awaits its result with a timeout.
import asyncio

from micropython import const

_CR = const(13)
_LF = const(10)
_PROMPT = const(62)  # '>': the module wants the command's data
_SPACE = const(32)
_QUOTE = const(34)
# where feed() is in a data line: _PLAIN (any other line, or after the data's closing quote), _ARMED (its head seen,
# before the opening quote), _HIGH / _LOW (in the quoted digits, expecting a byte's first / second digit)
_PLAIN = const(0)
_ARMED = const(1)
_HIGH = const(2)
_LOW = const(3)
_CHUNK = const(64)  # bytes read from the stream at a time
_HEX_OUT = const(64)  # hex digits written to the stream at a time
_IDLE_S = 0.05  # a stream at its end (a closed pty, a test script run dry) is retried this often, never spun on
INFO_LINES = const(4)
NO_CODE = const(-1)  # AtError.code of a plain ERROR
# registration status, +CEREG <stat> (3GPP TS 27.007 §10.1.22)
REG_HOME = const(1)
REG_SEARCHING = const(2)
REG_DENIED = const(3)
REG_ROAMING = const(5)

_OK = b"OK"
_ERROR = b"ERROR"
_CME = b"+CME ERROR: "
_CMS = b"+CMS ERROR: "
_HEX = b"0123456789ABCDEF"
_NO_FINALS = ()  # type: tuple


class AtError(Exception):
    """The module refused a command: `code` is its +CME/+CMS ERROR number (NO_CODE for a plain ERROR)."""

    def __init__(self, command, code):
        super().__init__(command, code)
        self.command = command
        self.code = code


class AtTimeout(Exception):
    """No final result (or no `>` prompt) within the command's timeout: the module is busy, gone or wedged."""


def starts(buf, n, prefix):
    """Whether the line buf[:n] begins with `prefix`, without copying the line."""
    k = len(prefix)
    if n < k:
        return False
    for i in range(k):
        if buf[i] != prefix[i]:
            return False
    return True


def number(buf, i, n):
    """The unsigned decimal number at buf[i:n] as (value, index after it); value -1 when no digit is there."""
    v = -1
    while i < n and 48 <= buf[i] <= 57:
        v = (0 if v < 0 else v * 10) + buf[i] - 48
        i += 1
    return v, i


def hex_into(src, n, dst, at, start=0):
    """Write src[start:start + n] as 2n upper-case hex digits into dst from index `at`; return the index after them.
    No allocation: dst is the caller's preallocated buffer (IndexError if it is too short)."""
    for i in range(start, start + n):
        b = src[i]
        dst[at] = _HEX[b >> 4]
        dst[at + 1] = _HEX[b & 15]
        at += 2
    return at


def _nibble(c):
    if 48 <= c <= 57:
        return c - 48
    if 65 <= c <= 70:
        return c - 55
    if 97 <= c <= 102:
        return c - 87
    return -1


class AtChannel:
    """One module's command channel. `urc(buf, n)` is the dialect's handler for a line that is not part of the
    current command's response: it must use buf[:n] before returning (the buffer is reused) and return whether it
    knew the line. In a line that starts with `data_head` the digits between the first quote after the head and the
    next one arrive decoded, one byte for two digits, the quotes kept; `bad_data` says, while `urc` runs, whether
    they were not all hex or odd in number (or never closed)."""

    def __init__(self, stream, urc, line_max, data_head=None):
        self.stream = stream
        self.urc = urc
        self.line = bytearray(line_max)
        self._head = data_head
        self._head_n = -1 if data_head is None else len(data_head)
        self._hx = _PLAIN
        self._hi = 0
        self.bad_data = False
        self._chunk = bytearray(_CHUNK)
        self._hex = bytearray(_HEX_OUT)
        self._n = 0
        self._overlong = False
        self._skip_space = False
        self._want_prompt = False
        self._busy = False
        self._idle = asyncio.Event()
        self._done = asyncio.Event()
        self._pending = False
        self._prefix = None
        self._finals = _NO_FINALS
        self._skip_ok = False
        self.final = None  # the last command's final line (bytes)
        self.info = []  # its information lines (bytes), at most INFO_LINES
        # what the channel threw away, for diagnosis and for tests of the memory bound
        self.overlong = 0
        self.unknown = 0
        self.info_dropped = 0
        self.faults = 0

    # -- reading ---------------------------------------------------------------------------------------------------
    async def run(self):
        """The reader task: forever reads the stream and dispatches what arrives."""
        chunk = self._chunk
        while True:
            n = await self.stream.readinto(chunk)
            if not n:
                await asyncio.sleep(_IDLE_S)
                continue
            self.feed(chunk, n)

    def feed(self, data, n):
        """Take the module's next n bytes (any fragment of its output: lines are assembled across calls)."""
        line = self.line
        cap = len(line)
        k = self._n
        hx = self._hx
        for i in range(n):
            b = data[i]
            if b == _CR or b == _LF:
                if hx >= _HIGH:
                    self.bad_data = True  # the digits never closed
                if self._overlong:
                    self._overlong = False
                    self.overlong += 1
                elif k:
                    self._n = 0
                    try:
                        self._line(k)
                    except Exception:  # a dialect's bug or a MemoryError must not end the reader: drop the line
                        self.faults += 1
                k = 0
                hx = _PLAIN
                self.bad_data = False
                continue
            if self._overlong:
                continue
            if k == 0:
                if self._skip_space:
                    self._skip_space = False
                    if b == _SPACE:
                        continue
                if b == _PROMPT and self._want_prompt:
                    self._want_prompt = False
                    self._skip_space = True
                    self._done.set()
                    continue
            elif k == self._head_n and hx == _PLAIN and starts(line, k, self._head):
                hx = _ARMED
            if hx:
                if b == _QUOTE:
                    if hx == _LOW:
                        self.bad_data = True  # an odd number of digits
                    hx = _HIGH if hx == _ARMED else _PLAIN
                elif hx != _ARMED:
                    v = _nibble(b)
                    if v < 0:
                        self.bad_data = True
                        v = 0
                    if hx == _HIGH:
                        self._hi = v
                        hx = _LOW
                        continue
                    b = self._hi << 4 | v
                    hx = _HIGH
            if k == cap:
                self._overlong = True
                k = 0
                continue
            line[k] = b
            k += 1
        self._n = k
        self._hx = hx

    def _line(self, n):
        buf = self.line
        if self._pending:
            final = (n == 2 and starts(buf, n, _OK) and not self._skip_ok) or (n == 5 and starts(buf, n, _ERROR))
            final = final or starts(buf, n, _CME) or starts(buf, n, _CMS)
            for f in self._finals:
                final = final or (n == len(f) and starts(buf, n, f))
            if final:
                self._pending = False
                self._want_prompt = False
                self.final = bytes(buf[:n])
                self._done.set()
                return
            prefix = self._prefix
            if prefix is None or not starts(buf, n, prefix):
                if self.urc(buf, n):
                    return
                if prefix is not None:
                    self.unknown += 1
                    return
            # the command's information: a line with its prefix, or (no prefix) a bare value line such as an IMEI
            if len(self.info) < INFO_LINES:
                self.info.append(bytes(buf[:n]))
            else:
                self.info_dropped += 1
        elif not self.urc(buf, n):
            self.unknown += 1

    # -- commands --------------------------------------------------------------------------------------------------
    async def command(self, cmd, timeout_ms, prefix=None, finals=(), skip_ok=False, data=None):
        """Send `cmd` (without the CR) and await its final result; return the final line. `cmd` is bytes, or a
        tuple (head, buf, n, tail): head, then buf[:n] as upper-case hex digits, then tail, written in small pieces
        (a command carrying a datagram is never built whole in RAM). Information lines starting with `prefix` (or,
        without a prefix, every line the dialect does not know as a URC) are in self.info until the next command.
        `finals` are extra final lines of this command (b"SEND OK"); `skip_ok` makes OK an intermediate line for
        it. With `data`, the channel waits for the `>` prompt and then writes data. Raises AtError for ERROR /
        +CME ERROR (its code), AtTimeout when nothing final arrives in timeout_ms."""
        while self._busy:  # one command at a time (an Event, not an asyncio.Lock: its module costs the app RAM)
            self._idle.clear()
            await self._idle.wait()
        self._busy = True
        self.info.clear()
        self.final = None
        self._prefix = prefix
        self._finals = finals
        self._skip_ok = skip_ok
        self._done.clear()
        self._pending = True
        self._want_prompt = data is not None
        w = self.stream
        name = cmd
        try:
            if type(cmd) is tuple:
                name, src, n, cmd = cmd
                w.write(name)
                out = self._hex
                step = _HEX_OUT // 2
                for i in range(0, n, step):
                    k = hex_into(src, min(step, n - i), out, 0, i)
                    w.write(out if k == _HEX_OUT else memoryview(out)[:k])
                    await w.drain()  # the piece has left (or is copied): its buffer is free again
            w.write(cmd)
            w.write(b"\r")
            await w.drain()
            while True:
                try:
                    await asyncio.wait_for(self._done.wait(), timeout_ms / 1000)
                except asyncio.TimeoutError:  # noqa: UP041 - MicroPython has no builtin TimeoutError
                    break  # final is None: AtTimeout
                if data is None or self.final is not None:
                    break
                self._done.clear()  # the prompt, not a refusal: the data, then the final result
                w.write(data)
                await w.drain()
                data = None
        finally:
            self._pending = False
            self._want_prompt = False
            self._busy = False
            self._idle.set()
        final = self.final
        if final is None:
            raise AtTimeout(name)
        if final == _ERROR:
            raise AtError(name, NO_CODE)
        if starts(final, len(final), _CME) or starts(final, len(final), _CMS):
            raise AtError(name, number(final, len(_CME), len(final))[0])
        return final
