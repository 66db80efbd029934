# The latching relay that connects the consumer's load: a pulse on the set coil closes it, a pulse on the reset coil
# opens it, and it stays where it is without power. After each pulse the auxiliary contact (feedback input) must
# agree; a relay that does not follow is pulsed again up to ATTEMPTS times, then reported as a fault (event 303) and
# retried by check() at most RETRIES_PER_BOOT times, so a welded or broken relay cannot wear the coil driver out.
EV_DISCONNECTED = 301  # IS 15959: load disconnected
EV_CONNECTED = 302  # IS 15959: load connected
EV_RELAY_FAULT = 303  # this kit's code: the relay did not follow its command (docs/relay-and-credit.md)

ATTEMPTS = 3
RETRIES_PER_BOOT = 5


class Relay:
    def __init__(self, hal, pulse_ms=100, on_event=None):
        self.hal = hal
        self.pulse_ms = pulse_ms
        self.on_event = on_event  # on_event(code, detail)
        self.want = None  # the position last commanded (None: never commanded this boot)
        self.fault = ""
        self.operations = 0
        self.retries = 0

    def closed(self):
        """The feedback contact: True closed, False open, None when the board has no feedback input."""
        return self.hal.relay_closed()

    def _event(self, code, detail):
        if self.on_event is not None:
            self.on_event(code, detail)

    def drive(self, connect, reason=""):
        """Pulse the coil for `connect` until the feedback agrees; True when it does (or cannot be read)."""
        self.want = connect
        for _ in range(ATTEMPTS):
            if not self.hal.relay_pulse(connect, self.pulse_ms):
                self.fault = "no relay on this board"
                return False
            self.operations += 1
            fb = self.closed()
            if fb is None or fb == connect:
                self.fault = ""
                self._event(EV_CONNECTED if connect else EV_DISCONNECTED, reason)
                return True
        self.fault = "stays %s" % ("open" if connect else "closed")
        self._event(EV_RELAY_FAULT, "%s: %s" % (reason, self.fault))
        return False

    def check(self):
        """Periodic supervision: re-drive a relay whose feedback disagrees with its last command, within the limit.
        Returns False while a disagreement remains."""
        if self.want is None:
            return True
        fb = self.closed()
        if fb is None or fb == self.want:
            return True
        if self.retries >= RETRIES_PER_BOOT:
            return False
        self.retries += 1
        return self.drive(self.want, "retry")

    def status(self):
        return {"feedback": self.closed(), "fault": self.fault, "operations": self.operations}
