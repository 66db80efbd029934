"""Interface class 70 (firmware/app/disconnect.py) as a hypothesis state machine: random triggers, mode changes and
power cuts (after the state is written, before the coil moves) against the standard's table; the relay always
ends where the persisted state says, a power cut never moves it by itself, and the loader's supply-held-off record
(loader/supply_hold.py) agrees with the app's."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from host_tests.scratch_machine import ScratchMeterMachine

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "meterkit" / "mpy_compat", ROOT / "firmware" / "lib", ROOT / "firmware",
          ROOT / "host_tests" / "firmware"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from test_disconnect import RelayModel, expected  # noqa: E402

from app import disconnect as dc  # noqa: E402
from app import relay as rl  # noqa: E402
from loader import supply_hold  # noqa: E402


class ClassSeventy(ScratchMeterMachine):
    def __init__(self) -> None:
        super().__init__()
        self.hw = RelayModel()
        self.ctl = dc.DisconnectControl(rl.Relay(self.hw))
        self.ctl.load()
        self.mode = dc.DEFAULT_MODE
        self.state = dc.CONNECTED


    @rule(trigger=st.sampled_from(dc.TRIGGERS))
    def trigger(self, trigger: str) -> None:
        letter, self.state = expected(self.mode, self.state, trigger)
        pulses = len(self.hw.pulses)
        assert self.ctl.apply(trigger) == letter
        if letter is None:
            assert len(self.hw.pulses) == pulses  # an ignored trigger moves nothing

    @rule(mode=st.integers(0, 6))
    def mode_change(self, mode: int) -> None:
        self.mode = mode
        self.ctl.set_mode(mode)

    @rule(trigger=st.sampled_from(dc.TRIGGERS), moved=st.booleans())
    def power_cut_during(self, trigger: str, moved: bool) -> None:
        """The state record is written, then power fails before (or just after) the coil pulse."""
        before = self.hw.contact
        letter, self.state = expected(self.mode, self.state, trigger)
        self.ctl.apply(trigger)
        if not moved:
            self.hw.contact = before
        self.reboot()

    @rule()
    def power_cut(self) -> None:
        contact = self.hw.contact
        self.ctl = dc.DisconnectControl(rl.Relay(self.hw))
        assert self.ctl.load() == contact  # the cut itself moved nothing
        self.reboot()

    def reboot(self) -> None:
        self.ctl = dc.DisconnectControl(rl.Relay(self.hw))
        self.ctl.load()
        self.ctl.reconcile()

    @invariant()
    def follows_the_table(self) -> None:
        assert (self.ctl.mode, self.ctl.state) == (self.mode, self.state)
        assert self.hw.contact == dc.output_state(self.mode, self.state)
        assert supply_hold.held() == (not dc.output_state(self.mode, self.state))  # the loader's record agrees


TestClassSeventy = ClassSeventy.TestCase
TestClassSeventy.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
