"""CPython stand-in for MicroPython's `deflate` module (decompression only): DeflateIO over a stream with
readinto/read, in RAW, ZLIB or GZIP format, with the window size the device would use."""

import zlib

AUTO = 0
RAW = 1
ZLIB = 2
GZIP = 3


class DeflateIO:
    def __init__(self, stream, format=AUTO, wbits=0, close=False):
        bits = wbits or 15
        self._stream = stream
        self._d = zlib.decompressobj({RAW: -bits, ZLIB: bits, GZIP: 16 + bits}.get(format, 32 + bits))
        self._buf = b""
        self._eof = False

    def _fill(self, want):
        while len(self._buf) < want and not self._eof:
            if self._d.eof:
                self._eof = True
                break
            chunk = self._d.unconsumed_tail or self._stream.read(512)
            if not chunk:
                self._eof = True
                break
            try:
                self._buf += self._d.decompress(chunk, max(want - len(self._buf), 1))
            except zlib.error as e:
                raise OSError(22, f"corrupt deflate stream: {e}") from None

    def read(self, n=-1):
        if n is None or n < 0:
            self._fill(1 << 62)
        else:
            self._fill(n)
        n = len(self._buf) if n is None or n < 0 else n
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def readinto(self, buf):
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def close(self):
        pass
