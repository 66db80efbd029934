# The meter's datagram link through its cellular module (docs/firmware-engineer.md "The modem driver"): one
# transport — open a UDP socket, send a datagram, await a received one, the link's state — above the AT dialects
# (app/modem_<type>.py, chosen by the board's modem.type), with the recovery a field module needs: resync, re-register,
# reopen the sockets, pulse the power key after repeated failures, back off exponentially between tries. Every wait
# is an await, so metering never waits for the module.
#
# Memory: the AT channel's line buffer (a datagram and a URC's head: the hex is decoded as it comes) and QUEUE
# received-datagram buffers per socket, all made when the modem or the socket is; a datagram arriving to a full queue
# is dropped and counted (UDP: the sender retries). A datagram sent goes to the module as hex in small pieces, never
# built whole.
import asyncio

from micropython import const

from app.modem_at import REG_DENIED, REG_HOME, REG_ROAMING, AtChannel, AtError, AtTimeout

DIALECTS = ("bc660k",)  # the modem.type values this firmware drives (boards/SCHEMA.md)

LINK_OFF = const(0)  # the module is not answering, or is being (re)started
LINK_SEARCHING = const(1)  # answering, not registered yet
LINK_DENIED = const(2)  # the network refused registration (+CEREG stat 3)
LINK_UP = const(3)  # registered; open sockets can send

_ADDRESS_CHARS = "0123456789abcdefABCDEF.:"
_ADDRESS_MAX = const(45)
QUEUE = const(2)  # received datagrams held per socket (public: SMP over UDP reports it as its buf_count)
_SYNC_TRIES = const(5)
_SYNC_MS = const(500)
_REGISTER_MS = const(180000)  # searching longer than this goes through recovery
_OPEN_MS = const(30000)  # for +QIOPEN after the command's OK
_BACKOFF_MIN_MS = const(2000)
_BACKOFF_MAX_MS = const(600000)
_PWRKEY_AFTER = const(2)  # failed bring-ups in a row before each power-key pulse
_BOOT_MS = const(3000)  # after a pulse, before the module answers AT
_PROBE_MS = const(60000)  # while up, the module is asked AT this often: a wedged one pushes nothing to notice

# what `notify` is told
EVENT_UP = "up"
EVENT_LOST = "lost"
EVENT_DENIED = "denied"
EVENT_PULSED = "pulsed"
EVENT_RESTARTED = "restarted"  # the module said RDY: it restarted (a pulse, a brown-out, its own watchdog), not the
# RDY of its power-up with the meter's (one before the module first answered AT, and before any pulse)
EVENT_SILENT = "silent"  # the module did not answer AT: removed, unpowered or wedged


class ModemTypeUnknown(ValueError):
    """The board's modem.type names a module this firmware has no dialect for."""


class LinkDown(Exception):
    """Nothing was sent: the link is not up, or the socket is not open (the supervisor is recovering it)."""


class SendFailed(Exception):
    """The module refused the datagram (SEND FAIL: its radio buffer is full); nothing was sent, try again later."""


def dialect(kind):
    """The dialect module for a board's modem.type; ModemTypeUnknown otherwise."""
    if kind == "bc660k":
        from app import modem_bc660k

        return modem_bc660k
    raise ModemTypeUnknown("modem.type %r: this firmware drives %s" % (kind, ", ".join(DIALECTS)))


def from_board(board, notify=None):
    """The Modem of a board file's `modem` and `uarts.modem` (None when the board has no module fitted)."""
    spec = board.get("modem")
    if spec is None:
        return None
    kind = dialect(spec["type"])
    import machine

    u = board["uarts"]["modem"]
    # the UART's own ring holds a whole line as it comes on the wire, the data in hex (twice the channel's line)
    uart = machine.UART(u["id"], baudrate=u["baud"], tx=u["tx"], rx=u["rx"], rxbuf=2 * kind.LINE_MAX)
    key = spec.get("pwrkey")
    pin = None if key is None else machine.Pin(key, machine.Pin.OUT, value=0)
    return Modem(UartStream(uart), kind, pin, notify)


