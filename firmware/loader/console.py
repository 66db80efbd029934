# The serial console as an SMP transport: bytes from the console are fed to the SMP serial decoder, whole request
# packets go to the SMP server, responses are framed and written in one piece. Text that is not an SMP line (a human
# typing, REPL noise) is ignored. Log lines are written only between frames, so they never split an SMP line.
import select
import sys

import smp_serial
from loader import smp

_DRAIN_MAX = 4096  # bytes taken from the console per service call, so other tasks keep running


class Console:
    def __init__(self, server, stream_in=None, stream_out=None):
        self.server = server
        self._in = stream_in if stream_in is not None else sys.stdin.buffer
        self._out = stream_out if stream_out is not None else sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(self._in, select.POLLIN)
        self.decoder = smp_serial.Decoder(smp.BUF_SIZE)
        self._chunk = bytearray(_DRAIN_MAX)

    def pending(self, timeout_ms=0):
        return bool(self._poll.poll(timeout_ms))

    def service(self):
        """Read what the console has (without waiting), answer every complete request. Returns bytes read."""
        n = 0
        buf = self._chunk
        read = self._in.read
        poll = self._poll.poll
        while n < _DRAIN_MAX and poll(0):
            b = read(1)
            if not b:
                break
            buf[n] = b[0]
            n += 1
        if n:
            frames = self.decoder.feed_bytes(memoryview(buf)[:n])
            if frames:
                for frame in frames:
                    self.answer(frame)
        return n

    def answer(self, frame):
        rsp = self.server.handle(frame)
        if rsp is not None:
            self._out.write(smp_serial.encode(rsp))
            after = self.server.after_reply
            if after is not None:
                self.server.after_reply = None
                try:
                    after()
                except Exception as e:  # work after a reply must never take the console down
                    self.log("console: after-reply work failed: %r" % (e,))

    def log(self, text):
        self._out.write((text + "\r\n").encode())
