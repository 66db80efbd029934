# The serial console as an SMP transport: bytes from the console are fed to the SMP serial decoder, whole request
# packets go to the SMP server, responses are framed and written line by line. Text that is not an SMP line (a human
# typing, REPL noise) is ignored. Log lines are written only between frames, so they never split an SMP line.
import select
import sys

import smp_serial
from loader import smp

# bytes taken from the console per service call, so other tasks keep running; a board's UART buffer holds less (the
# ESP32's FIFO is 128 bytes), and the decoder keeps a packet's state between calls: a larger chunk only holds heap
# (4 KB held 3 KB for nothing, 1 KB still 768 bytes more than this)
_DRAIN_MAX = 256


class Console:
    def __init__(self, server, stream_in=None, stream_out=None):
        self.server = server
        self._in = stream_in if stream_in is not None else sys.stdin.buffer
        self._out = stream_out if stream_out is not None else sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(self._in, select.POLLIN)
        self.decoder = smp_serial.Decoder(smp.BUF_SIZE)
        self.decoder.on_frame = self.answer  # each request is answered from the decoder's buffer, never copied
        self._chunk = bytearray(_DRAIN_MAX)
        self._view = memoryview(self._chunk)
        self._byte = bytearray(1)
        # ipoll: MicroPython's allocation-free poll (poll() builds a list at every call); CPython's poll, which the
        # host tests run this module with, has none and its lists cost nothing that matters there
        self._ready = getattr(self._poll, "ipoll", self._poll.poll)

    def pending(self, timeout_ms=0):
        return bool(self._poll.poll(timeout_ms))

    def service(self):
        """Read what the console has (without waiting), answer every complete request. Returns bytes read."""
        # One byte per readiness check: a board's stdin blocks until a read is filled, so only a byte that poll
        # reported can be asked for. It goes through one preallocated byte into the preallocated chunk: nothing is
        # allocated per byte (read(1) made a bytes object for each, some 2,800 per upload chunk).
        n = 0
        buf = self._chunk
        one = self._byte
        readinto = self._in.readinto
        ready = self._ready
        while n < _DRAIN_MAX:
            for _ in ready(0):
                break
            else:
                break  # nothing waiting
            if not readinto(one):
                break
            buf[n] = one[0]
            n += 1
        if n:
            self.decoder.feed_bytes(self._view[:n])
        return n

    def answer(self, frame):
        rsp = self.server.respond(frame)
        if rsp is not None:
            try:
                smp_serial.write(self._out, rsp)  # line by line: no copy of the whole packet is made
            except MemoryError:  # a line's base64 found no room: the host sees no (or a broken) answer and retries
                self.server.errors += 1
            rsp = None  # its room is free for the work after the reply
            after = self.server.after_reply
            if after is not None:
                self.server.after_reply = None
                try:
                    after()
                except Exception as e:  # work after a reply must never take the console down
                    self.log("console: after-reply work failed: %r" % (e,))

    def log(self, text):
        self._out.write((text + "\r\n").encode())
