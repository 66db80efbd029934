"""The field engineer's USB NB-IoT modem: a Quectel BG95-dialect AT modem on a pty (what /dev/ttyUSB2 is on a laptop),
whose UDP datagrams leave on real loopback sockets on the modem's own address in 127.0.0.0/8, through the same link
model as the meter's module (emulator/device/_emu_link.py), here on the host's monotonic clock. What it answers is
listed in docs/emulator.md ("The field engineer's modem")."""

from __future__ import annotations

import heapq
import json
import os
import select
import socket
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path

from .device import _emu_link as linkmodel

RDY_S = 0.3  # start to RDY
REGISTER_S = 1.0  # start to +CEREG: 1 (the engineer's modem sits in good coverage)
CONTEXT = 1  # BG95 contexts are 1..16; the modem's single PDP context
SOCKETS = 12  # connectID 0..11
SEND_MAX = 1460  # bytes per AT+QISEND on a "UDP SERVICE" socket
READ_MAX = 1500  # AT+QIRD's default and maximum read length
IN_FLIGHT_MAX = 1024  # datagrams on their way through the link; more are dropped (a flood)
RX_QUEUE_MAX = 64  # datagrams a socket holds unread; more are dropped (the module's receive buffer)
LINE_MAX = 1100
E_PARAM = 50
E_SOCK_PARAM = 552
E_SOCK_IN_USE = 563
E_SOCK_OPEN_FAIL = 566
E_NO_PDN = 304
E_NO_SIM = 10
# what the network does with the modem's registration (`meter-emu modem --registration`): its +CEREG stat after
# REGISTER_S (before it, 2: searching)
REGISTRATION = {"home": 1, "roaming": 5, "searching": 2, "denied": 3}
STAT_SEARCHING = 2
E_NETWORK_DOWN = 570  # +QIOPEN <err> with no active PDP context (the <err> numbers follow STANDARDS.md / issue 18)


@dataclass
class _Sock:
    sid: int
    sock: socket.socket
    lport: int
    rx: list[tuple[bytes, str, int]] = field(default_factory=list)
    urc_pending: bool = False  # "+QIURC: "recv",<id>" said and not yet drained


