# The metering task: once per measurement period the board's front end gives a reading (V, I, P, Q, S, PF, f), the
# energy since the previous reading goes into the registers (TOU zone by local time, maximum demand), the listeners
# (the supply) get the reading as one Tick (app/tick.py), and every persist_interval_s the registers go to flash. It
# also averages readings for a calibration step on request. A full heap skips one interval, never the metering: a
# MemoryError that ended the app would reset a locked meter.
import asyncio
import gc
import time

from micropython import const

import loader
from app import calibration, dsp, events, meter_settings, registers
from app.tick import Tick
from loader import wallclock

CAL_READINGS_MAX = 60
CREEP_FRACTION = 0.5  # energy is not counted below this share of the starting power (no-load creep)
_SETTLED_READINGS = const(10)  # readings after a start before the daily profile looks for the day's row
_MEMORY_HOLD_MS = const(60000)  # at most one out-of-memory event in this long, counting the intervals it stands for


def make_frontend(board, consts):
    if calibration.frontend(board) == calibration.BL0942:
        from app.bl0942 import Bl0942Frontend

        return Bl0942Frontend(board, consts)
    from app.adc_frontend import AdcFrontend

    return AdcFrontend(board, consts)


class Metering:
    def __init__(self, ctx, frontend=None):
        self.ctx = ctx
        board = ctx.board
        self.board = board
        self.consts, self.cal_source = calibration.load(board)
        self.front = frontend or make_frontend(board, self.consts)
        # events of the start-up, kept until the app's event ring is loaded (attach): the ring comes after metering,
        # whose buffers are placed first while the heap is whole (app/main.py)
        self.log = None
        self.noted = []
        cfg, problem = meter_settings.load()
        if problem:
            self.note(events.SETTINGS_INVALID, "metering: " + problem)
        self.cfg = cfg
        self.set_calendar(cfg)  # the TOU tables
        m = board["metering"]
        acc = m.get("accuracy") or {}
        self.creep_w = CREEP_FRACTION * acc.get("starting_ib", 0.004) * m["ib_amps"] * m["nominal_voltage"]
        self.period_ms = board["frontend"].get("period_ms", 1000)
        self.reading = dsp.Reading()
        self.regs = registers.Registers()
        self.persist = registers.Persist()
        status = self.persist.load(self.regs)
        if status == "lost":
            self.note(events.REGISTERS_LOST, "restarted at zero")
        elif status == "one-bad":
            self.note(events.REGISTER_COPY_BAD, "seq %d used" % self.persist.seq)
        self.persist_ms = cfg["persist_interval_s"] * 1000
        self.saved_ms = time.ticks_ms()
        self.last_ms = None
        self.readings = 0
        self.day = None  # the local day (days since 1970) of the daily load profile's last row, None before the first
        self.bill_day = None  # the local day the monthly billing was last looked at (app/load_profile.py bill)
        self.tick = Tick(self.reading, self.regs)  # the last reading as listeners saw it (refilled, never rebuilt)
        self.listeners = []  # listener(tick) after each reading is accounted (the supply's rules)
        self.on_save = []  # called after each register save (the credit record is saved with them)
        self.skipped = 0  # intervals lost to a full heap since the last event about it
        self.short_ms = None  # when that event was written
        self.cal = {}  # the calibration step collecting readings (empty: none)
        self.measure_ms = time.ticks_ms()  # when the reading under way began
        self.cal_result = {}  # state of the last calibration step (meter group cmd 2)
        ctx.before_reset.append(self.save)

    # -- events --------------------------------------------------------------------------------------------------
    def note(self, code, detail):
        """An event for the app's ring (app/events.py), held until the ring is attached."""
        if self.log is None:
            self.noted.append((code, detail))
        else:
            self.log.add(code, detail)

    def attach(self, log):
        """The app's event ring, once loaded: the start-up's events go in first."""
        self.log = log
        for code, detail in self.noted:
            log.add(code, detail)
        self.noted = []

    def _profile(self, what, row, *args):
        """IS 15959's stored profiles take a row (app/load_profile.py's `what`: "block" or "daily"; "bill", the monthly
        billing reset of app/billing.py, takes this metering task; the modules are on the heap for the one write).
        With no room for its code, what the SMP server's releasers hold (a DLMS session) is given back and the row
        tried once more at once: a head-end that keeps a session up re-takes the heap at its next request, so a row
        left for the next reading could find it taken again reading after reading (the emulated ESP32 with its
        network up skipped its daily row for 120 readings under a meter reader's sessions through the modem). False
        when there was still no room: the next reading tries again; a flash that refuses the row: it is lost and said
        (event 419)."""
        room = getattr(self.ctx.server, "make_room", None)  # a loader from before make_room has none
        again = False
        while True:
            try:
                from app import load_profile

                try:
                    if what == "bill":
                        from app import billing

                        billing.bill(row, *args)
                    else:
                        getattr(load_profile, what)(row, *args)
                finally:
                    loader.forget("app.billing")
                    loader.forget("app.load_profile")
            except MemoryError:  # noqa: B014 - the releasers' heap given back and collected, then once more
                freed = False
                if not again and room is not None:
                    try:
                        freed = room()
                    except MemoryError:  # noqa: B014 - a releaser that needed room to give its own: it gave it
                        freed = True
                if not freed:
                    self.short_of_memory(what + " profile")
                    return False
                gc.collect()
                again = True
                continue
            except OSError as e:
                self.note(events.PROFILE_ROW_LOST, "%s at %d: %s" % (what, row[0], e))
            return True

    def short_of_memory(self, where):
        """A MemoryError in `where` skipped one interval: free what can be freed and say so, at most one event per
        _MEMORY_HOLD_MS (a heap that stays full would otherwise write the ring's flash at every reading). What the
        SMP server's releasers hold goes first (loader/smp.py make_room: a DLMS session on the optical port), so
        that a reader on the port can cost metering and the supply's rules one interval at most, not one per reading."""
        room = getattr(self.ctx.server, "make_room", None)  # a loader from before make_room has none
        if room is not None:
            try:
                room()
            except MemoryError:  # noqa: B014 - a releaser that needed room to give its own: collected below
                pass
        gc.collect()
        self.skipped += 1
        now = time.ticks_ms()
        if self.log is None or (self.short_ms is not None and time.ticks_diff(now, self.short_ms) < _MEMORY_HOLD_MS):
            return
        try:
            self.log.add(events.OUT_OF_MEMORY, "%s, %d skipped" % (where, self.skipped))
        except MemoryError:  # noqa: B014 - still no room even for the event: counted, told next time
            gc.collect()
            return
        self.skipped = 0
        self.short_ms = now

    # -- the loop ------------------------------------------------------------------------------------------------
    async def run(self):
        nxt = time.ticks_ms()
        while True:
            self.measure_ms = time.ticks_ms()  # a calibration step counts only readings begun after it started
            try:
                if await self.front.measure(self.reading):
                    self.account(time.ticks_ms())
            except MemoryError:  # noqa: B014 - the next reading's interval covers this one (account: last_ms)
                self.short_of_memory("reading")
            self.persist_due()
            nxt = time.ticks_add(nxt, self.period_ms)
            wait = time.ticks_diff(nxt, time.ticks_ms())
            if wait < 0:  # fell behind (a long burst or console work): restart the schedule from now
                nxt = time.ticks_ms()
                wait = 0
            await asyncio.sleep_ms(wait)

    def persist_due(self):
        """Save the registers when persist_interval_s has passed since the last save."""
        if time.ticks_diff(time.ticks_ms(), self.saved_ms) < self.persist_ms:
            return
        try:
            self.save()
        except MemoryError:  # noqa: B014
            # the registers stay in RAM and the stored copy stays whole (alternating files): tried at the next reading
            self.short_of_memory("save")

    def account(self, now):
        r = self.reading
        t = self.tick
        dt = 0 if self.last_ms is None else time.ticks_diff(now, self.last_ms)
        if self.cal and time.ticks_diff(self.measure_ms, self.cal["from_ms"]) >= 0:
            self._collect(r)  # (a reading already under way when the step started may be of the load before it)
        if abs(r.p) < self.creep_w:
            r.p = 0.0
            r.q = 0.0
            r.s = 0.0
            r.pf = 1.0
        rtc = wallclock.rtc_now()  # the one RTC read of this reading: zone, demand and every listener use it
        up = getattr(self.ctx, "uptime", None)  # (a loader from before it: ticks, wrong after 6 days up)
        t.uptime_s = up.seconds() if up is not None else time.ticks_diff(now, self.ctx.started_ms) // 1000
        t.rtc = rtc
        t.local = self.local_time(rtc)
        t.zone = self.zone_of(t.local)
        # (the averages first: their float sums allocate, and a MemoryError after the energy went into the registers
        # would count it again at the next reading)
        self.regs.average(r.voltage, r.current, dt)
        p_mj = self.front.take_energy(r, dt)
        self.regs.integrate(p_mj, int(r.q * dt + 0.5) if r.q >= 0 else -int(-r.q * dt + 0.5), int(r.s * dt + 0.5),
                            t.zone)
        # the interval is in the registers: only now does the next reading measure from here (a MemoryError above
        # leaves last_ms, so the next reading's interval covers this one's too)
        self.last_ms = now
        t.ms = now
        self.readings += 1
        period = self.cfg["md_period_s"]
        if rtc is not None:
            self.regs.demand(rtc // period, period, (rtc // period) * period)
        else:
            self.regs.demand(t.uptime_s // period, period, None)
        if self.regs.closed is not None and self._profile("block", self.regs.closed):
            self.regs.closed = None
        # IS 15959's daily load profile: a row at the first reading of each local day; after a start, once the app has
        # settled (its tenth reading: the network's and the supply's start-up allocations are done, so the module's
        # visit does not split the heap they are taking)
        if rtc is not None and (self.day is not None or self.readings >= _SETTLED_READINGS):
            tz_s = self.cfg["tz_offset_min"] * 60
            day = (rtc + tz_s) // 86400
            if day != self.day and self._profile("daily", (day * 86400 - tz_s, self.regs.mwh(registers.IMPORT),
                                                           self.regs.mwh(registers.APPARENT),
                                                           self.regs.mwh(registers.EXPORT)), self.day is None):
                self.day = day
            if day != self.bill_day and self._profile("bill", self, day, tz_s):  # the monthly billing reset
                self.bill_day = day
        for listener in self.listeners:
            try:
                listener(t)
            except MemoryError:  # noqa: B014 - the listener's rules skip this reading; metering goes on
                self.short_of_memory("listener")

    def local_time(self, rtc):
        """(year, month, day, weekday, minute of day) in local time, or None while the RTC is unknown."""
        if rtc is None:
            return None
        lt = time.gmtime(rtc + self.cfg["tz_offset_min"] * 60 - wallclock.PORT_EPOCH_S)
        return (lt[0], lt[1], lt[2], lt[6], lt[3] * 60 + lt[4])

    def set_calendar(self, new):
        """Use a checked calendar (some of meter_settings.CALENDAR) from the next reading on."""
        self.cfg.update(new)
        self.bill_day = None  # a billing day moved (or a time zone) is looked at from the next reading on
        self.tou = meter_settings.parse_tou(self.cfg["tou"])
        w = self.cfg["tou_weekend"]
        self.tou_weekend = meter_settings.parse_tou(w) if w else None

    def zone_of(self, local):
        if local is None:
            return self.tou[0][1]  # clock unknown: the first zone of the day (reported as clock_known false)
        table = self.tou_weekend if self.tou_weekend is not None and local[3] >= 5 else self.tou
        return meter_settings.zone_at(table, local[4])

    def save(self):
        self.regs.extra["at"] = wallclock.rtc_now()  # dates a power failure at the next boot (app/supply.py)
        self.persist.save(self.regs)
        self.saved_ms = time.ticks_ms()
        for fn in self.on_save:
            fn()

    # -- calibration ---------------------------------------------------------------------------------------------
    def start_calibration(self, step, v, i, pf, n):
        # Deferred for RAM: a calibration is a factory step; its module leaves the heap when the step ends (_collect)
        from app import calibrate

        calibrate.check_reference(self.board, step, v, i, pf)
        self.cal = {"step": step, "v": v, "i": i, "pf": pf, "n": n, "got": 0, "sum": [0.0, 0.0, 0.0, 0.0],
                    "from_ms": time.ticks_ms(), "steps": calibrate}
        self.cal_result = {"state": "collecting", "step": step, "n": n, "got": 0}

    def _collect(self, r):
        c = self.cal
        s = c["sum"]
        s[0] += r.voltage
        s[1] += r.current
        s[2] += r.p
        s[3] += r.q
        c["got"] += 1
        self.cal_result["got"] = c["got"]
        if c["got"] < c["n"]:
            return
        self.cal = {}
        loader.forget("app.calibrate")  # c holds it for this step: it leaves the heap with c
        n = c["got"]
        avg = (s[0] / n, s[1] / n, s[2] / n, s[3] / n)
        try:
            new = c["steps"].apply(self.board, self.consts, c["step"], avg, c["v"], c["i"], c["pf"])
        except calibration.CalibrationError as e:
            self.cal_result = {"state": "failed", "step": c["step"], "error": e.code, "measured": list(avg)}
            self.note(events.CALIBRATION_FAILED, "%s: %s" % (c["step"], e.code))
            return
        steps = self._steps() + [c["step"]]
        c["steps"].save(self.board, new, steps, wallclock.rtc_now())
        self.consts = new
        self.cal_source = "calibrated"
        self.front.set_constants(new)
        self.cal_result = {"state": "done", "step": c["step"], "measured": list(avg), "constants": new}
        self.note(events.CALIBRATED, c["step"])

    def _steps(self):
        try:
            _, rec = calibration.store.read_record(calibration.PATH, calibration.KIND, calibration.VERSION)
        except ValueError:
            return []
        steps = rec.get("steps") if isinstance(rec, dict) and rec.get("frontend") == self.front.kind else None
        return list(steps) if type(steps) is list else []

