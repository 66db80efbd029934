"""A hypothesis state machine that runs each example in a working folder of its own, with an empty `meter/` (the
firmware's paths are relative to the device's root, as on a board's flash)."""

from __future__ import annotations

import os
import tempfile

from hypothesis.stateful import RuleBasedStateMachine


class ScratchMeterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.back = os.getcwd()
        self.dir = tempfile.TemporaryDirectory()
        os.chdir(self.dir.name)
        os.mkdir("meter")

    def teardown(self) -> None:
        os.chdir(self.back)
        self.dir.cleanup()
