from __future__ import annotations

import pytest

from host_tests.emu import Emulator

BOARDS = ["esp32_devkitc", "rpi_pico"]


@pytest.fixture
def start_emulator(tmp_path):
    """Start meter-emu for a board in a fresh state folder; every emulator started is stopped at teardown."""
    started: list[Emulator] = []

    def start(board: str = "esp32_devkitc", speed: str = "1", state_name: str = "meter", **kw) -> Emulator:
        emu = Emulator(tmp_path / state_name, board=board, speed=speed, **kw)
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()