class FieldModem:
    """The modem's state and its pty. `serve_forever()` runs it; `path` is the pty's slave to open (pyserial)."""

    def __init__(self, address: str, profile: str = "none", seed: int = 0, registration: str = "home",
                 sim: bool = True):
        self.address = address
        self.final_stat = REGISTRATION[registration]
        self.stat = STAT_SEARCHING
        self.sim = sim
        self.apn = ""
        self.link = linkmodel.Link(linkmodel.profile(profile), seed)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        self.path = os.ttyname(self.slave)
        self.t0 = time.monotonic()
        self.echo = True
        self.cmee = 0
        self.cereg_n = 0
        self.registered = False
        self.context = False
        self.socks: dict[int, _Sock] = {}
        self._said_rdy = False
        self._line = bytearray()
        self._prompt: tuple[int, int, str, int] | None = None  # (sid, len, ip, port) while waiting for data
        self._data = bytearray()
        self._events: list[tuple[int, int, str, tuple]] = []  # (due µs, seq, kind, arg)
        self._seq = 0
        self.stats = {"up": 0, "down": 0, "lost": 0, "dropped": 0, "send_fail": 0}
        self.stopping = False

    # -- time ----------------------------------------------------------------------------------------------------
    def now_us(self) -> int:
        return int((time.monotonic() - self.t0) * 1e6)

    def _at(self, due: int, kind: str, arg: tuple = ()) -> None:
        self._seq += 1
        heapq.heappush(self._events, (due, self._seq, kind, arg))

    # -- the pty -------------------------------------------------------------------------------------------------
    def _say(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        try:
            os.write(self.master, data)
        except OSError:
            pass

    def _line_out(self, text: str) -> None:
        self._say("\r\n" + text + "\r\n")

    def serve_forever(self) -> None:
        while not self.stopping:
            self.step(0.05)

    def step(self, timeout: float) -> None:
        now = self.now_us()
        if not self._said_rdy and now >= RDY_S * 1e6:
            self._said_rdy = True
            self._line_out("RDY")
        if self.stat != self.final_stat and now >= REGISTER_S * 1e6:
            self.stat = self.final_stat
            self.registered = self.stat in (1, 5)
            if self.cereg_n:
                self._line_out(f"+CEREG: {self.stat}")
        self._run_events(now)
        wait = timeout
        if self._events:
            wait = max(0.0, min(wait, (self._events[0][0] - now) / 1e6))
        fds = [self.master] + [s.sock for s in self.socks.values()]
        ready, _, _ = select.select(fds, [], [], wait)
        for r in ready:
            if r == self.master:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    data = b""
                self._input(data)
            else:
                s = next(x for x in self.socks.values() if x.sock is r)
                self._net_input(s)

    def _run_events(self, now: int) -> None:
        while self._events and self._events[0][0] <= now:
            _, _, kind, arg = heapq.heappop(self._events)
            if kind == "tx":
                sid, data, dest = arg
                s = self.socks.get(sid)
                if s is not None:
                    try:
                        s.sock.sendto(data, dest)
                        self.stats["up"] += 1
                    except OSError:
                        self.stats["lost"] += 1
            elif kind == "rx":
                sid, data, ip, port = arg
                s = self.socks.get(sid)
                if s is None:
                    continue
                if len(s.rx) >= RX_QUEUE_MAX:
                    self.stats["dropped"] += 1
                    continue
                s.rx.append((data, ip, port))
                self.stats["down"] += 1
                if not s.urc_pending:
                    s.urc_pending = True
                    self._line_out(f'+QIURC: "recv",{sid}')

    def _net_input(self, s: _Sock) -> None:
        while True:
            try:
                data, (ip, port) = s.sock.recvfrom(65535)
            except (BlockingIOError, OSError):
                return
            if len(self._events) >= IN_FLIGHT_MAX:
                self.stats["dropped"] += 1
                continue
            _, got = self.link.send(linkmodel.DOWN, self.now_us(), len(data), flow=(ip, port))
            if not got:
                self.stats["lost"] += 1
            for d in got:
                self._at(d, "rx", (s.sid, data, ip, port))

    # -- commands ------------------------------------------------------------------------------------------------
    def _input(self, data: bytes) -> None:
        for b in data:
            if self._prompt is not None:
                self._data.append(b)
                if len(self._data) == self._prompt[1]:
                    self._send_data(bytes(self._data))
                continue
            if self.echo:
                self._say(bytes([b]))
            if b == 0x0D:
                line = bytes(self._line)
                self._line = bytearray()
                self._command(line)
            elif b != 0x0A and len(self._line) <= LINE_MAX:
                self._line.append(b)

    def _error(self, code: int) -> str:
        return "ERROR" if self.cmee == 0 else f"+CME ERROR: {code}"

    def _command(self, line: bytes) -> None:
        text = line.decode(errors="replace").strip()
        up = text.upper()
        if not up.startswith("AT"):
            return
        if len(line) > LINE_MAX:
            self._line_out("ERROR")
            return
        body, ubody = text[2:], up[2:]
        lines: list[str] = []
        res = self._run(body, ubody, lines)
        for ln in lines:
            self._line_out(ln)
        if res:
            self._line_out(res)

    def _run(self, body: str, up: str, lines: list[str]) -> str | None:
        if up == "":
            return "OK"
        if up in ("E0", "E1"):
            self.echo = up == "E1"
            return "OK"
        if up == "I":
            lines.extend(["Quectel", "BG95-M3", "Revision: BG95M3LAR02A03 (emulated)"])
            return "OK"
        name, sep, args = up.partition("=")
        raw = body[len(name) + 1 :] if sep else ""
        query = name.endswith("?")
        name = name.rstrip("?")
        if name == "+CMEE":
            if query:
                lines.append(f"+CMEE: {self.cmee}")
                return "OK"
            if args not in ("0", "1", "2"):
                return self._error(E_PARAM)
            self.cmee = int(args)
            return "OK"
        if name == "+CPIN" and query:
            if not self.sim:
                return self._error(E_NO_SIM)
            lines.append("+CPIN: READY")
            return "OK"
        if name == "+CEREG":
            if query:
                lines.append(f"+CEREG: {self.cereg_n},{self.stat}")
                return "OK"
            if args not in ("0", "1", "2"):
                return self._error(E_PARAM)
            self.cereg_n = int(args)
            return "OK"
        if name == "+CGATT" and query:
            lines.append(f"+CGATT: {1 if self.registered else 0}")
            return "OK"
        if name == "+CSQ":
            lines.append("+CSQ: 24,99" if self.registered else "+CSQ: 99,99")
            return "OK"
        if name == "+QIACT":
            if query:
                if self.context:
                    lines.append(f'+QIACT: {CONTEXT},1,1,"{self.address}"')
                return "OK"
            if args != str(CONTEXT):
                return self._error(E_PARAM)
            if not self.registered:
                return self._error(E_NO_PDN)
            self.context = True
            return "OK"
        if name == "+QICSGP":
            p = [x.strip() for x in raw.split(",")]
            if p[0] != str(CONTEXT):
                return self._error(E_PARAM)
            if len(p) == 1:
                lines.append(f'+QICSGP: 1,"{self.apn}","","",0')
                return "OK"
            if len(p) < 3 or p[1] not in ("1", "2", "3") or not (p[2].startswith('"') and p[2].endswith('"')):
                return self._error(E_PARAM)
            self.apn = p[2].strip('"')
            return "OK"
        if name == "+CGPADDR":
            if self.context:
                lines.append(f'+CGPADDR: {CONTEXT},"{self.address}"')
            return "OK"
        if name == "+QIOPEN":
            return self._qiopen(raw)
        if name == "+QISEND":
            return self._qisend(raw)
        if name == "+QIRD":
            return self._qird(raw, lines)
        if name == "+QICLOSE":
            return self._qiclose(raw)
        return "ERROR"

    def _qiopen(self, raw: str) -> str:
        p = [x.strip() for x in raw.split(",")]
        if len(p) != 7 or p[2] != '"UDP SERVICE"' or p[1] not in [str(i) for i in range(SOCKETS)]:
            return self._error(E_SOCK_PARAM)
        if p[0] != str(CONTEXT) or p[6] != "0" or not p[5].isdigit() or not 0 <= int(p[5]) < 65536:
            return self._error(E_SOCK_PARAM)
        sid, lport = int(p[1]), int(p[5])
        if sid in self.socks:
            return self._error(E_SOCK_IN_USE)
        if not self.context:
            self._line_out("OK")
            return f"+QIOPEN: {sid},{E_NETWORK_DOWN}"
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((self.address, lport))
        except OSError:
            s.close()
            self._line_out("OK")
            return f"+QIOPEN: {sid},{E_SOCK_OPEN_FAIL}"
        s.setblocking(False)
        self.socks[sid] = _Sock(sid, s, s.getsockname()[1])
        self._line_out("OK")
        return f"+QIOPEN: {sid},0"

    def _qisend(self, raw: str) -> str | None:
        p = [x.strip() for x in raw.split(",")]
        if len(p) != 4 or not p[0].isdigit() or not p[1].isdigit() or not p[3].isdigit():
            return self._error(E_PARAM)
        sid, n, ip, port = int(p[0]), int(p[1]), p[2].strip('"'), int(p[3])
        if sid not in self.socks:
            return self._error(E_SOCK_PARAM)
        if not 0 < n <= SEND_MAX or not 0 < port < 65536:
            return self._error(E_PARAM)
        try:
            socket.inet_aton(ip)
        except OSError:
            return self._error(E_PARAM)
        self._prompt = (sid, n, ip, port)
        self._data = bytearray()
        self._say("\r\n> ")
        return None

    def _send_data(self, data: bytes) -> None:
        assert self._prompt is not None
        sid, _, ip, port = self._prompt
        self._prompt = None
        self._data = bytearray()
        now = self.now_us()
        if self.link.backlog_us(linkmodel.UP, now) > 2_000_000:  # about two seconds of air time already queued
            self.stats["send_fail"] += 1
            self._line_out("SEND FAIL")
            return
        _, got = self.link.send(linkmodel.UP, now, len(data), flow=(ip, port))
        if not got:
            self.stats["lost"] += 1
        for d in got:
            self._at(d, "tx", (sid, data, (ip, port)))
        self._line_out("SEND OK")

    def _qird(self, raw: str, lines: list[str]) -> str:
        p = [x.strip() for x in raw.split(",")]
        if not p[0].isdigit() or len(p) > 2 or (len(p) == 2 and not p[1].isdigit()):
            return self._error(E_PARAM)
        s = self.socks.get(int(p[0]))
        if s is None:
            return self._error(E_SOCK_PARAM)
        want = int(p[1]) if len(p) == 2 else READ_MAX
        if not s.rx:
            s.urc_pending = False
            lines.append("+QIRD: 0")
            return "OK"
        data, ip, port = s.rx.pop(0)
        if not s.rx:
            s.urc_pending = False
        data = data[: min(want, READ_MAX)]  # a UDP read takes one datagram; what does not fit is lost
        self._say(f'\r\n+QIRD: {len(data)},"{ip}",{port}\r\n'.encode() + data + b"\r\n")
        return "OK"

    def _qiclose(self, raw: str) -> str:
        if not raw.strip().isdigit():
            return self._error(E_PARAM)
        s = self.socks.pop(int(raw.strip()), None)
        if s is not None:
            s.sock.close()
        return "OK"

    def close(self) -> None:
        for s in self.socks.values():
            s.sock.close()
        self.socks = {}
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def endpoints(path: str, address: str, pid: int) -> dict:
    return {"modem": path, "address": address, "dialect": "bg95", "pid": pid}


def publish(state: Path, eps: dict) -> None:
    tmp = state / "endpoints.tmp"
    tmp.write_text(json.dumps(eps, indent=1))
    os.replace(tmp, state / "endpoints.json")
