# The DLMS/COSEM ports' sessions: IEC 62056-46 HDLC on the board's uarts.optical (an optical probe head or an RS-485
# transceiver: OpticalPort), and the IEC 62056-47 UDP wrapper on port 4059 through the NB-IoT module to the meter's
# head-end (app/dlms_wrapper.py WrapperPort, on this module's Port, started by app/network_link.py). The app's line task (app/main.py _optical) waits for a flag
# byte with nothing of DLMS on the heap, the network's task for a datagram on port 4059; at one it brings in this
# module and the session loads the layers (app/cosem.py, dlms_objects.py with dlms_names.py, and app/hdlc.py for the
# optical port: a session holds about 19 KB of an ESP32's heap with them, docs/BENCHMARKS.md; app/dlms_profiles.py
# comes in for a profile's read only). They serve the port until no association holds it and it has been quiet for
# _IDLE_MS (after the client's DISC or RLRQ, or the inactivity timeout); then they and this module leave the heap
# again (once neither port's session holds them). A meter nobody reads this way never pays for them. They also give
# way to the meter's own work: when a signed command or an upload's check finds no room, the SMP server asks the
# session for its heap (loader/smp.py make_room) and the layers go at once; over HDLC the client's next frame is
# answered DM (disconnected), over the wrapper its next request finds no association; it connects again. Requests
# are answered as they come: the server is the management logical device (HDLC address 1, one-byte form; wPort 1),
# the public client's association (client SAP 16) reads the meter's objects but the load profiles, read-only; the
# meter reader's (SAP 32) reads them too, with its secret (app/dlms_secret.py: three wrong ones in a row lock the
# meter reader out, 10 minutes and longer each time, event 420 per lock); the utility settings' (SAP 48) with its
# keys (app/dlms_hls.py).
import asyncio
import gc
import sys
import time

from micropython import const

import loader
from app.console import _readable

SERVER = const(1)
_IDLE_MS = const(5000)  # no association and a quiet port this long: the session ends, its code leaves the heap
LOAD_TRIES = const(5)  # a session's first load of the layers: tries, the later ones after LOAD_WAIT_MS each
LOAD_WAIT_MS = const(400)
_MEMORY_HOLD_MS = const(60000)  # at most one out-of-memory event (418) from the port in this long
LAYERS = ("app.hdlc", "app.cosem", "app.dlms_objects", "app.dlms_names")
_PROFILE_LAYERS = ("app.dlms_profiles", "app.dlms_load", "app.dlms_select", "app.load_profile", "app.dlms_push",
                   "app.dlms_hls", "gcm")


async def serve(ctx, metering, supply, uart, buf, n):
    """Serve the optical line from its first flag (the n bytes in buf) until no client holds it; then the DLMS code,
    this module included, leaves the heap."""
    port = OpticalPort(ctx, metering, supply, uart, buf)
    try:
        if await port.start():
            port.feed(n)
            await port.session()
    finally:
        port.close()


