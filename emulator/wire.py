"""A null-modem cable between a host-side pty (what users open: pyserial, smpmgr, mpremote) and the pty that is the
VM's console, pumped by a thread that throttles each direction to the line rate (10 bits per byte), injects line
faults, and delivers Ctrl-C the way a board's UART interrupt does: as an interrupt when the firmware has the
interrupt character enabled, as an ordinary byte when it has disabled it (micropython.kbd_intr(-1))."""

from __future__ import annotations

import errno
import os
import random
import select
import signal
import threading
import time
import tty
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .consolelog import ConsoleLog

CTRL_C = 0x03
CTRL_A = 0x01
CTRL_B = 0x02
RAW_REPL_BANNER = b"raw REPL; CTRL-B to exit"
BITS_PER_BYTE = 10  # 8N1: start + 8 data + stop
PENDING_MAX = 64 * 1024  # bytes kept for a side that is not reading; beyond this the oldest are lost, as on a UART
AHEAD_MAX = 0.02  # seconds of line time read ahead of the receiver (the sender's pty buffer holds the rest)
CHUNK_SECONDS = 0.002  # at most this much line time is read as one chunk
HOLD_SECONDS = 2.0  # device time stays at real time until the line has been quiet this long
# After an interrupt, bytes behind the Ctrl-C wait until the VM has left the interrupted program (it stops catching
# SIGINT at the REPL) or this many seconds: on a board the exception fires within microseconds, before the next
# byte arrives, so the interrupted program never reads what follows the Ctrl-C.
INTERRUPT_SETTLE_MAX = 1.0
# A Ctrl-C is raised by the VM at its next point (emulator/device/_emu_bus.py: SIGINT can crash this VM); a
# program that reaches none this long (a busy loop with no wait) gets SIGINT, as before.
INTERRUPT_FALLBACK = 1.0


def _unread(fd: int) -> int:
    """Bytes waiting to be read on a tty fd (FIONREAD)."""
    import fcntl
    import struct
    import termios

    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


