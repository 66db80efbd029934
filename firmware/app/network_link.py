# The meter's NB-IoT link to its head-end (docs/firmware-engineer.md "The network"), started by app/network.py only on
# a board with a modem and a meter with a head-end: the modem driver (app/modem*.py), SMP over UDP on local port 1337
# (the console's own server: the same groups, envelopes and refusal limits), the optional uplink, and the driver's
# notices as events, one of a kind per _QUIET_MS. Whatever goes wrong here ends the link alone, with event 432, never
# the app: metering and the console go on.
import asyncio
import time

from micropython import const

from app import events, modem, modem_smp

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
    """The driver, the server and the uplink for one head-end {ip, port, uplink_s}. `run()` is the task."""

    def __init__(self, ctx, log, headend):
        self.ctx = ctx
        self.log = log  # the app's EventLog
        self.headend = headend
        self.modem = None
        self.udp = None
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
        if code is None:
            return
        now = time.ticks_ms()
        last = self._said.get(code)
        if last is not None and time.ticks_diff(now, last) < _QUIET_MS:
            self.quieted += 1
            return
        self._said[code] = now
        m = self.modem
        self.log.add(code, what if m is None or m.last_error is None else "%s: %s" % (what, m.last_error))
