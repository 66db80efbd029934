# The meter's DLMS port on the board's uarts.optical (an optical probe head or an RS-485 transceiver):
# machine.UART(uarts.optical.id) reaches a pty on the host (emulator/optical.py: what a user's DLMS client opens, as
# it would open a probe head's /dev/ttyUSB0) through one loopback TCP connection. The line is a cable, not a model:
# no line rate and no faults (the console's wire has those). Bytes from the host arrive at wall moments, as console
# bytes and datagrams do; after the meter answers, device time runs at most at 1x until the client's next bytes come
# (at most ANSWER_US of wall time), so that its next frame comes before the link's inactivity timeout at --speed max
# however long the client takes to make it. Recorded runs do not
# gate this input (nor the network's): a run with a DLMS client does not replay.
import io
import select
import socket

import _emu_bus as bus
import _emu_clock as clock

_cfg = bus.config
UART_ID = _cfg["board"]["uarts"]["optical"]["id"]
_PORT = _cfg["optical"]
RX_MAX = 2048  # bytes from the host the MCU's buffer holds; more are lost, as on a UART nobody drains
_READ = 256
ANSWER_US = 5000000  # as the modem's NET_ANSWER_US (emulator/device/_emu_modem.py): it costs wall time only after a
# session's last answer
_MP_STREAM_POLL = 3
_POLLIN = 1
_POLLOUT = 4


class _Conn:
    """The connection to the host, as the select shim's net hook expects it (`sock`)."""

    def __init__(self, sock):
        self.sock = sock


class Line:
    def __init__(self):
        # the MCU's receive buffer, taken once with the shims' share (a board's UART driver keeps it outside the GC
        # heap): bytes wait in rx[head:tail], and taking them allocates nothing the firmware's heap would feel
        self.rx = bytearray(RX_MAX)
        self.head = 0
        self.tail = 0
        self._buf = bytearray(_READ)
        self.lost = 0  # bytes from the host beyond the full buffer
        self.got = 0  # bytes from the host
        self.sent = 0  # bytes the meter wrote that reached the host's connection
        self.unsent = 0  # bytes the meter wrote that did not (the connection gone or refusing them)
        self.conn = None
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.connect(socket.getaddrinfo("127.0.0.1", _PORT)[0][-1])
            s.setblocking(False)
            self.conn = _Conn(s)
        except OSError:  # the host's port is gone (the emulator stopping): the line is dead, not the board
            self.conn = None

    def input(self):
        c = self.conn
        while c is not None:
            try:
                n = c.sock.readinto(self._buf)
            except OSError:
                return
            if n is None:
                return
            if not n:  # the host closed its end
                self.conn = None
                c.sock.close()
                return
            self.got += n
            clock.hold_end("optical")  # the client answered
            room = RX_MAX - (self.tail - self.head)
            if n > room:
                self.lost += n - room
                n = room
            rx = memoryview(self.rx)
            if self.tail + n > RX_MAX:  # what waits moves to the front (rare: the port reads what it has)
                k = self.tail - self.head
                rx[:k] = rx[self.head:self.tail]
                self.head, self.tail = 0, k
            rx[self.tail:self.tail + n] = memoryview(self._buf)[:n]
            self.tail += n

    def take(self, n):
        """The first n waiting bytes, as a view (valid until the next input)."""
        h = self.head
        self.head = h + n
        if self.head == self.tail:
            self.head = self.tail = 0
        return memoryview(self.rx)[h:h + n]

    def send(self, buf):
        c = self.conn
        mv = memoryview(buf)
        if c is None:
            self.unsent += len(mv)
            return
        while len(mv):
            try:
                k = c.sock.write(mv)
            except OSError:
                self.unsent += len(mv)
                return
            if k:
                self.sent += k
                mv = mv[k:]
        clock.hold_for(ANSWER_US, "optical")

    def status(self):
        """The line's counters, for the host's status query."""
        return {"got": self.got, "lost": self.lost, "waiting": self.tail - self.head, "sent": self.sent,
                "unsent": self.unsent, "connected": self.conn is not None}


LINE = Line()


class Port(io.IOBase):
    """machine.UART(uarts.optical.id): pollable by select.poll, so asyncio waits for it as for any stream."""

    def __init__(self, id, baudrate=9600, **kw):
        self._id = id
        self.init(baudrate, **kw)

    def init(self, baudrate=9600, **kw):
        self._baud = baudrate

    def deinit(self):
        pass

    def any(self):
        return LINE.tail - LINE.head

    def read(self, n=-1):
        have = LINE.tail - LINE.head
        k = have if n is None or n < 0 or n > have else n
        if k == 0:
            return None
        return bytes(LINE.take(k))

    def readinto(self, buf, n=-1):
        k = min(len(buf) if n is None or n < 0 else min(n, len(buf)), LINE.tail - LINE.head)
        if k == 0:
            return None
        buf[:k] = LINE.take(k)
        return k

    def write(self, buf):
        bus.with_room(LINE.send, buf)
        return len(buf)

    def flush(self):
        pass

    def txdone(self):
        return True

    def ioctl(self, req, arg):
        if req == _MP_STREAM_POLL:
            ready = 0
            if arg & _POLLIN and LINE.tail > LINE.head:
                ready |= _POLLIN
            if arg & _POLLOUT:
                ready |= _POLLOUT
            return ready
        return -1


def net_sockets():
    return [LINE.conn] if LINE.conn is not None else []


def net_input(s):
    if s is LINE.conn:
        LINE.input()


select.net.append(__import__("sys").modules[__name__])