class UartStream:
    """The AT channel's stream over a board's UART (async `readinto`, `write`, `drain`), as asyncio.StreamReader(uart)
    would be, without asyncio's stream module (1.9 kB of the VM's heap, which the app loads for nothing else). It
    waits for the UART as StreamReader does, through asyncio's I/O queue (app/console.py `_readable`, and its test,
    say why that private name is safe to use). Bytes the UART does not take at once wait in `drain`."""

    def __init__(self, uart):
        self.uart = uart
        self.out = b""

    # readinto and drain are generators, as StreamReader's own: MicroPython's asyncio awaits them (never run on CPython)
    def readinto(self, buf):
        yield asyncio.core._io_queue.queue_read(self.uart)  # type: ignore[attr-defined]  # until readable
        return self.uart.readinto(buf)

    def write(self, buf):
        if not self.out:
            n = self.uart.write(buf)
            if n == len(buf):
                return
            buf = buf[n or 0 :]
        self.out += buf

    def drain(self):
        while self.out:
            yield asyncio.core._io_queue.queue_write(self.uart)  # type: ignore[attr-defined]  # until writable
            self.out = self.out[self.uart.write(self.out) or 0 :]


class Socket:
    """A UDP socket through the module to one remote (ip, rport) from local port lport. `recv` returns a view of
    the oldest received datagram, valid until the next `recv`."""

    def __init__(self, modem, sid, ip, rport, lport):
        self.modem = modem
        self.id = sid
        self.ip = ip
        self.rport = rport
        self.lport = lport
        self.is_open = False
        self.err = -1  # the module's last +QIOPEN result for it; -1 while none
        self._slots = [bytearray(modem.max_datagram) for _ in range(QUEUE)]
        self._sizes = [0] * QUEUE
        self._head = 0
        self._count = 0
        self._held = False
        self.dropped = 0  # arrived to a full queue
        self.malformed = 0  # bad hex or a length that did not match

    async def send(self, data, n=-1):
        """Send data[:n] (all of it by default) as one datagram of at most modem.max_datagram bytes. Raises
        LinkDown, SendFailed, AtError (the module's named refusal) or ValueError (too long)."""
        if n < 0:
            n = len(data)
        m = self.modem
        if m.link != LINK_UP or not self.is_open:
            raise LinkDown("link not up" if m.link != LINK_UP else "socket not open")
        try:
            ok = await m.dialect.send(m.at, self.id, data, n)
        except AtTimeout:
            m.lose("send timed out")
            raise LinkDown("send timed out") from None
        if not ok:
            raise SendFailed()
        self.modem.sent += 1

    async def recv(self):
        """Await the next datagram; a memoryview of it, valid until the next recv on this socket."""
        if self._held:
            self._held = False
            self._head = (self._head + 1) % QUEUE
            self._count -= 1
        changed = self.modem._changed  # the modem's one event: set by every arrival and every change of state
        while self._count == 0:
            changed.clear()
            await changed.wait()
        self._held = True
        return memoryview(self._slots[self._head])[: self._sizes[self._head]]

    async def close(self):
        m = self.modem
        m.sockets.pop(self.id, None)
        if self.is_open:
            self.is_open = False
            await m.dialect.close(m.at, self.id)