class Port:
    """What both ports share: the layers over the meter's objects, loaded and unloaded, the associations' checks
    (the meter reader's secret, the utility's keys, class 70's actions) and the heap given away."""

    def __init__(self, ctx, metering, supply):
        self.ctx = ctx
        self.metering = metering
        self.supply = supply
        self.last_ms = time.ticks_ms()  # when the port last brought bytes
        self.idle_ms = _IDLE_MS
        self.loads = 0  # times the layers were loaded in this session
        self.released = 0  # of those, ended to give the heap to a signed command or an upload's check
        self.faults = 0  # exceptions out of the DLMS layers (each drops the port's state)
        self._held = False  # this port's layers are in (counted in ctx.dlms_ports)
        self._releasers = getattr(ctx.server, "releasers", None)  # a loader before make_room has none
        self._release = self.give_heap  # one bound method, so that close() finds the one it registered
        # the sessions alive (ctx.dlms_sessions): this module and the wrapper's leave sys.modules when the last closes
        ctx.dlms_sessions = getattr(ctx, "dlms_sessions", 0) + 1
        if self._releasers is not None:
            self._releasers.append(self._release)

    def _load(self):  # the port's layers in: its association, and what carries it (OpticalPort, WrapperPort)
        raise NotImplementedError

    def _drop(self):  # the port's layers let go; whether they were in
        raise NotImplementedError

    def association(self, max_pdu=0):
        """An Association over the meter's objects (the layers in), whose largest PDU is max_pdu (cosem.MAX_PDU
        when 0)."""
        from app import cosem, dlms_names, dlms_objects

        if not self._held:
            self.ctx.dlms_ports = getattr(self.ctx, "dlms_ports", 0) + 1
            self._held = True
        m = self.metering
        ctx = self.ctx
        rating = ctx.board["metering"]
        serial = ctx.meter_id.encode()
        plate = (serial, dlms_names.FLAG + serial, dlms_objects.MANUFACTURER, (ctx.app_version or "").encode(),
                 ("%g-%g A" % (rating["ib_amps"], rating["imax_amps"])).encode())
        objects = dlms_objects.Objects(m.tick, self.supply.control, dlms_objects.logical_device_name(ctx.meter_id),
                                       lambda: m.cfg["tz_offset_min"], self.supply.log, plate,
                                       lambda: m.cfg["md_period_s"], self.supply, getattr(ctx, "dlms_push", None))
        self.loads += 1
        return cosem.Association(objects.get, max_pdu or cosem.MAX_PDU, lls=self.reader_secret, hls=self.utility,
                                 act=self.act, put=self.put)

    def reader_secret(self, secret):
        """cosem.Association's check of the meter reader's secret, with the lock against guessing
        (app/dlms_secret.py: on the heap for the check only; no room for it: MemoryError, which cosem answers
        rejected-transient)."""
        from app import dlms_secret

        try:
            return dlms_secret.check(self.ctx, self.supply.log, secret)
        finally:
            loader.forget("app.dlms_secret")

    def utility(self, title, ctos):
        """cosem.Association's security for a utility-settings AARQ (app/dlms_hls.py: on the heap while that
        association is made or holds, with lib/gcm.py); None when the meter has no keys."""
        from app import dlms_hls

        ctx = self.ctx
        held = getattr(ctx, "dlms_ic", None)  # the meter's counters promised and not used yet, across associations
        if held is None:
            held = ctx.dlms_ic = bytearray(24)
        return dlms_hls.session(ctx.meter_id, title, ctos, self.supply.log, held)

    def put(self, cls, obis, attr, data, client):
        """cosem.Association's SET (the utility-settings association's only): the clock's time, as the signed SMP
        clock command sets it (event 151), its time zone, as the signed calendar command sets the calendar's offset,
        and the limiter's threshold and durations, through the supply's settings as the signed SMP settings command
        goes (event 410 both): app/dlms_supply.py put."""
        from app import cosem, dlms_supply

        try:
            if client != cosem.UTILITY_CLIENT:
                return cosem.READ_WRITE_DENIED
            return dlms_supply.put(self.supply, cls, attr, data, self.metering.cfg["tz_offset_min"])
        finally:
            loader.forget("app.dlms_supply")

    def act(self, cls, obis, method, data, client):
        """cosem.Association's ACTION (the utility-settings association's only): class 70's remote_disconnect (1)
        and remote_reconnect (2), parameter integer 0, through the supply's disconnect engine as the signed SMP relay
        command goes (events 301/302); temporary-failure (2) when the control mode allows no such change now."""
        from app import cosem, dlms_objects

        control = self.supply.control
        if cls != 70 or obis != dlms_objects.DISCONNECT or control is None or method not in (1, 2):
            return cosem.OBJECT_UNDEFINED
        if client != cosem.UTILITY_CLIENT:
            return cosem.READ_WRITE_DENIED
        if data != b"\x0f\x00":
            return cosem.TYPE_UNMATCHED
        return 2 if self.supply.remote("disconnect" if method == 1 else "reconnect") is None else 0

    async def start(self):
        """The layers in for a session's first request (still in the port's buffer): on a MemoryError again after a
        collection, then after waits (LOAD_WAIT_MS) in which the app's other tasks let go of what they hold. False
        when there is still no room: event 418, and the request goes unanswered (the client sends it again)."""
        for k in range(LOAD_TRIES):
            if k > 1:
                await asyncio.sleep_ms(LOAD_WAIT_MS)
            try:
                self._load()
                return True
            except MemoryError as e:  # noqa: B014 - the heap in pieces: not the end of the port
                self.unload()
                gc.collect()
                why = e
        self.faults += 1
        self.short_of_memory("dlms start", why)
        return False

    def load_again(self):
        """The layers in for a request that came after they went (given away): once more on a collected heap when
        the first try finds no room. What _load() gives (the deframer, the association)."""
        try:
            return self._load()
        except MemoryError:  # noqa: B014 - the ESP32's heap in pieces: so the client's request is answered
            self.unload()
            gc.collect()
            return self._load()

    def fault(self, e):
        """An exception out of the layers (a MemoryError, a bug) must not end metering's app: the port's state is
        dropped, the client starts again."""
        self.faults += 1
        self.unload()
        if isinstance(e, MemoryError):
            self.short_of_memory("dlms", e)

    def short_of_memory(self, where, e):
        """Event 418 for a session the heap had no room for (at most one per _MEMORY_HOLD_MS, the ring's flash)."""
        log = self.supply.log
        now = time.ticks_ms()
        last = getattr(self.ctx, "dlms_short_ms", None)
        if log is None or (last is not None and time.ticks_diff(now, last) < _MEMORY_HOLD_MS):
            return
        self.ctx.dlms_short_ms = now
        from app import events

        t = str(e)
        k = t.find("allocating")  # (MicroPython's "memory allocation failed, allocating N bytes": the size)
        try:
            log.add(events.OUT_OF_MEMORY, "%s: %s" % (where, t[k:] if k >= 0 else t))
        except MemoryError:  # noqa: B014 - no room even for the event
            gc.collect()

    def unload(self):
        """Take this port's DLMS layers off the heap (nothing of them stays referenced here); whether they were
        loaded. Their modules leave sys.modules once no other port's session holds them (two copies of a module
        would cost twice its heap); those a load that failed part-way brought in go too."""
        was = self._drop()
        if self._held:
            self._held = False
            self.ctx.dlms_ports -= 1
        if not getattr(self.ctx, "dlms_ports", 0):
            modules = sys.modules
            for name in LAYERS + _PROFILE_LAYERS:  # (and a profile read's, should one have been cut short)
                if name in modules:  # (a loader before it interned the name of one never loaded: a qstr pool)
                    loader.forget(name)
        return was

    def give_heap(self):
        """The SMP server's releaser: a session in progress ends so that a signed command or an upload's check finds
        room (its client connects again)."""
        try:
            if self.unload():
                self.released += 1
                return True
        except MemoryError:  # noqa: B014 - what it held is let go all the same: the caller collects
            return True
        return False

    def close(self):
        """The session is over: the layers and (when no other session is alive) this module leave the heap."""
        if self._releasers is not None and self._release in self._releasers:
            self._releasers.remove(self._release)
        self.unload()
        self.ctx.dlms_sessions -= 1
        if not self.ctx.dlms_sessions:  # (a session that gave its heap away still runs on these modules)
            loader.forget("app.dlms_wrapper")
            loader.forget("app.dlms_port")


