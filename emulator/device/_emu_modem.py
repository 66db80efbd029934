# The meter's NB-IoT module on the board's uarts.modem: a Quectel BC660K-GL dialect (board key `modem.type`,
# "bc660k" when absent), at AT-command level, on the device clock. What it answers is listed in docs/emulator.md
# ("The meter's NB-IoT module"), with the manual each answer was checked against.
#
# Time: the MCU's bytes reach the module at the line rate (10 bits per byte at the UART's baud); a command is taken
# when its CR arrives, its answer lines leave RESPONSE_US later, LINE_GAP_US apart, and URCs leave at their own
# device times, so a URC due between two answer lines comes between them. Everything the module says reaches the
# MCU at the line rate and waits in the MCU's UART receive buffer (`rxbuf`, UART_RXBUF by default); bytes arriving
# while it is full are lost, as on a board whose firmware does not drain its UART.
#
# The radio: datagrams go through the link model (_emu_link) and leave the VM on real UDP sockets bound to the
# meter's own loopback address (the host chooses it: `modem_net.address`), so a head-end on this machine reaches the
# meter at ADDR:PORT and the meter's sends come from ADDR:PORT. Datagrams from the host arrive at wall moments (as
# console bytes do) and enter the link at the device time the VM has then; after a datagram leaves for a host that
# talks to the meter, device time runs at most at 1x until the host's next datagram comes (at most NET_ANSWER_US of
# wall time), so that the host's answer comes before the firmware's timeouts at --speed max however long the host
# takes to make it (a loaded machine), and the link's own delays are still skipped.
import io
import select
import socket
import sys

import _emu_bus as bus
import _emu_clock as clock
import _emu_grid as grid
import _emu_link as link

_cfg = bus.config
_board = _cfg["board"]
_m = _board.get("modem") or {}
TYPE = _m.get("type", "bc660k")
UART_ID = _board.get("uarts", {}).get("modem", {}).get("id")
_pk = _m.get("pwrkey")
PWRKEY = _pk.get("gpio") if isinstance(_pk, dict) else _pk
PWRKEY_ACTIVE = (_pk.get("active", "high") if isinstance(_pk, dict) else "high") == "high"
_net = _cfg.get("modem_net") or {}
ADDRESS = _net.get("address", "127.0.0.1")

UART_RXBUF = 256  # the MCU's UART receive buffer when the firmware does not set rxbuf (ESP32 and rp2 ports: 256)
# The MCU's UART driver moves received bytes where the firmware can read them in batches: when its hardware FIFO
# holds RX_FIFO_THRESH bytes, or when the line has been idle for RX_IDLE_BYTES byte times after the last one (the
# ESP32's RX-full threshold and RX timeout; the RP2040's half-full FIFO interrupt and receive timeout; the model's
# figures, not measured on boards). Bytes are never readable before they arrive.
RX_FIFO_THRESH = 120 if _board["mcu"]["family"] == "esp32" else 16
RX_IDLE_BYTES = 10 if _board["mcu"]["family"] == "esp32" else 4
RESPONSE_US = 2000  # from a command's CR to its first answer line
LINE_GAP_US = 500  # between the lines of one answer
BOOT_US = 1200000  # power-on (or a pulsed power key) to RDY
REGISTER_US = (2000000, 8000000)  # RDY (or AT+CFUN=1) to +CEREG: 1, drawn per attempt
PSM_T3324_DEFAULT = "00000101"  # the network's active time when AT+CPSMS=1 gives none: 5 x 2 s
OPEN_US = 150000  # AT+QIOPEN to +QIOPEN: <id>,<err>
PWRKEY_MIN_US = 500000  # the power key must be held this long to restart the module
DATAGRAM_MAX = 512  # per datagram, each way
DOWNLINK_BUFFER = 8192  # bytes the network holds for the module (in flight on the link); more are dropped
SEND_BUFFER = 1536  # bytes the module holds for the radio; a send that does not fit gets SEND FAIL
SOCKETS = 5  # connectID 0..4
LINE_MAX = 1100  # longest command line taken (a 512-byte hex QISEND fits); a longer one gets ERROR
# Wall time at most at 1x after a datagram leaves for the host, unless the host's next datagram ends it sooner: the
# host's time to answer (it was 0.25 s, and on a loaded 2-core machine a head-end's f(StoC) came later than that in 1
# of 12 runs; then idle waits skipped the wrapper's 120 s inactivity timeout before it came). It costs wall time only
# after a conversation's last answer.
NET_ANSWER_US = 5000000
# ... but only for the meter's first datagram after one from the host (its answer) and while the host talks to it
# (within CONVERSATION_US of device time): a datagram the meter sends on its own (an uplink, a push) is answered by
# nobody the emulator must wait for, so idle time is still skipped around it (each uplink re-arming a 5 s hold kept a
# meter whose head-end had gone quiet at 1x for the whole 30 s)
CONVERSATION_US = 30000000
RECV_MAX = 1500
_HEX = b"0123456789ABCDEF"
# error codes (+CME ERROR: n; 3GPP TS 27.007 and Quectel's TCP/IP application notes)
E_NO_SERVICE = 30
E_PARAM = 50
E_BUSY = 302
E_NO_PDN = 304
E_SOCK_PARAM = 552
E_SOCK_IN_USE = 563
E_SOCK_OPEN_FAIL = 566
E_NETWORK_DOWN = 570
# +CEREG stat
NOT_REGISTERED, HOME, SEARCHING, DENIED = 0, 1, 2, 3