class Modem:
    """The transport. `run()` is its supervisor task; `open()` a socket; `link` one of LINK_*; `notify(event)` is
    called with EVENT_* as the link changes."""

    # recovery timing in ms: class values, which a test shortens on its instance
    sync_ms = _SYNC_MS
    register_ms = _REGISTER_MS
    open_ms = _OPEN_MS
    backoff_ms = _BACKOFF_MIN_MS
    backoff_max_ms = _BACKOFF_MAX_MS
    boot_ms = _BOOT_MS
    probe_ms = _PROBE_MS

    def __init__(self, stream, kind, pwrkey=None, notify=None):
        self.kind = kind
        self.max_datagram = kind.MAX_DATAGRAM
        self.dialect = kind.Dialect(self)
        self.at = AtChannel(stream, self.dialect.urc, kind.LINE_MAX, kind.DATA_HEAD)
        self.pwrkey = pwrkey
        self.notify = notify
        self.link = LINK_OFF
        self.stat = -1
        self.sockets = {}
        self._changed = asyncio.Event()
        self._lost = asyncio.Event()
        self.pwrkey_ms = kind.PWRKEY_MS
        # counters, for diagnosis
        self.failures = 0  # failed bring-ups in a row
        self.pulses = 0
        self.restarts = 0  # RDY seen: the module restarted
        self.sent = 0
        self.stray = 0  # datagrams for a socket the meter has not opened
        self.bad_urcs = 0  # data URCs the dialect could not parse (it counts them here)
        self.last_error = None
        self._heard = False  # the module has answered AT, or been pulsed, since the meter started

    # -- the transport API --------------------------------------------------------------------------------------------
    async def open(self, ip, rport, lport):
        """A UDP socket to (ip, rport) from lport. Opened now when the link is up (AtError when the module
        refuses: the socket is not kept), otherwise by the supervisor as soon as it is. ValueError for an address
        that is not a numeric IPv4/IPv6 text or a port outside 0..65535 (it goes into an AT command line)."""
        _check_address(ip, rport, lport)
        sid = 0
        while sid in self.sockets:
            sid += 1
        if sid >= self.kind.SOCKETS:
            raise LinkDown("no free socket")
        s = Socket(self, sid, ip, rport, lport)
        self.sockets[sid] = s
        if self.link == LINK_UP:
            try:
                await self._open(s)
            except Exception:
                self.sockets.pop(sid, None)
                raise
        return s

    async def wait_up(self):
        while self.link != LINK_UP:
            self._changed.clear()
            await self._changed.wait()

    # -- what the dialect reports (synchronous, from the reader task) ----------------------------------------------------
    def registration(self, stat):
        self.stat = stat
        if self.link == LINK_UP and stat != REG_HOME and stat != REG_ROAMING:
            self.lose("deregistered")
        self._changed.set()

    def opened(self, sid, err):
        s = self.sockets.get(sid)
        if s is not None:
            s.err = err
            s.is_open = err == 0
        self._changed.set()

    def datagram(self, sid, size, buf, start, end):
        s = self.sockets.get(sid)
        if s is None:
            self.stray += 1
        elif s._count == QUEUE:
            s.dropped += 1
        elif self.at.bad_data or end - start != size or size > self.max_datagram:  # not hex, or not its length
            s.malformed += 1
        else:
            i = (s._head + s._count) % QUEUE
            s._slots[i][:size] = memoryview(buf)[start:end]
            s._sizes[i] = size
            s._count += 1
            self._changed.set()

    def closed(self, sid):
        s = self.sockets.get(sid)
        if s is not None and s.is_open:
            s.is_open = False
            if self.link == LINK_UP:
                self.lose("socket closed")

    def restarted(self):
        if self._heard:  # else the RDY of the module's power-up, with the meter's: not a restart
            self.restarts += 1
            self._tell(EVENT_RESTARTED)
        if self.link != LINK_OFF:
            self.lose("module restarted")

    def lose(self, why):
        """The link is gone (why: text): sockets are shut and the supervisor brings everything back."""
        self.last_error = why
        for s in self.sockets.values():
            s.is_open = False
        self._set(LINK_OFF)
        self._lost.set()

    # -- the supervisor -------------------------------------------------------------------------------------------------
    async def run(self):
        """Forever: bring the link up; while it is up, ask the module AT every probe_ms until the link is lost (a
        wedged module sends no URC and takes no datagram, so without a question nothing would show it gone: silent,
        it is lost, EVENT_SILENT); recover. Back off after each failure and pulse the power key (when the board has
        one) after every _PWRKEY_AFTER failures in a row."""
        reader = asyncio.create_task(self.at.run())
        backoff = self.backoff_ms
        lost = self._lost
        try:
            while True:
                try:
                    await self._bring_up()
                    self.failures = 0
                    backoff = self.backoff_ms
                    self._set(LINK_UP)
                    self._tell(EVENT_UP)
                    while not lost.is_set():
                        try:
                            await asyncio.wait_for(lost.wait(), self.probe_ms / 1000)
                        except asyncio.TimeoutError:  # noqa: UP041 - MicroPython has no builtin TimeoutError
                            try:
                                await self._sync()
                            except AtTimeout:
                                self.lose("module silent")
                    self._tell(EVENT_LOST)
                    continue
                except Exception as e:  # AtError, AtTimeout, LinkDown, and whatever else: the supervisor never stops
                    self.failures += 1
                    self.last_error = e
                if self.link != LINK_DENIED:
                    self._set(LINK_OFF)
                key = self.pwrkey
                if key is not None and self.failures % _PWRKEY_AFTER == 0:
                    self.pulses += 1
                    self._heard = True  # the RDY that follows is a restart the meter made
                    self._tell(EVENT_PULSED)
                    key.value(1)
                    await asyncio.sleep(self.pwrkey_ms / 1000)
                    key.value(0)
                    await asyncio.sleep(self.boot_ms / 1000)
                await asyncio.sleep(backoff / 1000)
                backoff = min(backoff * 2, self.backoff_max_ms)
        finally:
            reader.cancel()

    async def _bring_up(self):
        self._lost.clear()
        await self._sync()
        await self.dialect.start(self.at)
        self.registration(await self.dialect.registration(self.at))
        try:
            await asyncio.wait_for(self._until_registered(), self.register_ms / 1000)
        except asyncio.TimeoutError:  # noqa: UP041 - MicroPython has no builtin TimeoutError
            raise LinkDown("not registered: +CEREG stat %d" % self.stat) from None
        for s in list(self.sockets.values()):
            await self._open(s)
        if self._lost.is_set():  # lost again while the sockets opened
            raise LinkDown(self.last_error)

    async def _sync(self):
        for _ in range(_SYNC_TRIES):
            try:
                await self.at.command(b"AT", self.sync_ms)
                self._heard = True
                return
            except AtTimeout:
                pass
        self._tell(EVENT_SILENT)
        raise AtTimeout(b"AT")

    async def _until_registered(self):
        while self.stat != REG_HOME and self.stat != REG_ROAMING:  # (1 home, 5 roaming: registered)
            if self._lost.is_set():  # RDY: the module restarted and forgot its setup
                raise LinkDown(self.last_error)
            if self.stat == REG_DENIED:
                if self.link != LINK_DENIED:
                    self._set(LINK_DENIED)
                    self._tell(EVENT_DENIED)
                raise LinkDown("registration denied")
            self._set(LINK_SEARCHING)
            self._changed.clear()
            await self._changed.wait()

    async def _open(self, s):
        s.is_open = False
        s.err = -1
        await self.dialect.open(self.at, s.id, s.ip, s.rport, s.lport)
        try:
            await asyncio.wait_for(self._until_opened(s), self.open_ms / 1000)
        except asyncio.TimeoutError:  # noqa: UP041 - MicroPython has no builtin TimeoutError
            raise AtTimeout(b"+QIOPEN") from None
        if s.err != 0:
            raise AtError(b"+QIOPEN", s.err)

    async def _until_opened(self, s):
        while s.err < 0:
            self._changed.clear()
            await self._changed.wait()

    def _set(self, link):
        self.link = link
        self._changed.set()

    def _tell(self, event):
        if self.notify is not None:
            self.notify(event)


def _check_address(ip, rport, lport):
    ok = isinstance(ip, str) and 0 < len(ip) <= _ADDRESS_MAX
    for c in ip if ok else "":
        ok = ok and c in _ADDRESS_CHARS
    if not ok:
        raise ValueError("not a numeric IP address: %r" % (ip,))
    for port in (rport, lport):
        if not (isinstance(port, int) and 0 <= port <= 65535):
            raise ValueError("not a UDP port: %r" % (port,))
