import fwtest
from app import disconnect as dc
from app import relay as rl

# STANDARDS.md, interface class 70, as the standard words it: per mode, the transitions that disconnect and those
# that reconnect (mode 0: always connected)
STANDARD_MODES = {
    0: ("", ""),
    1: ("bcfg", "de"),
    2: ("bcfg", "ae"),
    3: ("bcg", "de"),
    4: ("bcg", "ae"),
    5: ("bcfg", "deh"),
    6: ("bcg", "deh"),
}
# transition: trigger, from, to (0 disconnected, 1 connected, 2 ready_for_reconnection)
STANDARD_TRANSITIONS = {
    "a": ("remote_reconnect", 0, 1), "b": ("remote_disconnect", 1, 0), "c": ("remote_disconnect", 2, 0),
    "d": ("remote_reconnect", 0, 2), "e": ("manual_reconnect", 2, 1), "f": ("manual_disconnect", 1, 2),
    "g": ("local_disconnect", 1, 2), "h": ("local_reconnect", 2, 1),
}


def expected(mode, state, trigger):
    disc, reconn = STANDARD_MODES[mode]
    for letter in disc + reconn:
        trig, frm, to = STANDARD_TRANSITIONS[letter]
        if trig == trigger and frm == state:
            return letter, to
    return None, state


RelayModel = fwtest.RelayModel


def test_every_mode_state_and_trigger_follows_the_standard():
    n = 0
    for mode in range(7):
        for state in (0, 1, 2):
            for trigger in dc.TRIGGERS:
                assert dc.step(mode, state, trigger) == expected(mode, state, trigger), (mode, state, trigger)
                n += 1
    assert n == 126
    # what a prepaid meter relies on: in mode 6 a local disconnect is undone by a local reconnect; in mode 4 only the
    # consumer's button closes it again; a remote disconnect is never undone locally
    assert dc.step(6, 1, "local_disconnect") == ("g", 2) and dc.step(6, 2, "local_reconnect") == ("h", 1)
    assert dc.step(4, 2, "local_reconnect") == (None, 2) and dc.step(4, 2, "manual_reconnect") == ("e", 1)
    for mode in range(7):
        assert dc.step(mode, 0, "local_reconnect")[1] == 0 and dc.step(mode, 0, "manual_reconnect")[1] == 0
        assert dc.output_state(mode, 1) and (mode == 0) == dc.output_state(mode, 0) == dc.output_state(mode, 2)


def test_control_persists_before_the_relay_moves_and_reconciles_at_boot():
    def body():
        hw = RelayModel()
        events = []
        ctl = dc.DisconnectControl(rl.Relay(hw, 80, lambda c, d: events.append(c)))
        assert ctl.load() is True and ctl.state == dc.CONNECTED  # a new meter: connected
        assert ctl.apply("remote_disconnect", "head-end") == "b"
        assert hw.contact is False and hw.pulses == [(False, 80)] and events == [301]
        assert ctl.apply("local_reconnect") is None and hw.contact is False  # not from state 0
        assert ctl.apply("remote_reconnect") == "d" and ctl.state == dc.READY and hw.contact is False
        assert ctl.apply("manual_reconnect", "button") == "e" and hw.contact is True and events == [301, 302]
        # power cut after the state was written, before the coil moved: the boot drives the relay to the record
        ctl.state = dc.CONNECTED
        ctl.apply("local_disconnect", "credit")
        hw.contact = True  # the pulse never happened
        again = dc.DisconnectControl(rl.Relay(hw, 80))
        assert again.load() is True and again.state == dc.READY and again.reason == "credit"
        assert again.reconcile() and hw.contact is False
        # a corrupt record is not half used: connected, the relay driven to match
        fwtest.write(dc.STATE_FILE, b'{"kind": "disconnect", "v": 1, "data": {"mode": 9')
        third = dc.DisconnectControl(rl.Relay(hw, 80))
        assert third.load() is False  # the relay is still open from before
        assert third.state == dc.CONNECTED and third.mode == dc.DEFAULT_MODE
        assert third.reconcile() and hw.contact is True
        try:
            third.set_mode(7)
            raise AssertionError("mode 7 accepted")
        except ValueError:
            pass
        third.apply("remote_disconnect")
        third.set_mode(0)  # always connected: the relay closes with the mode change
        assert third.output and hw.contact is True

    fwtest.in_workdir(body, "meter")


def test_a_relay_that_does_not_follow_is_a_fault_retried_within_limits():
    hw = RelayModel()
    events = []
    relay = rl.Relay(hw, 100, lambda c, d: events.append((c, d)))
    hw.stuck = True  # welded contacts
    assert relay.drive(False, "credit") is False
    assert len(hw.pulses) == rl.ATTEMPTS and events == [(303, "credit: stays closed")] and relay.fault
    for _ in range(3 * rl.RETRIES_PER_BOOT):
        relay.check()
    assert len(hw.pulses) == rl.ATTEMPTS * (1 + rl.RETRIES_PER_BOOT)  # bounded: the coil driver is not worn out
    hw.stuck = False
    hw.contact = False  # repaired: the feedback agrees again
    assert relay.check() is True
    blind = RelayModel(feedback=False)
    assert rl.Relay(blind).drive(False) is True and len(blind.pulses) == 1  # no feedback input: one pulse, trusted


def test_a_hold_changes_hands_only_through_apply_and_the_settings_mode_wins_at_boot():
    def body():
        hw = RelayModel()
        ctl = dc.DisconnectControl(rl.Relay(hw, 80))
        ctl.load()
        assert ctl.apply("local_disconnect", "load limit") == "g" and hw.pulses == [(False, 80)]
        # ready_for_reconnection already: a plain local disconnect is ignored, as the standard says ...
        assert ctl.apply("local_disconnect", "credit") is None and ctl.reason == "load limit"
        # ... a hand-over gives the hold to credit, persisted, and the relay does not move
        assert ctl.apply("local_disconnect", "credit", hand_over=True) is None
        assert ctl.state == dc.READY and ctl.reason == "credit" and hw.pulses == [(False, 80)]
        again = dc.DisconnectControl(rl.Relay(hw, 80))
        again.load()
        assert again.reason == "credit"
        # a hand-over never stands in for a transition the state does not lead to
        assert again.apply("local_reconnect", "top-up", hand_over=True) == "h" and hw.contact
        assert again.apply("local_disconnect", "x", hand_over=True) == "g"
        assert again.apply("remote_disconnect", "y", hand_over=True) == "c" and again.reason == "y"
        assert again.apply("local_disconnect", "z", hand_over=True) is None and again.reason == "y"
        # the settings' control mode replaces a stored one, persisted; the relay follows at reconcile
        third = dc.DisconnectControl(rl.Relay(hw, 80))
        third.load(0)
        assert third.mode == 0 and third.state == dc.DISCONNECTED and third.output and not hw.contact
        assert third.reconcile() and hw.contact
        fourth = dc.DisconnectControl(rl.Relay(hw, 80))
        fourth.load()
        assert fourth.mode == 0

    fwtest.in_workdir(body, "meter")