class OpticalPort(Port):
    """HDLC on the optical line: frames answered as they complete."""

    def __init__(self, ctx, metering, supply, uart, buf):
        super().__init__(ctx, metering, supply)
        self.uart = uart
        self.buf = buf
        self.deframer = None  # the DLMS layers while loaded: the deframer, whose frames go to the link
        self.link = None
        self.noise = 0  # bytes with no flag while the layers were out: counted, nothing loaded

    def _load(self):
        from app import hdlc

        assoc = self.association()
        link = hdlc.Link(SERVER, 1, None)
        link.on_apdu = lambda req: assoc.apdu(req, link.client)
        link.on_disconnect = assoc.release
        uart = self.uart
        port = self

        def answer(f):
            r = link.receive(f, port.last_ms)  # the moment its bytes came: the link's clock and the port's agree
            if r is not None:
                uart.write(r)

        d = hdlc.Deframer()
        d.on_frame = answer
        self.deframer = d
        self.link = link
        return d

    def _drop(self):
        was = self.deframer is not None
        self.deframer = None
        self.link = None
        return was

    def idle(self, now_ms):
        """Whether the layers can go: no association connected (a link whose client went silent is disconnected
        here, at its inactivity timeout) and the line quiet for idle_ms."""
        link = self.link
        return link is not None and not link.connected(now_ms) and time.ticks_diff(now_ms, self.last_ms) >= self.idle_ms

    def feed(self, n):
        """The n bytes in self.buf, from the line."""
        self.last_ms = time.ticks_ms()
        buf = self.buf
        try:
            d = self.deframer
            if d is None:
                if buf.find(b"\x7e", 0, n) < 0:
                    self.noise += n
                    return
                d = self.load_again()
            d.feed(buf, n)
        except Exception as e:  # noqa: BLE001 - see fault()
            self.fault(e)

    async def session(self):
        """Read and answer the line while the layers are in; return once the session is over (idle, a fault, or
        the heap given away and the line quiet)."""
        uart = self.uart
        while self.deframer is not None:
            try:
                await asyncio.wait_for_ms(_readable(uart), self.idle_ms)
            except asyncio.TimeoutError:  # noqa: UP041 - MicroPython has no builtin TimeoutError
                if self.deframer is None or self.idle(time.ticks_ms()):
                    return
                continue
            n = uart.readinto(self.buf)
            if n:
                self.feed(n)
