# The meter's NB-IoT link to its head-end (docs/firmware-engineer.md "The network"), started by app/network.py only on
# a board with a modem and a meter with a head-end: the modem driver (app/modem*.py), SMP over UDP on local port 1337
# (the console's own server: the same groups, envelopes and refusal limits), the optional uplink, the DLMS/COSEM
# wrapper on local port 4059 to the head-end's dlms_port (a board with the DLMS port's modules: app/dlms_wrapper.py comes
# in at a datagram and leaves with the session) with IS 15959's alert push on its socket, and the driver's notices as
# events, one of a kind per _QUIET_MS. Whatever goes wrong here ends the link alone, with event 432, never the app:
# metering and the console go on.
import asyncio
import time

from micropython import const

from app import events, modem, modem_smp

_WRAPPER_PORT = const(4059)  # app/dlms_wrapper.py WRAPPER_PORT (not imported: that module is on the heap per session)
_PUSH_POLL_MS = const(5000)  # how often the event ring is looked at for alerts to push
_PUSH_BATCH = const(8)  # alerts pushed per look at most
_PUSH_RETRY_S = const(60)  # after a push that failed, before the next try
_PUSH_RETRIES = const(3)  # tries of an alert after its first failed; then it is passed over (the event logs keep it)
_QUIET_MS = const(600000)  # one link event of a kind per this long: a flapping link does not wear the flash
LINKS = ("off", "searching", "denied", "up")  # app.modem LINK_* by value
_EVENTS = {
    modem.EVENT_UP: events.LINK_UP,
    modem.EVENT_LOST: events.LINK_LOST,
    modem.EVENT_DENIED: events.REGISTRATION_DENIED,
    modem.EVENT_RESTARTED: events.MODULE_RESTARTED,
    modem.EVENT_SILENT: events.MODULE_SILENT,
    modem.EVENT_PULSED: events.MODULE_PULSED,
}


