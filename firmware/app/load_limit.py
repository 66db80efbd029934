# Load limit, DLMS class 71 behaviour (0.0.17.0.0.255): active power above the threshold for `over_s` seconds trips
# the supply (a local disconnect); it reconnects by itself after `lockout_s`; after `max_trips` trips without
# `forgive_s` of normal use in between, it stays off until the head-end's remote reconnect. Pure logic, driven once
# per reading with the device's monotonic seconds; the caller applies the class-70 triggers it returns.
TRIP = "trip"
RESTORE = "restore"
LOCKED = "locked"

DEFAULTS = {"threshold_w": 0, "over_s": 60, "lockout_s": 300, "max_trips": 3, "forgive_s": 3600}  # 0 W: off


def parse(conf):
    """The load-limit settings with defaults, or ValueError naming the bad key."""
    out = dict(DEFAULTS)
    if not isinstance(conf, dict):
        raise ValueError("load limit is not an object")
    for k, v in conf.items():
        if k not in DEFAULTS:
            raise ValueError("unknown load limit key " + str(k))
        if not isinstance(v, int) or isinstance(v, bool) or v < 0 or (k == "max_trips" and v < 1):
            raise ValueError("bad value for " + k)
        out[k] = v
    return out


class LoadLimit:
    def __init__(self, conf):
        self.conf = conf
        self.over_since = None
        self.tripped_at = None  # set while the supply is off because of the limit
        self.trips = 0
        self.last_trip = None
        self.locked = False

    def update(self, now_s, watts):
        """TRIP, RESTORE, LOCKED (a trip that locks) or None."""
        c = self.conf
        if self.tripped_at is not None:
            if not self.locked and now_s - self.tripped_at >= c["lockout_s"]:
                self.tripped_at = None
                self.over_since = None
                return RESTORE
            return None
        if self.trips and self.last_trip is not None and now_s - self.last_trip >= c["forgive_s"]:
            self.trips = 0
        if c["threshold_w"] <= 0 or watts <= c["threshold_w"]:
            self.over_since = None
            return None
        if self.over_since is None:
            self.over_since = now_s
        if now_s - self.over_since < c["over_s"]:
            return None
        self.trips += 1
        self.last_trip = self.tripped_at = now_s
        if self.trips >= c["max_trips"]:
            self.locked = True
            return LOCKED
        return TRIP

    def remote_reconnect(self):
        """The head-end's reconnect clears a lock and the trip count."""
        self.locked = False
        self.tripped_at = None
        self.over_since = None
        self.trips = 0
