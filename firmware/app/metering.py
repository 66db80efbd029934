# The metering task: once per measurement period the board's front end gives a reading (V, I, P, Q, S, PF, f), the
# energy since the previous reading goes into the registers (TOU zone by local time, maximum demand), and every
# persist_interval_s the registers go to flash. It also averages readings for a calibration step on request.
import asyncio
import time

from app import calibration, dsp, meter_settings, registers
from loader import journal, wallclock

CAL_READINGS_MAX = 60
CREEP_FRACTION = 0.5  # energy is not counted below this share of the starting power (no-load creep)


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
        cfg, problem = meter_settings.load()
        if problem:
            journal.event("config-invalid", "metering: " + problem)
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
        if status in ("lost", "one-bad"):
            journal.event("registers-" + status, "seq %d" % self.persist.seq)
        self.persist_ms = cfg["persist_interval_s"] * 1000
        self.saved_ms = time.ticks_ms()
        self.last_ms = None
        self.read_ms = None
        self.readings = 0
        self.clock_known = False
        self.local = None  # the local time tuple (time.gmtime form) of the last reading, None while unknown
        self.listeners = []  # listener(metering, ticks_ms) after each reading is accounted (the supply's rules)
        self.on_save = []  # called after each register save (the credit record is saved with them)
        self.zone = 1
        self.mj_rest = 0.0  # fraction of a millijoule carried between CF conversions
        self.cal = {}  # the calibration step collecting readings (empty: none)
        self.measure_ms = time.ticks_ms()  # when the reading under way began
        self.cal_result = {}  # state of the last calibration step (meter group cmd 2)
        ctx.before_reset.append(self.save)

    # -- the loop ------------------------------------------------------------------------------------------------
    async def run(self):
        nxt = time.ticks_ms()
        while True:
            self.measure_ms = time.ticks_ms()  # a calibration step counts only readings begun after it started
            if await self.front.measure(self.reading):
                self.account(time.ticks_ms())
            if time.ticks_diff(time.ticks_ms(), self.saved_ms) >= self.persist_ms:
                try:
                    self.save()
                except MemoryError:  # noqa: B014
                    import gc

                    gc.collect()  # the registers stay in RAM and the stored copy stays whole: try at the next reading
            nxt = time.ticks_add(nxt, self.period_ms)
            wait = time.ticks_diff(nxt, time.ticks_ms())
            if wait < 0:  # fell behind (a long burst or console work): restart the schedule from now
                nxt = time.ticks_ms()
                wait = 0
            await asyncio.sleep_ms(wait)

    def account(self, now):
        r = self.reading
        first = self.last_ms is None
        dt = 0 if first else time.ticks_diff(now, self.last_ms)
        self.last_ms = now
        self.read_ms = now
        self.readings += 1
        if self.cal and time.ticks_diff(self.measure_ms, self.cal["from_ms"]) >= 0:
            self._collect(r)  # (a reading already under way when the step started may be of the load before it)
        if abs(r.p) < self.creep_w:
            r.p = 0.0
            r.q = 0.0
            r.s = 0.0
            r.pf = 1.0
        local = self.local_time()
        self.local = local
        self.zone = self.zone_of(local)
        p_mj = self.active_mj(r, dt)
        self.regs.integrate(p_mj, int(r.q * dt + 0.5) if r.q >= 0 else -int(-r.q * dt + 0.5), int(r.s * dt + 0.5),
                            self.zone)
        period = self.cfg["md_period_s"]
        rtc = wallclock.rtc_now()
        if rtc is not None:
            self.regs.demand(rtc // period, period, (rtc // period) * period)
        else:
            self.regs.demand(time.ticks_diff(now, self.ctx.started_ms) // 1000 // period, period, None)
        for listener in self.listeners:
            listener(self, now)

    def active_mj(self, r, dt):
        pulses = self.front.pulses
        if pulses is None:
            if getattr(self.front, "kind", "") == "bl0942":
                return 0  # the first packet only sets the CF counter's baseline
            e = r.p * dt
        else:
            e = pulses * self.front.mj_per_pulse + self.mj_rest
            whole = int(e)
            self.mj_rest = e - whole
            e = whole if r.p >= 0 else -whole
            return e
        return int(e + 0.5) if e >= 0 else -int(-e + 0.5)

    def local_time(self):
        rtc = wallclock.rtc_now()
        self.clock_known = rtc is not None
        if rtc is None:
            return None
        return time.gmtime(rtc + self.cfg["tz_offset_min"] * 60 - wallclock.PORT_EPOCH_S)

    def set_calendar(self, new):
        """Use a checked calendar (some of meter_settings.CALENDAR) from the next reading on."""
        self.cfg.update(new)
        self.tou = meter_settings.parse_tou(self.cfg["tou"])
        w = self.cfg["tou_weekend"]
        self.tou_weekend = meter_settings.parse_tou(w) if w else None

    def zone_of(self, local):
        if local is None:
            return self.tou[0][1]  # clock unknown: the first zone of the day (reported as clock_known false)
        table = self.tou_weekend if self.tou_weekend is not None and local[6] >= 5 else self.tou
        return meter_settings.zone_at(table, local[3] * 60 + local[4])

    def save(self):
        self.regs.extra["at"] = wallclock.rtc_now()  # dates a power failure at the next boot (app/supply.py)
        self.persist.save(self.regs)
        self.saved_ms = time.ticks_ms()
        for fn in self.on_save:
            fn()

    # -- calibration ---------------------------------------------------------------------------------------------
    def start_calibration(self, step, v, i, pf, n):
        calibration.check_reference(self.board, step, v, i, pf)
        self.cal = {"step": step, "v": v, "i": i, "pf": pf, "n": n, "got": 0, "sum": [0.0, 0.0, 0.0, 0.0],
                    "from_ms": time.ticks_ms()}
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
        n = c["got"]
        avg = (s[0] / n, s[1] / n, s[2] / n, s[3] / n)
        try:
            new = calibration.apply(self.board, self.consts, c["step"], avg, c["v"], c["i"], c["pf"])
        except calibration.CalibrationError as e:
            self.cal_result = {"state": "failed", "step": c["step"], "error": e.code, "measured": list(avg)}
            journal.event("calibration-failed", "%s: %s" % (c["step"], e.code))
            return
        steps = self._steps() + [c["step"]]
        calibration.save(self.board, new, steps, wallclock.rtc_now())
        self.consts = new
        self.cal_source = "calibrated"
        self.front.set_constants(new)
        self.cal_result = {"state": "done", "step": c["step"], "measured": list(avg), "constants": new}
        journal.event("calibrated", c["step"])

    def _steps(self):
        try:
            _, rec = calibration.store.read_record(calibration.PATH, calibration.KIND, calibration.VERSION)
        except ValueError:
            return []
        steps = rec.get("steps") if isinstance(rec, dict) and rec.get("frontend") == self.front.kind else None
        return list(steps) if type(steps) is list else []
