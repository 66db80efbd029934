# The radio link between the meter's module and the network: a pure, clock-driven model of what a datagram meets on
# an NB-IoT link. Nothing here reads a clock or a socket: every call takes the device time (integer µs), so the same
# seed and the same calls give the same schedule on CPython (the hypothesis tests) and in the VM (the module model).
#
# For each datagram, in each direction ("up": module -> network, "down": network -> module):
#   1. the radio must be connected: after `idle_s` without traffic it went idle, and the first datagram either way
#      waits a reconnection drawn from `reconnect_s` (RRC connection set-up, or paging then set-up);
#   2. it waits for the direction's transmitter (datagrams queue in order) and takes len * 8 / rate of air time;
#   3. it is lost with probability `loss` (after using its air time), otherwise delivered after a one-way latency of
#      half an RTT drawn uniformly from `rtt_s`; delivery keeps the order of sending (the radio's RLC delivers in
#      order) unless a draw with probability `reorder` lets it arrive by its own latency plus up to one more RTT;
#   4. with probability `dup` a second copy arrives one more latency draw later.
# The NAT (`nat_s`, None on a private APN that routes to the meter): a device-initiated flow opens a mapping that
# an uplink datagram refreshes; a downlink datagram of a flow without a live mapping at its arrival is dropped.
# Profiles: NB-IoT rates (kbit/s down/up), RTT and loss as issue 18 gives them; `none` is a plain wire.

PROFILES = {
    "none": {
        "down_kbps": 0,
        "up_kbps": 0,
        "rtt_s": (0.0, 0.0),
        "loss": 0.0,
        "dup": 0.0,
        "reorder": 0.0,
        "idle_s": 0,
        "reconnect_s": (0.0, 0.0),
    },
    "nb1-good": {
        "down_kbps": 20,
        "up_kbps": 15,
        "rtt_s": (0.5, 1.5),
        "loss": 0.01,
        "dup": 0.001,
        "reorder": 0.01,
        "idle_s": 20,
        "reconnect_s": (2.0, 15.0),
    },
    "nb2-good": {
        "down_kbps": 70,
        "up_kbps": 60,
        "rtt_s": (0.5, 1.0),
        "loss": 0.005,
        "dup": 0.001,
        "reorder": 0.01,
        "idle_s": 20,
        "reconnect_s": (2.0, 15.0),
    },
    "nb1-edge": {
        "down_kbps": 2,
        "up_kbps": 1,
        "rtt_s": (3.0, 10.0),
        "loss": 0.05,
        "dup": 0.002,
        "reorder": 0.02,
        "idle_s": 20,
        "reconnect_s": (2.0, 15.0),
    },
}
DEFAULT_PROFILE = "none"
NAT_DEFAULT_S = 30  # what `link.nat=on` means: UDP mappings on NB-IoT networks last about 30 s
# the parameters a setting may change, with their ranges (the host validates against these; `None` = off)
LIMITS = {
    "down_kbps": (0, 100000),
    "up_kbps": (0, 100000),
    "loss": (0.0, 1.0),
    "dup": (0.0, 1.0),
    "reorder": (0.0, 1.0),
    "idle_s": (0, 86400),
    "nat_s": (1, 86400),
}
RANGE_LIMIT_S = 120.0  # the upper end of rtt_s and reconnect_s
UP = "up"
DOWN = "down"
_P32 = 4294967296  # probabilities compare against a 32-bit draw


def profile(name):
    """A copy of a profile's parameters, with the NAT off (KeyError for an unknown name)."""
    p = dict(PROFILES[name])
    p["nat_s"] = None
    return p


def apply_setting(params, key, value):
    """Parameters after one checked `link.*` setting (the host's `ctl set` and a scenario step in the VM use this one
    rule): `link.profile` starts afresh from the profile, any other key overrides its parameter."""
    if key == "link.profile":
        return profile(value)
    p = dict(params)
    p["nat_s" if key == "link.nat" else key[5:]] = value
    return p


