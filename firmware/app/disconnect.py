# Disconnect control, DLMS/COSEM interface class 70 (logical name 0.0.96.3.10.255): the control state, the control
# mode and the standard's transitions a-h. The table is pure logic (host tests check it in every mode against
# STANDARDS.md); DisconnectControl keeps the state across power cuts and makes the relay follow it.
from loader import store, strict, supply_hold

DISCONNECTED = 0
CONNECTED = 1
READY = 2  # ready_for_reconnection: the output is off, a manual or local reconnect may close it

REMOTE_DISCONNECT = "remote_disconnect"
REMOTE_RECONNECT = "remote_reconnect"
MANUAL_DISCONNECT = "manual_disconnect"
MANUAL_RECONNECT = "manual_reconnect"
LOCAL_DISCONNECT = "local_disconnect"
LOCAL_RECONNECT = "local_reconnect"
TRIGGERS = (REMOTE_DISCONNECT, REMOTE_RECONNECT, MANUAL_DISCONNECT, MANUAL_RECONNECT, LOCAL_DISCONNECT,
            LOCAL_RECONNECT)

# letter: (trigger, from state, to state)
TRANSITIONS = {
    "a": (REMOTE_RECONNECT, DISCONNECTED, CONNECTED),
    "b": (REMOTE_DISCONNECT, CONNECTED, DISCONNECTED),
    "c": (REMOTE_DISCONNECT, READY, DISCONNECTED),
    "d": (REMOTE_RECONNECT, DISCONNECTED, READY),
    "e": (MANUAL_RECONNECT, READY, CONNECTED),
    "f": (MANUAL_DISCONNECT, CONNECTED, READY),
    "g": (LOCAL_DISCONNECT, CONNECTED, READY),
    "h": (LOCAL_RECONNECT, READY, CONNECTED),
}
# control_mode: the transitions it allows (mode 0: always connected, none)
MODES = ("", "bcfgde", "bcfgae", "bcgde", "bcgae", "bcfgdeh", "bcgdeh")
DEFAULT_MODE = 6  # prepaid: remote and local disconnect; local reconnect after a top-up, the button after a remote one

STATE_FILE = "meter/disconnect.json"
RECORD = "disconnect"
RECORD_VERSION = 1


def step(mode, state, trigger):
    """(letter, new state) of the transition `trigger` causes in `state` under `mode`; (None, state) when the mode
    does not allow one there (the trigger is then ignored, as the standard says)."""
    for letter in MODES[mode]:
        trig, frm, to = TRANSITIONS[letter]
        if trig == trigger and frm == state:
            return letter, to
    return None, state


def output_state(mode, state):
    """True when the load is connected."""
    return mode == 0 or state == CONNECTED


class DisconnectControl:
    """The class-70 object of this meter. Every change is persisted before the relay moves, so a power cut
    between the two leaves a state the boot reconciliation drives the relay to; a cut never moves it by itself.
    Callers change it only through its methods (apply for the triggers), never by writing its fields."""

    def __init__(self, relay, mode=DEFAULT_MODE, path=STATE_FILE, on_event=None):
        self.relay = relay
        self.path = path
        self.mode = mode
        self.state = CONNECTED
        self.reason = ""
        self.on_event = on_event  # on_event(code, detail): 301/302 and the relay's own faults

    def load(self, mode=None):
        """Read the persisted state (a missing or unreadable record: connected, the safe state for a new meter);
        `mode`, the settings' control mode, replaces a different stored one (persisted; the relay follows at
        reconcile). Returns what the relay's feedback said before reconciliation (None without a feedback input)."""
        try:
            _, data = store.read_record(self.path, RECORD, RECORD_VERSION, None)
        except ValueError:
            data = None
        if isinstance(data, dict) and strict.is_int(data.get("mode"), 0, 6) and strict.is_int(data.get("state"), 0, 2) \
                and type(data.get("reason", "")) is str:
            self.mode = data["mode"]
            self.state = data["state"]
            self.reason = data.get("reason", "")
        if mode is not None and mode != self.mode:
            self.mode = mode
            self.save()
        return self.relay.closed()

    def save(self):
        held = not self.output
        if held:  # the loader's record says held before ours does, and until after ours no longer does
            supply_hold.write(True)
        store.write_record(self.path, RECORD, RECORD_VERSION,
                           {"mode": self.mode, "state": self.state, "reason": self.reason})
        if not held:
            supply_hold.write(False)

    @property
    def output(self):
        return output_state(self.mode, self.state)

    def reconcile(self):
        """At boot: drive the relay to the persisted state when its feedback differs (or cannot tell)."""
        supply_hold.write(not self.output)  # a record missing (an app from before it) or stale agrees from here on
        if self.relay.closed() == self.output:
            self.relay.want = self.output  # supervised from here on; no pulse, no event
            return True
        return self.relay.drive(self.output, "boot")

    def apply(self, trigger, reason="", hand_over=False):
        """Apply a trigger; returns the transition letter or None when the mode does not allow one here.
        `hand_over`: where the trigger's transition would only lead to the present state (a local disconnect while
        ready_for_reconnection), `reason` takes over holding that state, persisted; nothing moves (returns None)."""
        letter, new = step(self.mode, self.state, trigger)
        if letter is None:
            if hand_over and reason and self._leads_here(trigger) and reason != self.reason:
                self.reason = reason
                self.save()
            return None
        was = self.output
        self.state = new
        self.reason = reason or trigger
        self.save()
        if self.output != was:
            self.relay.drive(self.output, self.reason)
        return letter

    def _leads_here(self, trigger):
        for letter in MODES[self.mode]:
            trig, _, to = TRANSITIONS[letter]
            if trig == trigger and to == self.state:
                return True
        return False

    def set_mode(self, mode):
        if not strict.is_int(mode, 0, 6):
            raise ValueError("control_mode must be 0-6")
        was = self.output
        self.mode = mode
        self.save()
        if self.output != was:
            self.relay.drive(self.output, "mode %d" % mode)

    def status(self):
        return {"mode": self.mode, "state": self.state, "output": self.output, "reason": self.reason,
                "relay": self.relay.status()}