OFF, BOOTING, ON, WEDGED = "off", "booting", "on", "wedged"


class Module:
    """The module's state, its event schedule, its line to the MCU and its sockets."""

    def __init__(self):
        seed = 0
        for b in bytes.fromhex(_cfg.get("unique_id", "00")) + b"modem":
            seed = ((seed ^ b) * 16777619) & 0xFFFFFFFF
        self.link = link.Link(_net.get("link") or link.profile(link.DEFAULT_PROFILE), seed ^ int(_net.get("seed", 0)))
        self.present = bool(_net.get("present", True))
        self.deny = bool(_net.get("deny", False))
        self.wedge_pending = bool(_net.get("wedged", False))
        self.state = OFF
        self._events = []  # [t, seq, kind, arg] in device-time order
        self._seq = 0
        self._out = []  # [start_us, bytes, taken]: what the module said, on its way to the MCU
        self._line_free = 0
        self.byte_us = 87
        self.rx = bytearray()  # the MCU's UART receive buffer
        self._heard_us = None  # device time of the last datagram from the network (a host talking to the meter)
        self._unanswered = False  # a datagram from the network came and the meter has sent nothing since
        self.empty_reads = 0  # readinto with nothing to read (a poll that said readable too early)
        self.rxbuf = UART_RXBUF
        self.dropped = 0  # bytes lost at the MCU's full receive buffer
        self._cmd = bytearray()
        self._tx_free = 0  # when the MCU's transmitter is free
        self._pk_since = None
        self.socks = {}
        self.stats = {
            "up": 0,
            "down": 0,
            "lost": 0,
            "too_big": 0,
            "send_fail": 0,
            "psm_dropped": 0,
            "net_dropped": 0,
            "model_errors": 0,
        }
        self._down_bytes = 0  # bytes of datagrams on their way down the link
        # a datagram read from a real socket, not yet on the link: socket, data, addr, whether a try failed
        self._taken = [None, None, None, False]
        self._failed = None  # the scheduled event whose work failed once for want of memory
        self._recv_failed = False  # a real socket's datagram could not be read once for want of memory
        self._sink = bytearray(RECV_MAX)  # what is read off a socket when even the room cannot take a datagram
        self._sent = []  # [tx_end, size] of datagrams still in the module's send buffer
        self._boot_values()
        if self.present:
            self.power_on(clock.now_us())

    def _boot_values(self):
        self.echo = True
        self.cmee = 0
        self.cereg_n = 0
        self.cfun = 1
        self.stat = NOT_REGISTERED
        self.fmt = (0, 0)
        self.psm = 0  # AT+CPSMS mode
        self.t3412 = None  # the requested timers as given (3GPP TS 24.008 GPRS timer 3 and 2 bit strings)
        self.t3324 = None

    # -- the schedule --------------------------------------------------------------------------------------------
    def at(self, t, kind, arg=None):
        self._seq += 1
        ev = [t, self._seq, kind, arg]
        q = self._events
        i = len(q)
        while i > 0 and (q[i - 1][0] > t):
            i -= 1
        q.insert(i, ev)

    def due_us(self, with_output):
        """The next device time something happens (an event, or with_output the next bytes the MCU's UART driver
        makes readable)."""
        t = self._events[0][0] if self._events else None
        if with_output:
            for c in self._out:
                if c[2] < len(c[1]):
                    nxt = self._visible_at(c, c[2])
                    if t is None or nxt < t:
                        t = nxt
                    break
        return t

    def _visible_at(self, c, k):
        """When bytes past the first k of chunk c become readable: at the next full FIFO threshold, or the chunk's
        end plus the driver's idle timeout."""
        whole = ((k // RX_FIFO_THRESH) + 1) * RX_FIFO_THRESH
        if whole < len(c[1]):
            return c[0] + whole * self.byte_us
        return c[0] + (len(c[1]) + RX_IDLE_BYTES) * self.byte_us

    def _visible(self, c, now):
        """How many bytes of chunk c the MCU's UART driver has made readable by `now`."""
        if now >= c[0] + (len(c[1]) + RX_IDLE_BYTES) * self.byte_us:
            return len(c[1])
        arrived = (now - c[0]) // self.byte_us
        return (arrived // RX_FIFO_THRESH) * RX_FIFO_THRESH if arrived > 0 else 0

    def advance(self, now):
        """Run every event due by `now`, in order (a scenario's link.* steps due by then first)."""
        if _scenario_sets_link():
            grid.touch(now)
        q = self._events
        while q and q[0][0] <= now:
            ev = q[0]
            # Taken off the schedule only once done: a MemoryError (a URC with no hole in the heap the firmware
            # fills) leaves it there for bus.shim_work's second try, with the shims' room; each event's work
            # allocates before it changes anything. An event that fails twice is lost (bus.dropped counts it), as
            # a datagram on the radio, rather than hold up every event behind it.
            try:
                self._event(ev[0], ev[2], ev[3])
            except MemoryError:  # noqa: B014
                if self._failed is not ev:
                    self._failed = ev
                    raise
                self._failed = None
                q.pop(0)
                raise
            q.pop(0)  # still ev: what it scheduled comes later (a power-up's fresh schedule is another list)
            if self._failed is ev:
                self._failed = None  # done on its second try: nothing of it stays referenced

    def _event(self, t, kind, arg):
        if kind == "say":
            if self.state == ON:
                self._emit(t, arg)
        elif kind == "boot":
            if self.state == BOOTING:
                if not self.wedge_pending and self.cfun == 1:
                    self._search(t)  # (no +CEREG before RDY: a module powers up with its URCs off)
                self._emit(t, b"\r\nRDY\r\n")
                self.state = ON
                if self.wedge_pending:
                    self.wedge_pending = False
                    self.state = WEDGED
        elif kind == "register":
            if self.state == ON and self.cfun == 1 and self.stat == SEARCHING:
                self._set_stat(t, DENIED if self.deny else HOME)
        elif kind == "opened":
            sid, err = arg
            self._emit(t, b"\r\n+QIOPEN: %d,%d\r\n" % (sid, err))
        elif kind == "reboot":
            self.power_on(t)
        elif kind == "tx":
            s, data, dest = arg
            if s.open:
                try:
                    s.sock.sendto(data, dest)
                    self.stats["up"] += 1
                    if self._unanswered and t - self._heard_us < CONVERSATION_US:
                        self._unanswered = False
                        clock.hold_for(NET_ANSWER_US, "net")  # a host in a conversation may answer: give it wall time
                except OSError:
                    self.stats["lost"] += 1
        elif kind == "rx":
            s, data = arg
            if s.open and self.state == ON and self.stat in (HOME, 5):
                self._emit(t, self._recv_urc(s.id, data))  # first: the allocation that may fail
                self.stats["down"] += 1
                self._heard_us = t
                self._unanswered = True
            else:
                self.stats["lost"] += 1
            self._down_bytes -= len(data)

    def _recv_urc(self, sid, data):
        """The recv URC, built in one buffer of its final size (hex text, upper-case, in place): a 512-byte datagram
        takes 1,051 bytes of the heap the firmware shares, not the 5 KB of strings that joining hex text took."""
        head = b'\r\n+QIURC: "recv",%d,%d,"' % (sid, len(data))
        k = len(head)
        n = len(data)
        width = 2 if self.fmt[1] == 1 else 1
        out = bytearray(k + width * n + 3)
        out[:k] = head
        if width == 2:
            hexd = _HEX
            for b in data:
                out[k] = hexd[b >> 4]
                out[k + 1] = hexd[b & 15]
                k += 2
        else:
            out[k : k + n] = data
            k += n
        out[k : k + 3] = b'"\r\n'
        return out

    # -- the line to the MCU -------------------------------------------------------------------------------------
    def _emit(self, t, data):
        """Say `data` (bytes, or a bytearray nobody changes afterwards) from device time t. All or nothing: a
        MemoryError leaves the line as it was."""
        start = self._line_free if self._line_free > t else t
        self._out.append([start, data, 0])
        self._line_free = start + len(data) * self.byte_us

    def settle(self, now):
        """Move what has reached the MCU by `now` into its receive buffer (the rest of a full buffer is lost)."""
        self.advance(now)
        out = self._out
        while out:
            c = out[0]
            n = self._visible(c, now)
            if n <= c[2]:
                break
            room = self.rxbuf - len(self.rx)
            lost = n - c[2] - room
            self.rx.extend(memoryview(c[1])[c[2] : n - lost if lost > 0 else n])  # may fail: nothing changed yet
            if lost > 0:
                self.dropped += lost
            c[2] = n
            if n < len(c[1]):
                break
            out.pop(0)

    def mcu_write(self, buf, baud):
        """Bytes the MCU writes at device time now: each reaches the module after its line time."""
        now = clock.now_us()
        byte_us = 10 * 1000000 // baud
        t = self._tx_free if self._tx_free > now else now
        for b in buf:
            t += byte_us
            if self.state == OFF:
                continue
            if b == 0x0D:
                line = bytes(self._cmd)
                self._cmd = bytearray()
                self.advance(t)
                if self.state == ON:
                    self._command(t, line)
            elif b != 0x0A:
                if len(self._cmd) <= LINE_MAX:
                    self._cmd.append(b)
        self._tx_free = t
        return t

    # -- power ---------------------------------------------------------------------------------------------------
    def power_on(self, now):
        self.close_all(now, quiet=True)
        self._boot_values()
        self._events = []
        self._down_bytes = 0
        self.state = BOOTING
        self.at(now + BOOT_US, "boot")

    def power_off(self, now):
        self.close_all(now, quiet=True)
        self._events = []
        self._down_bytes = 0
        self.state = OFF
        self.stat = NOT_REGISTERED

    def pwrkey(self, level, now):
        active = (level == 1) == PWRKEY_ACTIVE
        if active:
            self._pk_since = now
        elif self._pk_since is not None:
            held = now - self._pk_since
            self._pk_since = None
            if held >= PWRKEY_MIN_US and self.present:
                self.power_on(now)

    def remove(self, now):
        self.present = False
        self.power_off(now)

    def insert(self, now):
        if not self.present:
            self.present = True
            self.power_on(now)

    def wedge(self, now):
        if self.state == ON:
            self.state = WEDGED
        elif self.state == BOOTING:
            self.wedge_pending = True

    def set_deny(self, deny, now):
        self.deny = deny
        if self.state == ON and self.cfun == 1:
            if deny and self.stat in (HOME, 5):
                self.close_all(now)
                self._set_stat(now, DENIED)
            elif not deny and self.stat == DENIED:
                self._search(now)

    # -- registration --------------------------------------------------------------------------------------------
    def _search(self, t):
        self._set_stat(t, SEARCHING)
        lo, hi = REGISTER_US
        self.at(t + lo + self.link._draw() % (hi - lo + 1), "register")

    def _set_stat(self, t, stat):
        if stat == self.stat:
            return
        if self.cereg_n == 1:
            self._emit(t, b"\r\n+CEREG: %d\r\n" % stat)
        elif self.cereg_n >= 2:
            self._emit(t, b'\r\n+CEREG: %d,"0001","01A2D101",9\r\n' % stat)
        self.stat = stat

    def registered(self):
        return self.stat in (HOME, 5)

    # -- commands ------------------------------------------------------------------------------------------------
    def _command(self, t, line):
        lines = []
        if self.echo:
            self._emit(t, line + b"\r")
        try:
            text = line.decode()
        except UnicodeError:
            text = ""
        up = text.upper()
        if len(line) > LINE_MAX:
            res = "ERROR"
        elif not up.startswith("AT"):
            return  # not a command: a module ignores it
        else:
            try:
                res = self._run(t, text[2:], up[2:], lines)
            except Exception as e:  # a bug in this model must not end the firmware's UART write: counted, ERROR
                self.stats["model_errors"] += 1
                self.stats["last_model_error"] = repr(e)[:80]
                lines = []
                res = "ERROR"
        k = 0
        for ln in lines:
            self.at(t + RESPONSE_US + k * LINE_GAP_US, "say", b"\r\n" + ln.encode() + b"\r\n")
            k += 1
        if isinstance(res, int):
            res = "ERROR" if self.cmee == 0 else "+CME ERROR: %d" % res
        if res:
            self.at(t + RESPONSE_US + k * LINE_GAP_US, "say", b"\r\n" + res.encode() + b"\r\n")

    def _run(self, t, body, up, lines):
        if body == "":
            return "OK"
        if up in ("E0", "E1"):
            self.echo = up == "E1"
            return "OK"
        if up == "I":
            lines.extend(("Quectel_Ltd", "Quectel_BC660K-GL", "Revision: BC660KGLAAR01A05 (emulated)"))
            return "OK"
        name, sep, args = up.partition("=")
        raw_args = body[len(name) + 1 :] if sep else ""
        if name.endswith("?"):
            name, args, sep = name[:-1], None, "?"
        fn = _COMMANDS.get(name)
        if fn is None:
            return "ERROR"
        return fn(self, t, sep, args, raw_args, lines)

    def _cmee(self, t, sep, args, raw, lines):
        if sep == "?":
            lines.append("+CMEE: %d" % self.cmee)
            return "OK"
        v = _ints(args, 1)
        if v is None or not 0 <= v[0] <= 2:
            return E_PARAM
        self.cmee = v[0]
        return "OK"

    def _cfun(self, t, sep, args, raw, lines):
        if sep == "?":
            lines.append("+CFUN: %d" % self.cfun)
            return "OK"
        v = _ints(args, 1)
        if v is None or v[0] not in (0, 1):
            return E_PARAM
        if v[0] == self.cfun:
            return "OK"
        self.cfun = v[0]
        if v[0] == 0:
            self.close_all(t)
            self._set_stat(t, NOT_REGISTERED)
        else:
            self._search(t)
        return "OK"

    def _cereg(self, t, sep, args, raw, lines):
        if sep == "?":
            lines.append("+CEREG: %d,%d" % (self.cereg_n, self.stat))
            return "OK"
        v = _ints(args, 1)
        if v is None or not 0 <= v[0] <= 5:
            return E_PARAM
        self.cereg_n = v[0]
        return "OK"

    def _cgatt(self, t, sep, args, raw, lines):
        if sep != "?":
            return E_PARAM
        lines.append("+CGATT: %d" % (1 if self.registered() else 0))
        return "OK"

    def _cgpaddr(self, t, sep, args, raw, lines):
        if sep == "=" and _ints(args, 1) is None:
            return E_PARAM
        if self.registered():
            lines.append('+CGPADDR: 0,"%s"' % ADDRESS)
        return "OK"

    def _csq(self, t, sep, args, raw, lines):
        lines.append("+CSQ: %d,99" % (18 if self.registered() else 99))
        return "OK"

    def _cgsn(self, t, sep, args, raw, lines):
        lines.append("+CGSN: 86%013d" % (int(_cfg.get("unique_id", "0") or "0", 16) % 10**13))
        return "OK"

    def _cimi(self, t, sep, args, raw, lines):
        lines.append("40400%010d" % (int(_cfg.get("unique_id", "0") or "0", 16) % 10**10))
        return "OK"

    def _cpsms(self, t, sep, args, raw, lines):
        if sep == "?":
            lines.append('+CPSMS: %d,,,"%s","%s"' % (self.psm, self.t3412 or "", self.t3324 or ""))
            return "OK"
        p = _split(raw)
        if not p or p[0] not in ("0", "1", "2") or len(p) > 5:
            return E_PARAM
        t3412 = p[3].strip('"') if len(p) > 3 else ""
        t3324 = p[4].strip('"') if len(p) > 4 else ""
        for x in (t3412, t3324):
            if x and (len(x) != 8 or x.strip("01")):
                return E_PARAM
        if p[0] == "2":  # disable and reset the timers to the network's defaults
            self.psm, self.t3412, self.t3324 = 0, None, None
            return "OK"
        self.psm = int(p[0])
        self.t3412 = t3412 or self.t3412
        self.t3324 = t3324 or self.t3324
        return "OK"

    def active_us(self):
        """PSM's active time (T3324) in µs: units 2 s, 1 min, 6 min (TS 24.008 GPRS timer 2); None: deactivated."""
        x = self.t3324 or PSM_T3324_DEFAULT
        unit = x[:3]
        value = int(x[3:], 2)
        per = {"000": 2, "001": 60, "010": 360}.get(unit)
        return None if per is None else value * per * 1000000

    def asleep(self, now):
        """In PSM at `now`: PSM on, the radio idle (the link's idle_s after the last traffic) and T3324 run out.
        Unreachable until the module sends again."""
        if self.psm != 1 or self.link._active is None:
            return False
        idle = self.link.p["idle_s"]
        act = self.active_us()
        if not idle or act is None:
            return False
        return now >= self.link._active + idle * 1000000 + act

    def _qicfg(self, t, sep, args, raw, lines):
        parts = _split(raw)
        if not parts or parts[0] != '"dataformat"':
            return E_PARAM
        if len(parts) == 1:
            lines.append('+QICFG: "dataformat",%d,%d' % self.fmt)
            return "OK"
        v = _ints(",".join(parts[1:]), 2)
        if v is None or v[0] not in (0, 1) or v[1] not in (0, 1):
            return E_PARAM
        self.fmt = (v[0], v[1])
        return "OK"

    def _qiopen(self, t, sep, args, raw, lines):
        p = _split(raw)
        if len(p) < 5 or len(p) > 7:
            return E_PARAM
        nums = _ints(",".join([p[0], p[1], p[4]] + p[5:]), len(p) - 2)
        if nums is None or p[2] != '"UDP"' or len(p[3]) < 3 or p[3][0] != '"' or p[3][-1] != '"':
            return E_SOCK_PARAM
        cid, sid, rport = nums[0], nums[1], nums[2]
        lport = nums[3] if len(nums) > 3 else 0
        mode = nums[4] if len(nums) > 4 else 1
        ip = p[3][1:-1]
        if cid != 0 or not 0 <= sid < SOCKETS or not 0 < rport < 65536 or not 0 <= lport < 65536 or mode != 1:
            return E_SOCK_PARAM
        if not _dotted(ip):
            return E_SOCK_PARAM
        if sid in self.socks:
            return E_SOCK_IN_USE
        if not self.registered():
            self.at(t + OPEN_US, "opened", (sid, E_NETWORK_DOWN))
            return "OK"
        try:
            s = _Socket(sid, ip, rport, lport)
        except OSError:
            self.at(t + OPEN_US, "opened", (sid, E_SOCK_OPEN_FAIL))
            return "OK"
        self.socks[sid] = s
        self.at(t + OPEN_US, "opened", (sid, 0))
        return "OK"

    def _qisend(self, t, sep, args, raw, lines):
        p = _split(raw)
        if len(p) != 3:
            return E_PARAM
        v = _ints(p[0] + "," + p[1], 2)
        if v is None or len(p[2]) < 2 or p[2][0] != '"' or p[2][-1] != '"':
            return E_PARAM
        sid, n = v
        s = self.socks.get(sid)
        if s is None or not s.open:
            return E_SOCK_PARAM
        if not 0 < n <= DATAGRAM_MAX:
            return E_PARAM
        body = p[2][1:-1]
        if self.fmt[0] == 1:
            try:
                data = bytes.fromhex(body)
            except ValueError:
                return E_PARAM
        else:
            data = body.encode()
        if len(data) != n:
            return E_PARAM
        if not self.registered():
            return E_NETWORK_DOWN
        self._sent = [x for x in self._sent if x[0] > t]
        held = 0
        for x in self._sent:
            held += x[1]
        if held + n > SEND_BUFFER:
            self.stats["send_fail"] += 1
            return "SEND FAIL"
        end, got = self.link.send(link.UP, t, n, flow=(s.ip, s.rport))
        self._sent.append([end, n])
        for d in got:  # the datagram leaves no earlier than the module says SEND OK
            self.at(d if d > t + RESPONSE_US else t + RESPONSE_US, "tx", (s, data, s.dest))
        if not got:
            self.stats["lost"] += 1
        return "SEND OK"

    def _qiclose(self, t, sep, args, raw, lines):
        v = _ints(args, 1)
        if v is None or not 0 <= v[0] < SOCKETS:
            return E_SOCK_PARAM
        s = self.socks.pop(v[0], None)
        if s is not None:
            s.close()
        return "OK"

    def _qrst(self, t, sep, args, raw, lines):
        self.at(t + RESPONSE_US + LINE_GAP_US, "reboot")
        return "OK"

    def close_all(self, t, quiet=False):
        for sid in sorted(self.socks):
            self.socks[sid].close()
            if not quiet:
                self._emit(t, b'\r\n+QIURC: "closed",%d\r\n' % sid)
        self.socks = {}

    # -- datagrams from the host ---------------------------------------------------------------------------------
    def net_input(self, s, now):
        """A real socket is readable: take every datagram into the link (downlink) at device time now. A datagram
        read from the socket is held (`_taken`, no allocation) until it is on the link, so that bus.shim_work's
        second try after a MemoryError takes it again rather than losing it."""
        self.advance(now)
        taken = self._taken
        while True:
            if taken[1] is None:
                try:
                    data, addr = s.sock.recvfrom(RECV_MAX)
                except OSError:
                    return
                except MemoryError:  # noqa: B014
                    if not self._recv_failed:
                        self._recv_failed = True  # the second try has the room
                        raise
                    # Not even with the room: what waits on the socket is lost (bus.dropped counts it), read into a
                    # buffer made with the model; left there, it would keep the socket readable and the select
                    # shim would spin on it without ever returning to the firmware.
                    self._recv_failed = False
                    try:
                        while s.sock.readinto(self._sink):
                            pass
                    except OSError:
                        pass
                    raise
                self._recv_failed = False
                if not data and addr is None:
                    return
                clock.hold_end("net")  # the host answered: its datagram's way over the link is skipped again
                taken[0], taken[1], taken[2], taken[3] = s, data, addr, False
            try:
                self._take(taken[0], taken[1], taken[2], now)
            except MemoryError:  # noqa: B014
                if not taken[3]:
                    taken[3] = True  # held for the second try, with the room
                    raise
                taken[1] = None  # failed with the room too: lost (bus.dropped counts it)
                raise
            taken[0] = taken[1] = taken[2] = None

    def _take(self, s, data, addr, now):
        if len(data) > DATAGRAM_MAX:
            self.stats["too_big"] += 1
            return
        src = ("%d.%d.%d.%d" % (addr[4], addr[5], addr[6], addr[7]), (addr[2] << 8) | addr[3])
        if self.asleep(now):
            self.stats["psm_dropped"] += 1  # the network cannot page a module in PSM: lost to the sender
            return
        if self._down_bytes + len(data) > DOWNLINK_BUFFER:
            self.stats["net_dropped"] += 1  # the network's buffer for this module is full (a flood)
            return
        _, got = self.link.send(link.DOWN, now, len(data), flow=src)
        for d in got:
            self.at(d, "rx", (s, data))
            self._down_bytes += len(data)
        if not got:
            self.stats["lost"] += 1

    def status(self):
        return {
            "empty_reads": self.empty_reads,
            "queues": {"events": len(self._events), "out": len(self._out), "rx": len(self.rx), "cmd": len(self._cmd),
                       "sent": len(self._sent)},
            "state": self.state,
            "present": self.present,
            "stat": self.stat,
            "deny": self.deny,
            "address": ADDRESS,
            "psm": self.asleep(clock.now_us()),
            "sockets": sorted(self.socks),
            "dropped_rx": self.dropped,
            "reconnects": self.link.reconnects,
            "link": self.link.p,
            "stats": self.stats,
        }


_seen = [None, False]  # the scenario last looked at, and whether a step of it sets link.* keys


def _scenario_sets_link():
    """Whether the running scenario has link.* steps (only then does the module bring the grid's scenario along:
    touching the grid model more often would split its integral, and the BL0942's, into more pieces)."""
    sc = grid.SCEN
    if sc is not _seen[0]:
        _seen[0] = sc
        _seen[1] = False
        for step in (sc or {}).get("steps", ()):
            for k in step[1]:
                if k.startswith("link."):
                    _seen[1] = True
    return _seen[1]


def _ints(args, n):
    if args is None:
        return None
    parts = args.split(",")
    if len(parts) != n:
        return None
    out = []
    for x in parts:
        x = x.strip()
        if not x or not x.isdigit():
            return None
        out.append(int(x))
    return out


def _split(raw):
    """Arguments split at commas outside quotes, found with str.find: a list of characters would take 16 bytes per
    hex digit of a datagram from the board's heap, and indexing a character interns it as a qstr, which can take a
    new qstr pool (kilobytes in one piece) from a heap the firmware has in pieces (a DLMS session's answers were lost
    that way)."""
    out = []
    start = i = 0
    while True:
        c = raw.find(",", i)
        q = raw.find('"', i)
        if 0 <= q and (c < 0 or q < c):  # a quote before the next comma: its commas are the argument's own
            e = raw.find('"', q + 1)
            if e < 0:
                break  # not closed: the rest is one argument
            i = e + 1
            continue
        if c < 0:
            break
        out.append(raw[start:c].strip())
        start = i = c + 1
    if start < len(raw) or out:
        out.append(raw[start:].strip())
    return out


def _dotted(ip):
    parts = ip.split(".")
    if len(parts) != 4:
        return False
    for x in parts:
        if not x.isdigit() or int(x) > 255:
            return False
    return True


class _Socket:
    def __init__(self, sid, ip, rport, lport):
        self.id = sid
        self.ip = ip
        self.rport = rport
        self.dest = socket.getaddrinfo(ip, rport)[0][-1]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(socket.getaddrinfo(ADDRESS, lport)[0][-1])
        except OSError:
            s.close()
            raise
        s.setblocking(False)
        self.sock = s
        self.open = True

    def close(self):
        if self.open:
            self.open = False
            self.sock.close()


_COMMANDS = {
    "+CMEE": Module._cmee,
    "+CFUN": Module._cfun,
    "+CEREG": Module._cereg,
    "+CGATT": Module._cgatt,
    "+CGPADDR": Module._cgpaddr,
    "+CSQ": Module._csq,
    "+CGSN": Module._cgsn,
    "+CIMI": Module._cimi,
    "+CPSMS": Module._cpsms,
    "+QICFG": Module._qicfg,
    "+QIOPEN": Module._qiopen,
    "+QISEND": Module._qisend,
    "+QICLOSE": Module._qiclose,
    "+QRST": Module._qrst,
}

MODULE = Module()

_MP_STREAM_POLL = 3
_POLLIN = 1
_POLLOUT = 4


class Port(io.IOBase):
    """machine.UART(uarts.modem.id): the MCU's end of the line to the module, pollable by select.poll (asyncio's
    StreamReader/StreamWriter work on it)."""

    def __init__(self, id, baudrate=115200, **kw):
        self._id = id
        self.init(baudrate, **kw)

    def init(self, baudrate=115200, **kw):
        self._baud = baudrate
        MODULE.byte_us = 10 * 1000000 // baudrate
        if kw.get("rxbuf"):
            MODULE.rxbuf = int(kw["rxbuf"])

    def deinit(self):
        pass

    def any(self):
        _settle()
        return len(MODULE.rx)

    def read(self, n=-1):
        _settle()
        rx = MODULE.rx
        k = len(rx) if n is None or n < 0 or n > len(rx) else n
        if k == 0:
            return None
        out = bytes(rx[:k])
        rx[:k] = b""  # in place: the buffer keeps its room (a model in the board's heap must not churn it)
        return out

    def readinto(self, buf, n=-1):
        _settle()
        rx = MODULE.rx
        k = min(len(buf) if n is None or n < 0 else min(n, len(buf)), len(rx))
        if k == 0:
            MODULE.empty_reads += 1
            return None
        buf[:k] = memoryview(rx)[:k]
        rx[:k] = b""
        return k

    def readline(self):
        _settle()
        i = MODULE.rx.find(b"\n")
        return self.read(i + 1 if i >= 0 else -1)

    def write(self, buf):
        bus.with_room(self._write, buf)  # the model's work in the board's heap, which the firmware may have filled
        return len(buf)

    def _write(self, buf):
        MODULE.mcu_write(buf, self._baud)

    def flush(self):
        pass

    def txdone(self):
        return clock.now_us() >= MODULE._tx_free

    def ioctl(self, req, arg):
        if req == _MP_STREAM_POLL:
            _settle()
            ready = 0
            if arg & _POLLIN and MODULE.rx:
                ready |= _POLLIN
            if arg & _POLLOUT:
                ready |= _POLLOUT
            return ready
        return -1  # no file descriptor behind it (MP_STREAM_GET_FILENO)


def _settle():
    """MODULE.settle now; when its work (a URC's bytes, in the heap the firmware fills) finds no room, once more with
    the shims' room: what it cannot allocate even so is lost like a datagram on the radio (`_emu_bus.dropped`),
    never the firmware's error."""
    bus.shim_work(MODULE.settle, clock.now_us())  # settling again after a failure takes up where it stopped


def waker():
    """For the select shim: the next device time the module needs the VM awake (None: nothing scheduled); what was
    due by now has happened."""
    _settle()
    return MODULE.due_us(not MODULE.rx)


def net_sockets():
    return [s for s in MODULE.socks.values() if s.open]


def net_input(s):
    MODULE.net_input(s, clock.now_us())


def on_pin(gpio, level):
    if gpio == PWRKEY:
        bus.shim_work(lambda now: MODULE.pwrkey(level, now), clock.now_us())


def _on_modem(msg):
    now = clock.now_us()
    MODULE.advance(now)
    act = msg.get("do")
    if act == "remove":
        MODULE.remove(now)
    elif act == "insert":
        MODULE.insert(now)
    elif act == "wedge":
        MODULE.wedge(now)
    elif act == "deny":
        MODULE.set_deny(bool(msg.get("on", True)), now)
    if "link" in msg:
        MODULE.link.configure(msg["link"])


bus.on("modem", _on_modem)


def _on_link_step(key, value):
    MODULE.link.configure(link.apply_setting(MODULE.link.p, key, value))


grid.link_hooks.append(_on_link_step)
select.wakers.append(waker)
select.net.append(sys.modules[__name__])
