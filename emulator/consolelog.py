"""What the meter printed, for a person: STATE/console.log keeps the text the board writes on its console between
SMP frames (the loader's and the app's log lines, a crashing app's traceback, REPL output) with the SMP frames
taken out, and a line from the emulator at every boot. Bounded: past MAX_BYTES the file becomes console.log.1
(the previous one is dropped), so the two hold at most 2 x MAX_BYTES. `meter-emu console` prints its tail and
follows it.

SMP frames on the console (firmware/lib/smp_serial.py): each line of a packet starts 0x06 0x09 (the first) or
0x04 0x14 (continuations), carries base64 and ends with '\\n'; the markers may follow a partial line of text. Those
lines are dropped here; everything else is kept byte for byte."""

from __future__ import annotations

import codecs
import os
import re
import threading
from pathlib import Path
from typing import BinaryIO

MAX_BYTES = 1 << 20
_MARKS = {0x06: 0x09, 0x04: 0x14}  # first byte of a frame line's marker -> its second byte
_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_OUT, _MARK, _LINE = 0, 1, 2


class FrameFilter:
    """Streaming: feed() the console's bytes in any chunks, get back what is not SMP frame lines."""

    def __init__(self) -> None:
        self.state = _OUT
        self.first = 0  # the marker byte seen in state _MARK

    def reset(self) -> None:
        """A new boot: a frame cut off by the reset does not swallow the next boot's text."""
        self.state = _OUT

    def feed(self, data: bytes) -> bytes:
        if self.state == _OUT and 0x06 not in data and 0x04 not in data:
            return data  # the common case: text, no frame
        out = bytearray()
        for b in data:
            if self.state == _MARK:
                if b == _MARKS[self.first]:
                    self.state = _LINE
                    continue
                out.append(self.first)  # not a marker after all
                self.state = _OUT
            if self.state == _LINE:
                if b == 0x0A:
                    self.state = _OUT
                    continue
                if b in _B64 or b == 0x0D:
                    continue
                self.state = _OUT  # not base64: the frame line ended early; this byte is text again
            if b in _MARKS:
                self.state = _MARK
                self.first = b
            else:
                out.append(b)
        return bytes(out)


class ConsoleLog:
    """STATE/console.log: the filtered console, appended across runs, rotated at MAX_BYTES. Written by the wire's
    thread (the board's output) and the emulator's (boot lines)."""

    def __init__(self, path: str | os.PathLike, max_bytes: int | None = None):
        self.path = Path(path)
        self.old = self.path.with_name(self.path.name + ".1")
        self.max_bytes = MAX_BYTES if max_bytes is None else max_bytes
        self.filter = FrameFilter()
        self._lock = threading.Lock()
        self._f: BinaryIO | None = open(self.path, "ab", buffering=0)
        self._size = self._f.tell()
        self._at_line_start = True

    def write(self, data: bytes) -> None:
        with self._lock:
            self._write(self.filter.feed(data))

    def note(self, text: str) -> None:
        """A line from the emulator (a boot), on a line of its own."""
        with self._lock:
            self.filter.reset()
            line = ("" if self._at_line_start else "\n") + f"--- meter-emu: {text} ---\n"
            self._write(line.encode())

    def _write(self, data: bytes) -> None:
        if not data or self._f is None:
            return
        try:
            self._f.write(data)
        except OSError:  # a full disk: the view is a convenience, the board runs on
            return
        self._size += len(data)
        self._at_line_start = data.endswith(b"\n")
        if self._size >= self.max_bytes:
            self._f.close()
            try:
                os.replace(self.path, self.old)
                self._f = open(self.path, "ab", buffering=0)
            except OSError:
                self._f = None  # the folder went away or became read-only: no more view, the board runs on
            self._size = 0

    def close(self) -> None:
        with self._lock:
            if self._f is not None:
                self._f.close()
                self._f = None


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f]")  # C0 controls but tab, newline and ESC (colours)


class Reader:
    """console.log for `meter-emu console`: its tail (reaching into console.log.1), then what is appended (across a
    rotation), as text for a terminal: UTF-8 (bad bytes replaced), CRLF as newlines, other controls dropped (the raw
    REPL's Ctrl-D markers, a lone CR)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.f: BinaryIO | None = None
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def _text(self, data: bytes) -> str:
        return _CONTROL.sub("", self.decoder.decode(data).replace("\r\n", "\n"))

    def tail(self, lines: int) -> str:
        try:
            self.f = open(self.path, "rb")
        except FileNotFoundError:
            self.f = None
        data = self.f.read() if self.f else b""
        if lines <= 0:
            return ""
        if data.count(b"\n") < lines:
            try:
                data = self.path.with_name(self.path.name + ".1").read_bytes() + data
            except FileNotFoundError:
                pass
        text = _CONTROL.sub("", data.decode("utf-8", errors="replace").replace("\r\n", "\n"))
        return "".join(text.splitlines(keepends=True)[-lines:])

    def more(self) -> str:
        """What was appended since the last call ("" when nothing)."""
        if self.f is None:
            try:
                self.f = open(self.path, "rb")
            except FileNotFoundError:
                return ""
        out = self.f.read()
        try:
            rotated = os.stat(self.path).st_ino != os.fstat(self.f.fileno()).st_ino
        except FileNotFoundError:
            rotated = False
        if rotated:  # the file we read is console.log.1 now: its rest, then the new console.log from its start
            out += self.f.read()
            self.f.close()
            self.f = None
            return self._text(out) + self.more()
        return self._text(out)

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None
