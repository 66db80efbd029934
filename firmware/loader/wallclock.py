# The wall clock as the meter trusts it: the RTC in seconds since 1970, or None while it cannot be right. Signed
# envelopes (loader/commands.py) expire by it; the app dates readings, credit and events by it (app/clock.py sets it).
# Not named clock: the app has its own clock module (app/clock.py, which sets this one) and modules use both.
import time

# before this moment the RTC cannot be right (it restarted after a dead battery): the meter does not know the time
TIME_VALID_FROM = 1735689600  # 2025-01-01
# the ESP32 and RP2040 ports count time.time() from 2000-01-01, the unix port from 1970: what to add for 1970
PORT_EPOCH_S = 946684800 if time.gmtime(0)[0] == 2000 else 0


def rtc_now():
    """RTC seconds since 1970, or None when the clock has not been set since it lost power."""
    t = int(time.time()) + PORT_EPOCH_S  # the unix port (and CPython) return a float
    return t if t >= TIME_VALID_FROM else None


class Uptime:
    """Time since the loader started, counted on from each call: ticks_ms wraps (every 2**30 ms on the ports, about
    12.4 days) and a ticks_diff across more than half of that goes negative, so a meter up 6.2 days read its uptime
    as negative (the load limit's clock, a locked meter's reset guard). Right as long as something asks at least
    once every 6 days: the metering does at each reading."""

    def __init__(self, ticks_ms=time.ticks_ms):
        self._ticks = ticks_ms
        self._at = ticks_ms()
        self._s = 0  # whole seconds counted (a small int for 34 years)
        self._ms = 0  # and the milliseconds past them

    def seconds(self):
        now = self._ticks()
        ms = self._ms + time.ticks_diff(now, self._at)
        self._at = now
        self._s += ms // 1000
        self._ms = ms % 1000
        return self._s

    def ms(self):
        return self.seconds() * 1000 + self._ms
