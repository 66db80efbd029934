# The meter's event log: a persisted ring of the most recent events, each with a sequence number that never repeats
# (it survives power cuts and the ring's wrap), an IS 15959 style code, the RTC time (None while the clock is
# unknown) and a short detail. Written by write-then-rename, so a power cut keeps the old ring or the new one.
# Codes (docs/relay-and-credit.md): IS 15959's where it has one, this kit's 4xx otherwise.
from loader import store

POWER_FAIL = 101
POWER_RESTORE = 102
CLOCK_SET = 151
LOAD_DISCONNECTED = 301
LOAD_CONNECTED = 302
RELAY_FAULT = 303
CREDIT_ALERT = 401
CREDIT_EXHAUSTED = 402
EMERGENCY_CREDIT = 403
TOPUP_ACCEPTED = 404
TOKEN_REJECTED = 405
CLOCK_UNKNOWN = 406
LOAD_LIMIT_TRIP = 407
COMMAND_REFUSED = 408
LOG_LOST = 409
SETTINGS_CHANGED = 410
SETTINGS_INVALID = 411
CREDIT_RECORD_DAMAGED = 412

PATH = "meter/events.json"
RECORD = "events"
RECORD_VERSION = 1
CAPACITY = 64
DETAIL_MAX = 48


class EventLog:
    def __init__(self, path=PATH, capacity=CAPACITY, clock=None):
        self.path = path
        self.capacity = capacity
        self.clock = clock  # clock() -> RTC seconds since 1970 (UTC), or None while the time is unknown
        self.seq = 0
        self.ring = []

    def load(self):
        """Read the ring; a damaged record starts a new one with a LOG_LOST event (sequence numbers go on from the
        highest the damaged file still showed, so a reader never sees one repeat)."""
        try:
            _, data = store.read_record(self.path, RECORD, RECORD_VERSION, None)
            if data is not None:
                self.seq = data["seq"]
                self.ring = [e for e in data["ring"] if isinstance(e, list) and len(e) == 4]
        except (ValueError, KeyError, TypeError):
            self.seq = _highest_seq(self.path) + self.capacity
            self.ring = []
            self.add(LOG_LOST, "event log damaged")

    def add(self, code, detail="", at=None):
        """Record an event now, or at `at` (RTC seconds) for one that happened before it could be recorded."""
        self.seq += 1
        if at is None and self.clock is not None:
            at = self.clock()
        self.ring.append([self.seq, code, at, str(detail)[:DETAIL_MAX]])
        if len(self.ring) > self.capacity:
            del self.ring[: len(self.ring) - self.capacity]
        store.write_record(self.path, RECORD, RECORD_VERSION, {"seq": self.seq, "ring": self.ring})
        return self.seq

    def since(self, seq=0, limit=CAPACITY):
        """Events with a sequence number above `seq`, oldest first, at most `limit`."""
        out = [e for e in self.ring if e[0] > seq]
        return out[:limit]


def _highest_seq(path):
    raw = store.read_bytes(path) or b""
    k = raw.find(b'"seq": ')
    if k < 0:
        return 0
    n = 0
    for c in raw[k + 7 : k + 20]:
        if not 48 <= c <= 57:
            break
        n = n * 10 + c - 48
    return n
