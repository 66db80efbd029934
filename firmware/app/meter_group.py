# SMP group 65, "metering": readings keyed by OBIS code, and calibration (docs/smp-groups.md).
#   0 read         instantaneous values (V, A, W, var, VA, PF, Hz) and registers (integer mWh, varh, VAh × 1000)
#   1 calibrate    write: start a calibration step at stated reference conditions (locked: signed "meter.calibrate")
#   2 calibration  read: the constants in use, their source, and the state of the last step
#   3 profile      read: IS 15959's block or daily load profile rows after a time (app/load_profile.py), a page at a time
import time

from micropython import const

from app import calibration, registers
from loader import smp, strict

GROUP_METERING = const(65)
_CMD_READ = const(0)
CMD_CALIBRATE = const(1)
_CMD_CALIBRATION = const(2)
_CMD_PROFILE = const(3)
CMD_NAME_CALIBRATE = "meter.calibrate"
# group return codes for SMP v2 clients (docs/smp-groups.md)
RC_NOT_READY = const(1)  # no reading yet
RC_BAD_REFERENCE = const(2)  # calibration reference refused (see "error" in the calibration state)
RC_NOT_AUTHORISED = const(3)
RC_BAD_REQUEST = const(4)  # a profile read's kind, since or limit is not one the meter takes
_CAL_READINGS_DEFAULT = const(10)
INSTANT = (
    ("1.0.12.7.0.255", "voltage"),
    ("1.0.11.7.0.255", "current"),
    ("1.0.1.7.0.255", "p"),
    ("1.0.3.7.0.255", "q"),
    ("1.0.9.7.0.255", "s"),
    ("1.0.13.7.0.255", "pf"),
    ("1.0.14.7.0.255", "frequency"),
)


class MeterGroup:
    def __init__(self, ctx, metering):
        self.ctx = ctx
        self.m = metering

    def register(self, server):
        server.register(GROUP_METERING, _CMD_READ, self.read, write=False)
        server.register(GROUP_METERING, CMD_CALIBRATE, self.calibrate, read=False)
        server.register(GROUP_METERING, _CMD_CALIBRATION, self.calibration, write=False)
        server.register(GROUP_METERING, _CMD_PROFILE, self.profile, write=False)

    def read(self, req):
        m = self.m
        t = m.tick
        if t.ms is None:
            raise smp.SmpError(smp.EBADSTATE, RC_NOT_READY)
        r = m.reading
        obis = {}
        for code, attr in INSTANT:
            obis[code] = getattr(r, attr)
        regs = m.regs
        for k in range(registers.COUNT):
            obis[registers.OBIS[k]] = regs.mwh(k)
        obis[registers.MD_OBIS] = regs.md_w
        now = time.ticks_ms()
        return {
            "age_ms": time.ticks_diff(now, t.ms),
            "at_ms": t.ms,
            "uptime_ms": _uptime_ms(self.ctx, now),
            "front": m.front.kind,
            "obis": obis,
            "md_at": regs.md_at,
            "zone": t.zone,
            "clock_known": t.rtc is not None,
            "readings": m.readings,
            "saved_ms_ago": time.ticks_diff(now, m.saved_ms),
            "saves": m.persist.writes,
            "registers": m.persist.status,
            "calibration": m.cal_source,
            "errors": m.front.errors,
        }

    def calibrate(self, req):
        step = req.get("step")
        v = req.get("v")
        i = req.get("i")
        pf = req.get("pf")
        n = req.get("n", _CAL_READINGS_DEFAULT)
        if not strict.is_int(n, 3, 60):
            raise smp.SmpError(smp.EINVAL, RC_BAD_REFERENCE)
        from loader import mode

        if self.ctx.mode != mode.DEVELOPMENT:
            from loader import commands

            try:
                commands.authorise(self.ctx, req, CMD_NAME_CALIBRATE, {"step": step, "v": v, "i": i, "pf": pf, "n": n})
            except commands.Refused:
                raise smp.SmpError(smp.EACCESSDENIED, RC_NOT_AUTHORISED) from None
        try:
            self.m.start_calibration(step, v, i, pf, n)
        except calibration.CalibrationError as e:
            self.m.cal_result = {"state": "refused", "step": step, "error": e.code}
            raise smp.SmpError(smp.EINVAL, RC_BAD_REFERENCE) from None
        return {"state": "collecting", "n": n}

    def calibration(self, req):
        return {"source": self.m.cal_source, "front": self.m.front.kind, "constants": self.m.consts,
                "last": self.m.cal_result}

    def profile(self, req):
        """Command 3 (app/load_profile.py page: the module and the handler's work on the heap for the one request)."""
        import loader
        from app import load_profile

        try:
            return load_profile.page(req, RC_BAD_REQUEST)
        finally:
            loader.forget("app.load_profile")


def _uptime_ms(ctx, now):
    up = getattr(ctx, "uptime", None)  # (a loader from before it: ticks, wrong after 6 days up)
    return up.ms() if up is not None else time.ticks_diff(now, ctx.started_ms)