class Link:
    """The link's state: one transmitter per direction, the radio's connection, the NAT's mappings, the PRNG."""

    def __init__(self, params, seed):
        self.p = params
        x = (seed & 0xFFFFFFFF) or 0x9E3779B9
        self._x = x
        self._free = {UP: 0, DOWN: 0}  # device µs each transmitter is free
        self._last_out = {UP: 0, DOWN: 0}  # latest in-order delivery each way
        self._active = None  # device µs of the last traffic (None: never connected)
        self._ready = 0  # device µs the radio is (re)connected
        self._nat = {}  # flow -> device µs its mapping expires
        self.reconnects = 0

    def configure(self, params):
        """New parameters from now on (a `ctl set link.*`); queues, the radio and the NAT carry on."""
        self.p = params

    # -- a xorshift32 PRNG, the same numbers on CPython and MicroPython --------------------------------------------
    def _draw(self):
        x = self._x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._x = x
        return x

    def _chance(self, prob):
        # always one draw, so a changed probability does not shift the rest of the schedule
        return self._draw() < int(prob * _P32)

    def _between_us(self, lo_s, hi_s):
        lo = int(lo_s * 1000000)
        hi = int(hi_s * 1000000)
        d = self._draw()
        return lo if hi <= lo else lo + d % (hi - lo + 1)

    def _latency_us(self):
        lo, hi = self.p["rtt_s"]
        return self._between_us(lo, hi) // 2

    def airtime_us(self, direction, size):
        kbps = self.p["down_kbps" if direction == DOWN else "up_kbps"]
        return 0 if not kbps else (size * 8 * 1000 + kbps - 1) // kbps  # size * 8 / (kbps * 1000) s, in µs

    def connected(self, now):
        """Whether the radio is connected at `now` (it goes idle `idle_s` after the last traffic)."""
        idle = self.p["idle_s"]
        if self._active is None:
            return False if idle else True
        return not idle or now - self._active < idle * 1000000

    def backlog_us(self, direction, now):
        """How long a datagram sent now would wait for the transmitter (what a module's send buffer holds)."""
        t = self._free[direction]
        return t - now if t > now else 0

    def _radio_ready(self, now):
        if self._ready > now:
            return self._ready  # a reconnection is under way
        if not self.connected(now):
            lo, hi = self.p["reconnect_s"]
            self._ready = now + self._between_us(lo, hi)
            self.reconnects += 1
            return self._ready
        return now

    def send(self, direction, now, size, flow=None):
        """One datagram of `size` bytes handed to the link at device time `now`. Returns (tx_end, deliveries):
        when its air time ends, and the device times it arrives at the far end (0, 1 or 2 of them, in order)."""
        nat = self.p.get("nat_s")
        draws = [self._draw() for _ in range(4)]  # loss, dup, reorder, spare: a fixed number per datagram
        lat = self._latency_us()
        extra = self._latency_us()
        start = self._radio_ready(now)
        if self._free[direction] > start:
            start = self._free[direction]
        end = start + self.airtime_us(direction, size)
        self._free[direction] = end
        arrive = end + lat
        if draws[2] < int(self.p["reorder"] * _P32):
            arrive += extra * 2  # overtaken by what follows: up to one more RTT
        elif arrive < self._last_out[direction]:
            arrive = self._last_out[direction]  # in order behind the one before
        else:
            self._last_out[direction] = arrive
        out = []
        if draws[0] >= int(self.p["loss"] * _P32):
            out.append(arrive)
            if draws[1] < int(self.p["dup"] * _P32):
                out.append(arrive + extra)
        if nat is not None and flow is not None:
            if direction == UP:
                self._nat[flow] = end + nat * 1000000
            else:
                exp = self._nat.get(flow)
                if exp is None or exp <= start:
                    out = []  # no mapping at the NAT when it got there: dropped
        last = out[-1] if out else end
        self._active = last if self._active is None or last > self._active else self._active
        return end, out

    def nat_open(self, flow, now):
        """Whether the NAT holds a live mapping for `flow` at `now` (always True without a NAT)."""
        if self.p.get("nat_s") is None:
            return True
        exp = self._nat.get(flow)
        return exp is not None and exp > now