def catches_sigint(pid: int) -> bool:
    """True when the process has a handler installed for SIGINT (MicroPython's interrupt character enabled)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    except OSError:
        pass
    return False


def interrupt(pid: int) -> bool:
    """Deliver Ctrl-C as SIGINT if the VM takes it as an interrupt now; False: it does not, send the byte instead.
    `micropython.kbd_intr(-1)` restores SIGINT's default action, so firmware that turns the interrupt off between
    this check and the signal would be ended by it (the emulator then resets the board, where a board would have
    read the byte): a window of microseconds, left open because holding the VM still while checking (SIGSTOP, then
    SIGCONT) ended a VM with status 1 in a full test run — most likely a blocking call failing with EINTR on
    resuming, which Linux does for some calls even without a handler (signal(7))."""
    if not catches_sigint(pid):
        return False
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return False
    return True


class _Direction:
    """One direction of the cable. Bytes read from the sender are stamped with the time their last bit would reach
    the far end at the line rate, and handed over then: throughput and latency both follow the baud rate."""

    def __init__(self, name: str):
        self.name = name
        self.pending = bytearray()  # arrived, waiting to be written to the receiving pty
        self.inflight: deque[tuple[float, bytes]] = deque()  # (arrival time, bytes) still on the wire
        self.line_free_at = 0.0
        self.bytes = 0
        self.handed = 0  # of `bytes`, those through the faults and handed over (the rest is in flight)
        self.lost = 0
        self.corrupted = 0
        self.dropped = 0


class Wire(threading.Thread):
    def __init__(self, baud: int, on_activity: Callable[[bool], None], vm_pid: Callable[[], int | None],
                 seed: int | None = None, console_log: str | None = None, view: ConsoleLog | None = None):
        super().__init__(name="wire", daemon=True)
        self.baud = baud
        self.on_activity = on_activity
        self.vm_pid = vm_pid
        self.error_rate = 0.0  # probability per byte of one flipped bit
        self.drop_rate = 0.0  # probability per byte of losing it
        self.rng = random.Random(seed)  # seeded (`run --seed`): the same faults on the same bytes
        self.host_master, self.host_slave = os.openpty()
        self.dev_master, self.dev_slave = os.openpty()
        for fd in (self.host_slave, self.dev_slave):
            tty.setraw(fd)
        for fd in (self.host_master, self.dev_master):
            os.set_blocking(fd, False)
        self.path = os.ttyname(self.host_slave)
        self.to_dev = _Direction("host->device")
        self.to_host = _Direction("device->host")
        self._last_activity = 0.0
        # asks the VM, over the bus, to raise the interrupt at its next point; False: no bus (SIGINT then)
        self.on_interrupt: Callable[[], bool] | None = None
        self._fallback: tuple[int, float] | None = None  # (pid, when SIGINT is sent) while the VM has not taken it
        # how console Ctrl-Cs were delivered: raised at a point, dropped there (interrupt off by then), by SIGINT
        self.interrupts = {"at_point": 0, "dropped": 0, "sigint": 0}
        self._settle: tuple[int, float] | None = None  # (pid, deadline) while an interrupt is being taken
        # whether the VM's REPL is in raw mode: Ctrl-D there soft-resets a board back into the raw REPL
        self.raw_repl = False
        self._raw_asked = False  # the host sent Ctrl-A since its last Ctrl-B
        self._out_tail = b""
        # `run --console-log FILE` (or METERKIT_EMU_CONSOLE_LOG=FILE): a copy of everything the board prints
        log = console_log or os.environ.get("METERKIT_EMU_CONSOLE_LOG")
        self._tee = open(log, "ab", buffering=0) if log else None
        # STATE/console.log (`meter-emu console`): what the board printed, before the line's faults, SMP frames out
        self.view = view
        self._held = False
        self._scheduled: list[tuple[float, bytes]] = []  # (monotonic time, bytes) from send_from_host
        self._injected: list[tuple[_Direction, bytes]] = []  # from inject_to_*: appended by the wire thread
        self._scheduled_lock = threading.Lock()
        # the input gate of a recorded or replayed run (emulator/gate.py): bytes for the device go to `gate`, not to
        # the VM's pty, and what the device prints is also handed to `on_output`
        self.gate: Callable[[bytes], None] | None = None
        self.on_output: Callable[[bytes], None] | None = None
        self._read_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()

    # the VM is started with this fd as stdin/stdout/stderr
    @property
    def device_fd(self) -> int:
        return self.dev_slave

    def stop(self) -> None:
        self._stop.set()
        os.write(self._wake_w, b"x")

    def inject_to_device(self, data: bytes) -> None:
        """Bytes the board's own start-up feeds its REPL (re-entering the raw REPL after a raw soft reset)."""
        with self._scheduled_lock:  # the wire thread owns the buffers (it may be writing from one right now)
            self._injected.append((self.to_dev, data))
        os.write(self._wake_w, b"x")

    def send_from_host(self, at: float, data: bytes) -> None:
        """Bytes that arrive from the host's side of the line at monotonic time `at`, as if a host had sent them
        (`ctl reset --ctrl-c-after`): line faults apply, and a Ctrl-C interrupts as a typed one would."""
        with self._scheduled_lock:
            self._scheduled.append((at, data))
            self._scheduled.sort()
        os.write(self._wake_w, b"x")

    def inject_to_host(self, data: bytes) -> None:
        """Text the 'board' itself prints (e.g. the soft-reboot banner), queued after pending device output."""
        with self._scheduled_lock:
            self._injected.append((self.to_host, data))
        os.write(self._wake_w, b"x")

    def stats(self) -> dict:
        return {
            d.name: {"bytes": d.bytes, "corrupted": d.corrupted, "dropped": d.dropped, "overflow_lost": d.lost}
            for d in (self.to_dev, self.to_host)
        }

    def write_device(self, data: bytes, timeout: float) -> None:
        """The input gate's hand-over: `data` written to the VM's side of the line and readable there when this
        returns (the tty layer moves written bytes to the reader asynchronously)."""
        before = _unread(self.dev_slave)
        view = memoryview(data)
        end = time.monotonic() + timeout
        while view and time.monotonic() < end:
            try:
                n = os.write(self.dev_master, view)
            except BlockingIOError:
                n = 0
            view = view[n:]
            if view:
                time.sleep(0.001)
        while _unread(self.dev_slave) < before + len(data) and time.monotonic() < end:
            time.sleep(0.0005)

    def device_unread(self) -> int:
        """Console bytes written to the VM's side that the firmware has not read yet."""
        return _unread(self.dev_slave)

    def settle_output(self, timeout: float) -> None:
        """Wait until everything the device printed has been through the wire (the end of a recorded run)."""
        end = time.monotonic() + timeout
        d = self.to_host
        while time.monotonic() < end:
            with self._read_lock:
                if _unread(self.dev_master) == 0 and d.handed == d.bytes:
                    return
            time.sleep(0.01)

    def flush_device_input(self) -> None:
        """A board's UART receive buffer is empty after a reset: drop what the previous run did not read."""
        import termios

        termios.tcflush(self.dev_slave, termios.TCIFLUSH)

    def _faults(self, data: bytes, d: _Direction) -> bytes:
        if not (self.error_rate or self.drop_rate):
            return data
        out = bytearray()
        for b in data:
            if self.drop_rate and self.rng.random() < self.drop_rate:
                d.dropped += 1
                continue
            if self.error_rate and self.rng.random() < self.error_rate:
                b ^= 1 << self.rng.randrange(8)
                d.corrupted += 1
            out.append(b)
        return bytes(out)

    def _activity(self) -> None:
        self._last_activity = time.monotonic()
        if not self._held:
            self._held = True
            self.on_activity(True)

    def _deliver_to_device(self, data: bytes) -> None:
        if CTRL_C in data:
            pid = self.vm_pid()
            if pid is not None and self._settle is None and catches_sigint(pid):
                # the first Ctrl-C interrupts; what follows it waits until the interrupt has been taken
                before, _, after = data.partition(bytes([CTRL_C]))
                self.to_dev.pending += before
                self._drain(self.to_dev, self.dev_master)
                if self.on_interrupt is not None and self.on_interrupt():  # raised by the VM at its next point
                    self._settle = (pid, time.monotonic() + INTERRUPT_SETTLE_MAX)
                    self._fallback = (pid, time.monotonic() + INTERRUPT_FALLBACK)
                elif interrupt(pid):
                    self.interrupts["sigint"] += 1
                    self._settle = (pid, time.monotonic() + INTERRUPT_SETTLE_MAX)
                else:  # the firmware turned the interrupt off just now: the byte is data
                    self.to_dev.pending += bytes([CTRL_C])
                self.to_dev.pending += after
                return
        self.to_dev.pending += data

    def interrupt_taken(self, raised: bool) -> None:
        """The VM took the Ctrl-C at a point (raised or, the interrupt being off by then, dropped): no SIGINT."""
        self._fallback = None
        self.interrupts["at_point" if raised else "dropped"] += 1

    def _drain(self, d: _Direction, fd: int) -> None:
        if not d.pending:
            return
        try:
            n = os.write(fd, d.pending)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EIO):
                n = 0
            else:
                raise
        del d.pending[:n]
        if len(d.pending) > PENDING_MAX:
            d.lost += len(d.pending) - PENDING_MAX
            del d.pending[: len(d.pending) - PENDING_MAX]

    def run(self) -> None:
        rate = self.baud / BITS_PER_BYTE
        chunk = max(1, int(rate * CHUNK_SECONDS))
        while not self._stop.is_set():
            now = time.monotonic()
            if self._held and now - self._last_activity > HOLD_SECONDS:
                self._held = False
                self.on_activity(False)
            self._arrive(now)
            rl = [self._wake_r]
            if self.to_dev.line_free_at - now < AHEAD_MAX:
                rl.append(self.host_master)
            if self.to_host.line_free_at - now < AHEAD_MAX:
                rl.append(self.dev_master)
            wl = []
            if self.to_dev.pending and self._settle is None:
                wl.append(self.dev_master)
            if self.to_host.pending:
                wl.append(self.host_master)
            due = [d.inflight[0][0] for d in (self.to_dev, self.to_host) if d.inflight]
            with self._scheduled_lock:
                if self._scheduled:
                    due.append(self._scheduled[0][0])
            if self._settle is not None or self._fallback is not None:
                due.append(now + 0.002)
            if len(rl) < 3:  # a direction is ahead of its line: wake when it has drained
                due.append(min(d.line_free_at for d in (self.to_dev, self.to_host)) - AHEAD_MAX / 2)
            timeout = max(0.0, min(due) - now) if due else (0.25 if self._held else 1.0)
            try:
                r, w, _ = select.select(rl, wl, [], timeout)
            except InterruptedError:
                continue
            if self._wake_r in r:
                os.read(self._wake_r, 64)
            now = time.monotonic()
            if self.host_master in r:
                self._pump(self.host_master, self.to_dev, now, rate, chunk, to_device=True)
            if self.dev_master in r:
                self._pump(self.dev_master, self.to_host, now, rate, chunk, to_device=False)
            self._arrive(time.monotonic())
            if self._fallback is not None:
                fpid, fat = self._fallback
                if not catches_sigint(fpid):
                    self._fallback = None  # taken (or the interrupt turned off): no SIGINT
                elif time.monotonic() > fat:
                    self._fallback = None
                    if interrupt(fpid):
                        self.interrupts["sigint"] += 1
                    if self._settle is not None:
                        self._settle = (fpid, time.monotonic() + INTERRUPT_SETTLE_MAX)
            if self._settle is not None:
                pid, until = self._settle
                if time.monotonic() > until or not catches_sigint(pid):
                    self._settle = None
            if self.to_dev.pending and self._settle is None:
                self._drain(self.to_dev, self.dev_master)
            if self.to_host.pending:
                self._drain(self.to_host, self.host_master)

    def _arrive(self, now: float) -> None:
        """Hand over the bytes whose last bit has reached the far end."""
        with self._scheduled_lock:
            for d, data in self._injected:
                d.pending += data
                if d is self.to_host and self.view is not None:
                    self.view.write(data)
            self._injected.clear()
            while self._scheduled and self._scheduled[0][0] <= now:
                self.to_dev.inflight.appendleft((now, self._scheduled.pop(0)[1]))
        for d, to_device in ((self.to_dev, True), (self.to_host, False)):
            while d.inflight and d.inflight[0][0] <= now and (not to_device or self._settle is None):
                _, data = d.inflight.popleft()
                n = len(data)
                if not to_device and self.view is not None:
                    self.view.write(data)
                data = self._faults(data, d)
                if to_device and self.gate is not None:
                    self.gate(data)
                elif to_device:
                    self._deliver_to_device(data)
                else:
                    d.pending += data
                    if self._tee is not None:
                        self._tee.write(data)
                    if self.on_output is not None:
                        self.on_output(data)
                d.handed += n

    def _pump(self, fd: int, d: _Direction, now: float, rate: float, chunk: int, to_device: bool) -> None:
        with self._read_lock:  # a read and its count together (settle_output looks at both)
            try:
                data = os.read(fd, chunk)
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EIO):
                    return
                raise
            d.bytes += len(data)
        if not data:
            return
        self._activity()
        if to_device and CTRL_B in data:
            self.raw_repl = False
            self._raw_asked = False
        if to_device and CTRL_A in data:
            self._raw_asked = True
        if not to_device:
            seen = self._out_tail + data
            # only a raw REPL the host asked for (Ctrl-A): text the firmware prints cannot make the emulator treat
            # the next exit as mpremote's soft reset and type Ctrl-A into the board
            if RAW_REPL_BANNER in seen and self._raw_asked:
                self.raw_repl = True
            self._out_tail = seen[-len(RAW_REPL_BANNER):]
        d.line_free_at = max(now, d.line_free_at) + len(data) / rate
        d.inflight.append((d.line_free_at, data))