class Link:
    """The driver, the server, the uplink and the DLMS wrapper for one head-end {ip, port, uplink_s[, dlms_port]}.
    `run()` is the task; dlms is (metering, supply) on a board with the DLMS port's modules, else None."""

    def __init__(self, ctx, log, headend, dlms=None):
        self.ctx = ctx
        self.log = log  # the app's EventLog
        self.headend = headend
        self.dlms = dlms
        self.modem = None
        self.udp = None
        self.dlms_sock = None  # the wrapper's socket, when the head-end has a dlms_port
        self.dlms_sessions = 0
        self.pushes = 0  # alerts pushed (alert(), below)
        self.push_failures = 0
        self.push_error = ""  # the last failed push's exception
        self.uplinks = 0
        self.quieted = 0  # link events not recorded (one of a kind per _QUIET_MS)
        self._said = {}  # event code -> ticks_ms of its last record

    async def run(self):
        h = self.headend
        try:
            self.modem = m = modem.from_board(self.ctx.board, self._event)
            wrapper = self.dlms is not None and "dlms_port" in h and m.kind.FIXED_PEER  # (answers the head-end only)
            if wrapper:  # the alert push setup's values, from the start (app/dlms_push.py: an object of a meter that pushes)
                self.ctx.dlms_push = (h, _PUSH_RETRIES, _PUSH_RETRY_S)
            supervisor = asyncio.create_task(m.run())
            sock = await m.open(h["ip"], h["port"], modem_smp.PORT)  # opened by the supervisor once registered
            self.udp = modem_smp.SmpOverUdp(self.ctx.server, sock)
            if h["uplink_s"]:
                asyncio.create_task(self._uplink(m, sock, h["uplink_s"]))
            if wrapper:
                try:
                    self.dlms_sock = await m.open(h["ip"], h["dlms_port"], _WRAPPER_PORT)
                    asyncio.create_task(self._dlms(self.dlms_sock))
                    asyncio.create_task(self._pushes(m, self.dlms_sock))
                except Exception as e:  # noqa: BLE001 - no room, no socket: SMP is served all the same
                    self._say(events.LINK_LOST, "dlms not started", e)
            await self.udp.run()
            await supervisor
        except Exception as e:  # noqa: BLE001 - the rule above
            self.log.add(events.LINK_LOST, "network stopped: %s" % repr(e))

    def status_into(self, out):
        """Group 67 status: the link's part."""
        m = self.modem
        out["uplinks"] = self.uplinks
        out["quieted"] = self.quieted
        if m is None:
            return
        out["link"] = LINKS[m.link]
        out["modem"] = {"stat": m.stat, "failures": m.failures, "pulses": m.pulses, "restarts": m.restarts,
                        "sent": m.sent, "stray": m.stray, "last_error": str(m.last_error or "")}
        u = self.udp
        if u is not None:
            s = u.sock
            out["smp"] = {"answered": u.answered, "unsent": u.unsent, "split": u.split,
                          "refused_large": u.refused_large, "dropped": s.dropped, "malformed": s.malformed}
        d = self.dlms_sock
        if d is not None:
            out["dlms"] = {"port": d.lport, "open": d.is_open, "sessions": self.dlms_sessions, "dropped": d.dropped,
                           "pushes": self.pushes, "push_failures": self.push_failures, "push_error": self.push_error}

    async def _dlms(self, sock):
        """The wrapper's port: a datagram brings in a DLMS session (app/dlms_port.py), which serves the port until no
        association holds it; a fault there ends the session, never the link."""
        while True:
            req = await sock.recv()
            self.dlms_sessions += 1
            try:
                await self._session(sock, req)
            except Exception as e:  # noqa: BLE001 - out of memory at the import, a fault: the next datagram retries
                try:
                    self._say(events.OUT_OF_MEMORY if isinstance(e, MemoryError) else events.LINK_LOST, "dlms", e)
                except Exception:  # noqa: BLE001 - (not even room to say it: the wrapper goes on)
                    pass

    async def _session(self, sock, req):
        from app import dlms_wrapper  # a local of this frame only: nothing keeps the module once the session is over

        await dlms_wrapper.serve_wrapper(self.ctx, self.dlms[0], self.dlms[1], sock, req)

    async def _pushes(self, m, sock):
        """IS 15959's alert push (alert(), below): every _PUSH_POLL_MS while the link is up, the events recorded since
        the app started (or since the last pushed) that the Event Status Word has a bit for, one datagram each, in
        order. One that cannot be sent now is tried again _PUSH_RETRY_S later; one the module refused _PUSH_RETRIES
        + 1 times (SEND FAIL, an AT error) is passed over (the event logs keep it). The next start does not send one
        again (its own start's events are pushed then: a power cut's 101 and 102 come with the restore)."""
        log = self.log
        seq = log.boot_seq
        failed = 0  # failed tries of the alert after seq
        while True:
            await asyncio.sleep_ms(_PUSH_POLL_MS)
            if m.link != modem.LINK_UP:
                continue
            todo = [e for e in log.after(seq) if e[1] in ESW_BITS][:_PUSH_BATCH]  # (a list: the ring may move)
            if not todo:
                seq = max(seq, log.seq)
            for s, code, at in todo:
                try:
                    d = self._push(s, code, at)
                    if d is None:
                        self.push_failures += 1  # no invocation counter to cipher it: skipped, never in the clear
                    else:
                        await sock.send(d)
                        self.pushes += 1
                except Exception as e:  # noqa: BLE001 - LinkDown, SendFailed, AtError, MemoryError: again later
                    self.push_failures += 1
                    self.push_error = repr(e)
                    if not isinstance(e, (modem.LinkDown, MemoryError)):  # the module's refusals count; a link
                        failed += 1  # gone or no heap now is waited out without limit
                    if failed <= _PUSH_RETRIES:  # (each try loads the push's modules: not every poll) the loop's
                        await asyncio.sleep_ms(_PUSH_RETRY_S * 1000 - _PUSH_POLL_MS)  # own poll wait makes it
                        break  # _PUSH_RETRY_S, the push setup's repetition delay
                failed = 0
                seq = s

    def _push(self, s, code, at):
        import loader

        ctx = self.ctx
        held = getattr(ctx, "dlms_ic", None)  # the counters promised and not used, shared with the DLMS ports
        if held is None:
            held = ctx.dlms_ic = bytearray(24)
        try:
            return alert(ctx.meter_id, s, code, at, self.dlms[0].cfg["tz_offset_min"], held)
        finally:
            if not getattr(ctx, "dlms_ports", 0):  # (a DLMS session holds these modules: they stay for it)
                for name in ("app.dlms_hls", "gcm", "app.dlms_names", "app.cosem"):
                    loader.forget(name)

    async def _uplink(self, m, sock, period_s):
        """While the link is up, every period_s: a CBOR map {meter, seq, up_s, link} to the head-end. Its first
        byte, 0xA4 (a map of 4), reads as an SMP header with reserved bits set and op 4, which SMP does not define:
        no SMP client takes it for a reply."""
        from cbor import dumps

        while True:
            await asyncio.sleep(period_s)
            if m.link != modem.LINK_UP:
                continue
            self.uplinks += 1
            up = getattr(self.ctx, "uptime", None)  # (a loader from before it: ticks, wrong after 6 days up)
            msg = dumps({"meter": self.ctx.meter_id, "seq": self.uplinks, "up_s": up.seconds() if up is not None
                         else time.ticks_diff(time.ticks_ms(), self.ctx.started_ms) // 1000, "link": "up"})
            try:
                await sock.send(msg)
            except Exception:  # noqa: BLE001 - LinkDown, SendFailed, AtError: the next period tries again
                self.uplinks -= 1

    def _event(self, what):
        code = _EVENTS.get(what)
        if code is not None:
            m = self.modem
            self._say(code, what if m is None or m.last_error is None else "%s: %s" % (what, m.last_error))

    def _say(self, code, detail, error=None):
        """Event `code` with `detail` (and ": " and `error`'s repr, made only once the event is due), at most one of a
        kind per _QUIET_MS."""
        now = time.ticks_ms()
        last = self._said.get(code)
        if last is not None and time.ticks_diff(now, last) < _QUIET_MS:
            self.quieted += 1
            return
        self._said[code] = now
        self.log.add(code, detail if error is None else "%s: %r" % (detail, error))


# IS 15959-2's alert push (docs/dlms.md "Alert push"): an event the meter records that IS 15959's Event Status Word has
# a bit for goes to the head-end, as a DLMS DataNotification through the wrapper's socket (local port 4059, to the
# head-end's dlms_port), from the meter's wPort 1 to the push association's client wPort 64. Its body is the values the
# alert push setup (0.4.25.9.0.255, class 40: app/dlms_push.py) lists, as Indian meters send them: the device id
# (0.0.96.1.2.255: FLAG and the meter id, as the name plate gives it), the push setup's own name, the clock
# (0.0.1.0.0.255: the event's local time) and the ESW (0.0.94.91.18.255: 128 bits, the event's bit set). With the
# utility keys set (SMP 66/11), it goes authenticated and encrypted (general-glo-ciphering, security control 0x30,
# under the meter's own invocation counter, app/dlms_hls.py); without them in the clear. What it imports
# (app/cosem.py, dlms_names.py, dlms_hls.py, lib/gcm.py) comes and goes with the push.
_PUSH_CLIENT = const(64)  # the push association's client wPort (IS 15959: 0.0.40.0.4.255)
_SERVER = const(1)  # the meter's own wPort (the management logical device)
_ESW = const(16)  # the Event Status Word: a bit-string of 128 bits (bit n: byte n // 8, mask 0x80 >> n % 8)
_DATA_NOTIFICATION = const(0x0F)
_GENERAL_GLO = const(0xDB)
# IS 15959 event code -> its ESW bit: magnet (81), cover open (83), load disconnected/connected (84), last gasp (85:
# the power failed), first breath (86: the power came back), billing counter increment (87: the monthly or a signed
# billing reset, event 425)
ESW_BITS = {101: 85, 102: 86, 201: 81, 202: 81, 251: 83, 301: 84, 302: 84, 425: 87}


def alert(meter_id, seq, code, at, tz_offset_min, held=None):
    """The wrapper datagram pushing event `code` (sequence number `seq`, at RTC seconds `at` or None), or None when
    the meter has keys but no invocation counter to cipher it with (nothing goes in the clear then). `held`: the
    counters promised and not used (the DLMS ports' ctx.dlms_ic)."""
    from app import cosem
    from app.dlms_names import FLAG, PUSH_SETUP, date_time

    esw = bytearray(_ESW)
    bit = ESW_BITS[code]
    esw[bit >> 3] |= 0x80 >> (bit & 7)
    apdu = (bytes((_DATA_NOTIFICATION, 0)) + (seq & 0xFFFFFF).to_bytes(3, "big")  # invoke id; normal, unconfirmed
            + b"\x00\x02\x04" + cosem.octets(FLAG + meter_id.encode())  # no date-time; 4 values: the device id,
            + cosem.octets(PUSH_SETUP)  # the setup's name, the time, the ESW
            + cosem.octets(date_time(at, tz_offset_min)) + b"\x04\x81\x80" + esw)
    apdu = _ciphered(meter_id, apdu, held)
    if apdu is None:
        return None
    n = len(apdu)
    return bytes((0, 1, 0, _SERVER, 0, _PUSH_CLIENT, n >> 8, n & 0xFF)) + apdu


def _ciphered(meter_id, apdu, held):
    from app import dlms_hls

    k = dlms_hls.keys()
    if k is None:
        return apdu
    s = dlms_hls.Session(meter_id, b"", b"", k[0], k[1], None, held)
    ic = s.next()
    if ic is None:
        return None
    glo = s.wrap(_GENERAL_GLO, apdu, ic)  # DB, length, SC, IC, ciphertext, tag
    return bytes((_GENERAL_GLO, 8)) + s.title + glo[1:]
