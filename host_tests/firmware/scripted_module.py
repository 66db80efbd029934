"""A scripted cellular module for the modem driver's tests, the same on CPython and in the MicroPython VM.

The test's `answer(command)` function plays the module: it gets each command line the driver writes (bytes, without
the CR) and returns the bytes the module sends back (or b""). `push(bytes)` sends unsolicited output at any time.
`cuts` (a list of sizes, cycled) limits how many bytes one read may take, so the same output reaches the driver cut
at chosen places. On the VM the driver reads through MicroPython's real `asyncio.StreamReader` over an `io.IOBase`
stream that asyncio polls (its ioctl), exactly as over a board's UART; on CPython through a small stream with the
same async readinto/write/drain.
"""

import asyncio
import sys

MICROPYTHON = sys.implementation.name == "micropython"


class Script:
    def __init__(self, answer, cuts=None):
        self.answer = answer
        self.cuts = cuts
        self.out = bytearray()  # what the module has sent and the driver has not read yet
        self.commands = []  # every command line the driver wrote
        self.raw = bytearray()  # every byte the driver wrote
        self._in = bytearray()
        self._cut = 0
        self.wake = None

    def push(self, data):
        self.out += data
        if self.wake is not None:
            self.wake()

    def received(self, data):
        self.raw += data
        self._in += data
        while True:
            i = self._in.find(b"\r")
            if i < 0:
                return
            line = bytes(self._in[:i])
            self._in = self._in[i + 1 :]
            self.commands.append(line)
            reply = self.answer(line)
            if reply:
                self.push(reply)

    def take(self, buf):
        n = min(len(buf), len(self.out))
        if self.cuts and n:
            n = min(n, self.cuts[self._cut % len(self.cuts)])
            self._cut += 1
        buf[:n] = self.out[:n]
        self.out = self.out[n:]
        return n


if MICROPYTHON:
    import io

    _POLL = 3
    _POLL_RD = 1
    _POLL_WR = 4

    class _Uart(io.IOBase):
        def __init__(self, script):
            self.script = script

        def ioctl(self, op, arg):
            if op == _POLL:
                ready = 0
                if arg & _POLL_RD and self.script.out:
                    ready |= _POLL_RD
                if arg & _POLL_WR:
                    ready |= _POLL_WR
                return ready
            return -1  # no file descriptor (asyncio then polls this object through ioctl)

        def readinto(self, buf):
            n = self.script.take(buf)
            return n if n else None

        def write(self, data):
            self.script.received(bytes(data))
            return len(data)

    def stream(script):
        return asyncio.StreamReader(_Uart(script))

else:

    class _Stream:
        def __init__(self, script):
            self.script = script
            self._ready = asyncio.Event()
            script.wake = self._ready.set

        async def readinto(self, buf):
            while not self.script.out:
                self._ready.clear()
                await self._ready.wait()
            return self.script.take(buf)

        def write(self, data):
            self.script.received(bytes(data))

        async def drain(self):
            await asyncio.sleep(0)

    def stream(script):
        return _Stream(script)


def run(main):
    """asyncio.run(main()) on a fresh event loop (the VM keeps one loop across asyncio.run calls)."""
    if MICROPYTHON:
        asyncio.new_event_loop()
    return asyncio.run(main())


def allocated():
    """Bytes of heap in use after a collection (gc.mem_alloc on the VM, tracemalloc's count on CPython)."""
    import gc

    gc.collect()
    if MICROPYTHON:
        return gc.mem_alloc()
    import tracemalloc

    return tracemalloc.get_traced_memory()[0]


def start_counting():
    if not MICROPYTHON:
        import tracemalloc

        tracemalloc.start()


def stop_counting():
    if not MICROPYTHON:
        import tracemalloc

        tracemalloc.stop()


class Pin:
    """A power-key pin that records its levels; `on_pulse` runs when it goes back low after a high."""

    def __init__(self, on_pulse=None):
        self.levels = []
        self.on_pulse = on_pulse

    def value(self, v):
        if v == 0 and self.levels and self.levels[-1] == 1 and self.on_pulse is not None:
            self.on_pulse()
        self.levels.append(v)


class Bc660k:
    """A well-behaved BC660K for the scripts: registered, opens sockets, SEND OK; tests override parts of it."""

    def __init__(self, stat=1):
        self.stat = stat
        self.script = None
        self.answering = True
        self.sent = []  # hex of each AT+QISEND

    def __call__(self, cmd):
        if not self.answering:
            return b""
        if cmd == b"AT+CEREG?":
            return b"\r\n+CEREG: 1,%d\r\n\r\nOK\r\n" % self.stat
        if cmd.startswith(b"AT+QIOPEN="):
            sid = cmd[len(b"AT+QIOPEN=0,") :].split(b",")[0]
            return b"\r\nOK\r\n\r\n+QIOPEN: " + sid + b",0\r\n"
        if cmd.startswith(b"AT+QISEND="):
            self.sent.append(cmd.split(b",")[2].strip(b'"'))
            return b"\r\nOK\r\n\r\nSEND OK\r\n"
        return b"\r\nOK\r\n"


def recv_urc(sid, data):
    import binascii

    return b'\r\n+QIURC: "recv",%d,%d,"%s"\r\n' % (sid, len(data), binascii.hexlify(data).upper())
