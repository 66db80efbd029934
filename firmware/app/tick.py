# One reading as every listener of the metering task sees it (the supply, its prepaid rules and load limit): the
# reading, the registers it went into, the device's times and the TOU zone, worked out once by metering. The RTC is
# read once per reading and local time shaped once, so listeners can never disagree about "now" inside one reading.
# Metering refills its one Tick at each reading instead of building a new one (no allocation per reading): listeners
# read it and never write it or keep it past the call.


class Tick:
    def __init__(self, reading=None, regs=None):
        self.reading = reading  # dsp.Reading: V, I, P, Q, S, PF, f after the creep gate
        self.regs = regs  # registers.Registers, this reading's energy already in them
        self.ms = None  # time.ticks_ms() of the reading (None before the first)
        self.uptime_s = 0  # seconds since the app started (monotonic: the load limit's and demand's clock)
        self.rtc = None  # RTC seconds since 1970 (UTC), None while the clock is unknown
        self.local = None  # local time (year, month, day, weekday 0 Monday, minute of day), None while unknown
        self.zone = 1  # the TOU zone this reading's import energy went to
