# The meter's clock. The RTC keeps UTC and is set only by the head-end's signed "clock.set" command (a trusted time
# source); each setting records how far the clock had drifted since the previous one (seconds, + fast) and the
# crystal error that implies (ppm), in meter/clock.json. A clock that lost its battery reads before 2025 and counts
# as unknown (loader/wallclock.rtc_now): credit then never disconnects, and an event says so until it is set.
import time

from loader import store, strict, wallclock

PATH = "meter/clock.json"
TIME_MAX = 4102444800  # 2100-01-01: a later time is refused as a mistake
PPM_MIN_SPAN_S = 3600  # the drift rate is only estimated over at least this long


def set_rtc(t):
    """Set the RTC to `t`, seconds since 1970 (UTC)."""
    import machine

    tm = time.gmtime(t - wallclock.PORT_EPOCH_S)
    machine.RTC().datetime((tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], 0))


class Clock:
    def __init__(self, path=PATH, set_rtc=set_rtc):
        self.path = path
        self.set_rtc = set_rtc
        try:
            rec = store.read_json(path, {})
        except ValueError:
            rec = {}
        self.rec = rec if isinstance(rec, dict) else {}

    def set(self, t):
        """Set the clock to `t` (seconds since 1970, UTC); returns the error it had (seconds, + fast), or None when
        it did not know the time. Raises ValueError for a time outside 2025..2100."""
        if not strict.is_int(t, wallclock.TIME_VALID_FROM, TIME_MAX - 1):
            raise ValueError("bad-time")
        was = wallclock.rtc_now()
        drift = None if was is None else was - t
        last = self.rec.get("set_at")
        ppm = None
        if drift is not None and strict.is_int(last, 0, t) and t - last >= PPM_MIN_SPAN_S:
            ppm = drift * 1000000 // (t - last)
        self.set_rtc(t)
        sets = self.rec.get("sets", 0)
        self.rec = {"set_at": t, "drift_s": drift, "ppm": ppm, "sets": (sets if strict.is_int(sets, 0, 1 << 30) else 0) + 1}
        store.write_json(self.path, self.rec)
        return drift
