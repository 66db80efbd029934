# The meter's NB-IoT link to its head-end (docs/firmware-engineer.md "The network"), started by app/network.py only on
# a board with a modem and a meter with a head-end: the modem driver (app/modem*.py), SMP over UDP on local port 1337
# (the console's own server: the same groups, envelopes and refusal limits), the optional uplink, the DLMS/COSEM
# wrapper on local port 4059 to the head-end's dlms_port (a board with the DLMS port's modules: app/dlms_wrapper.py comes
# in at a datagram and leaves with the session), and the driver's notices as events, one of a kind per _QUIET_MS. Whatever goes wrong here ends the link alone, with event 432, never
# the app: metering and the console go on.
import asyncio
import time

from micropython import const

from app import events, modem, modem_smp

_WRAPPER_PORT = const(4059)  # app/dlms_wrapper.py WRAPPER_PORT (not imported: that module is on the heap per session)
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
        self.uplinks = 0
        self.quieted = 0  # link events not recorded (one of a kind per _QUIET_MS)
        self._said = {}  # event code -> ticks_ms of its last record

    async def run(self):
        h = self.headend
        try:
            self.modem = m = modem.from_board(self.ctx.board, self._event)
            supervisor = asyncio.create_task(m.run())
            sock = await m.open(h["ip"], h["port"], modem_smp.PORT)  # opened by the supervisor once registered
            self.udp = modem_smp.SmpOverUdp(self.ctx.server, sock)
            if h["uplink_s"]:
                asyncio.create_task(self._uplink(m, sock, h["uplink_s"]))
            if self.dlms is not None and "dlms_port" in h and m.kind.FIXED_PEER:  # (answers the head-end only)
                try:
                    self.dlms_sock = await m.open(h["ip"], h["dlms_port"], _WRAPPER_PORT)
                    asyncio.create_task(self._dlms(self.dlms_sock))
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
            out["dlms"] = {"port": d.lport, "open": d.is_open, "sessions": self.dlms_sessions, "dropped": d.dropped}

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
