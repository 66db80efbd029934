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
