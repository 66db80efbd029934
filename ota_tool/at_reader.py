"""What a Quectel modem sends on its AT port, cut into events: lines, the `> ` send prompt, and the raw bytes of a
`+QIRD: <len>,"<ip>",<port>` read. Binary-safe and in bounded memory whatever arrives: bytes are fed in pieces of
any size (a line, a datagram or a prompt may be split anywhere), a datagram's bytes (CR, LF and NUL included) are
counted, never scanned for line ends, and a line longer than LINE_MAX is dropped and counted. No I/O here: the
driver is ota_tool/modem_link.py.

Lines end at LF; CRs and spaces around them are dropped, so `AT\r\r\n` (a command's echo) and `\r\nOK\r\n` read alike. Empty
lines are skipped; echoed commands (lines starting `AT`) are dropped."""

from __future__ import annotations

import re
from dataclasses import dataclass

LINE_MAX = 1024  # longer lines are no answer the driver waits for: dropped and counted in `overlong`
DATA_MAX = 1500  # AT+QIRD reads at most 1,500 bytes; a longer announced read is a broken header, read as a line
PROMPT = b">"
_QIRD = re.compile(rb'\+QIRD: (\d+),"?([^",]*)"?,(\d+)')  # the address quoted (BG95) or not


@dataclass(frozen=True)
class Line:
    text: str  # the line without CR/LF, decoded as Latin-1 (every byte kept)


@dataclass(frozen=True)
class Prompt:
    """The `> ` after AT+QISEND: the modem waits for the datagram's bytes."""


@dataclass(frozen=True)
class Datagram:
    """One datagram read with AT+QIRD: its sender and bytes (the `+QIRD:` line itself is not reported)."""

    ip: str
    port: int
    data: bytes


Event = Line | Prompt | Datagram


class AtReader:
    """Feed it bytes, get events. `expect_prompt`: set by the driver while an AT+QISEND waits for `> ` (a line
    starting `>` is otherwise no prompt). Counters: `overlong` (lines dropped for their length)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._data: tuple[str, int, int] | None = None  # (ip, port, length) while a datagram's bytes come
        self.expect_prompt = False
        self.overlong = 0
        self._skipping = False  # inside an overlong line: drop until its LF

    def feed(self, chunk: bytes) -> list[Event]:
        self._buf += chunk
        out: list[Event] = []
        while True:
            ev = self._next()
            if ev is None:
                return out
            out.append(ev)

    def _next(self) -> Event | None:
        buf = self._buf
        if self._data is not None:
            ip, port, n = self._data
            if len(buf) < n:
                return None
            data = bytes(buf[:n])
            del buf[:n]
            self._data = None
            return Datagram(ip, port, data)
        while True:
            if self.expect_prompt:
                lead = len(buf) - len(buf.lstrip(b"\r\n"))
                if buf[lead : lead + 1] == PROMPT:
                    self.expect_prompt = False
                    end = lead + 1 + (buf[lead + 1 : lead + 2] == b" ")
                    del buf[:end]
                    return Prompt()
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > LINE_MAX + 2:  # no LF yet and too long (CR LF aside): drop it and the rest to its LF
                    if not self._skipping:
                        self.overlong += 1
                    self._skipping = True
                    buf.clear()
                return None
            raw = bytes(buf[:nl])
            del buf[: nl + 1]
            if self._skipping:
                self._skipping = False
                continue
            line = raw.strip(b"\r ")  # a prompt's space may come apart from its ">"
            if not line:
                continue
            if len(line) > LINE_MAX:
                self.overlong += 1
                continue
            if line[:2].upper() == b"AT":
                continue  # the modem's echo of a command
            m = _QIRD.fullmatch(line)
            if m is not None and 0 < int(m.group(1)) <= DATA_MAX:
                self._data = (m.group(2).decode("latin-1"), int(m.group(3)), int(m.group(1)))
                return self._next()
            return Line(line.decode("latin-1"))
