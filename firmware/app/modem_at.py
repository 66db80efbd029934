# The AT channel to a cellular module (3GPP TS 27.007 framing), below every dialect: the module's bytes become lines
# and `>` prompts; one command at a time is matched to its final result; every other line goes to the dialect as an
# unsolicited result (URC), whenever it arrives — between a command's lines or after its OK.
#
# Memory is fixed when the channel is made, whatever the module sends: one line buffer (a line longer than it is
# discarded up to its end and counted, never grown), one read chunk, at most INFO_LINES information lines kept per
# command (more are counted). Bytes are never decoded as text, so NULs, 0xFF and lone CRs are just bytes. Nothing
# blocks: the reader awaits the stream (MicroPython's `asyncio.StreamReader(uart)`, or anything with the same async
# `readinto`/`write`/`drain`), and a command awaits its result with a timeout.
import asyncio

from micropython import const

_CR = const(13)
_LF = const(10)
_PROMPT = const(62)  # '>': the module wants the command's data
_SPACE = const(32)
_CHUNK = const(64)  # bytes read from the stream at a time
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
    """The module refused a command: `code` is its +CME/+CMS ERROR number (NO_CODE for a plain ERROR), `name` what
    the dialect calls that code ("" when it has no name for it)."""

    def __init__(self, command, code, name):
        super().__init__(command, code, name)
        self.command = command
        self.code = code
        self.name = name


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


def hex_into(src, n, dst, at):
    """Write src[:n] as 2n upper-case hex digits into dst from index `at`; return the index after them. No
    allocation: dst is the caller's preallocated buffer (IndexError if it is too short)."""
    for i in range(n):
        b = src[i]
        dst[at] = _HEX[b >> 4]
        dst[at + 1] = _HEX[b & 15]
        at += 2
    return at


def unhex_into(src, start, end, dst):
    """Decode the hex digits src[start:end] into dst from index 0; return the byte count, or -1 when the digits are
    odd in number, not hex, or more than dst holds (dst is then partly written). No allocation."""
    count = end - start
    if count & 1 or count // 2 > len(dst):
        return -1
    j = 0
    for i in range(start, end, 2):
        hi = _nibble(src[i])
        lo = _nibble(src[i + 1])
        if hi < 0 or lo < 0:
            return -1
        dst[j] = hi << 4 | lo
        j += 1
    return j


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
    knew the line. `error_names` maps +CME ERROR codes to names."""

    def __init__(self, stream, urc, line_max, error_names):
        self.stream = stream
        self.urc = urc
        self.error_names = error_names
        self.line = bytearray(line_max)
        self._chunk = bytearray(_CHUNK)
        self._n = 0
        self._overlong = False
        self._skip_space = False
        self._want_prompt = False
        self._busy = asyncio.Lock()
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
        for i in range(n):
            b = data[i]
            if b == _CR or b == _LF:
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
            if k == cap:
                self._overlong = True
                k = 0
                continue
            line[k] = b
            k += 1
        self._n = k

    def _line(self, n):
        buf = self.line
        if self._pending:
            if self._is_final(buf, n):
                self._pending = False
                self._want_prompt = False
                self.final = bytes(buf[:n])
                self._done.set()
                return
            prefix = self._prefix
            if prefix is not None and starts(buf, n, prefix):
                self._keep(buf, n)
                return
            if self.urc(buf, n):
                return
            if prefix is None:
                self._keep(buf, n)  # a bare value line (an IMEI, a stray echo)
                return
        elif self.urc(buf, n):
            return
        self.unknown += 1

    def _keep(self, buf, n):
        if len(self.info) < INFO_LINES:
            self.info.append(bytes(buf[:n]))
        else:
            self.info_dropped += 1

    def _is_final(self, buf, n):
        if n == 2 and starts(buf, n, _OK):
            return not self._skip_ok
        if n == 5 and starts(buf, n, _ERROR):
            return True
        if starts(buf, n, _CME) or starts(buf, n, _CMS):
            return True
        for f in self._finals:
            if n == len(f) and starts(buf, n, f):
                return True
        return False

    # -- commands --------------------------------------------------------------------------------------------------
    async def command(self, cmd, timeout_ms, prefix=None, finals=(), skip_ok=False, data=None):
        """Send `cmd` (bytes, without the CR) and await its final result; return the final line. Information lines
        starting with `prefix` (or, without a prefix, every line the dialect does not know as a URC) are in
        self.info until the next command. `finals` are extra final lines of this command (b"SEND OK"); `skip_ok`
        makes OK an intermediate line for it. With `data`, the channel waits for the `>` prompt and then writes
        data. Raises AtError for ERROR / +CME ERROR, AtTimeout when nothing final arrives in timeout_ms."""
        async with self._busy:
            self.info.clear()
            self.final = None
            self._prefix = prefix
            self._finals = finals
            self._skip_ok = skip_ok
            self._done.clear()
            self._pending = True
            self._want_prompt = data is not None
            try:
                self.stream.write(cmd)
                self.stream.write(b"\r")
                await self.stream.drain()
                if data is not None:
                    await self._wait(cmd, timeout_ms)
                    if self.final is None:  # the prompt, not a refusal
                        self._done.clear()
                        self.stream.write(data)
                        await self.stream.drain()
                await self._wait(cmd, timeout_ms)
            finally:
                self._pending = False
                self._want_prompt = False
            final = self.final
            if final is None:
                raise AtTimeout(cmd) from None
            if final == _ERROR:
                raise AtError(cmd, NO_CODE, "")
            if starts(final, len(final), _CME) or starts(final, len(final), _CMS):
                code, _ = number(final, len(_CME), len(final))
                raise AtError(cmd, code, self.error_names.get(code, ""))
            return final

    async def _wait(self, cmd, timeout_ms):
        try:
            await asyncio.wait_for(self._done.wait(), timeout_ms / 1000)
        except asyncio.TimeoutError:  # noqa: UP041 - MicroPython has no builtin TimeoutError
            raise AtTimeout(cmd) from None
