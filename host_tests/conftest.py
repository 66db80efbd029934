from __future__ import annotations

import os

import pytest
from hypothesis import settings

from host_tests.emu import Emulator

# Property tests draw the same examples on every run of the suite (a gate that turns red on a newly drawn example
# blocks whatever change happens to run then); `make explore` draws new ones (METERKIT_HYPOTHESIS=explore) to search.
settings.register_profile("suite", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("METERKIT_HYPOTHESIS", "suite"))

BOARDS = ["esp32_devkitc", "rpi_pico"]
CONSOLE_TAIL = 4000  # characters of each emulated meter's console transcript shown with a failed test


@pytest.fixture
def start_emulator(request, tmp_path):
    """Start meter-emu for a board in a fresh state folder; every emulator started is stopped at teardown. A failed
    test shows the end of each meter's console transcript (STATE/console.log): a traceback or a prompt there says why
    the meter stopped answering, which a timeout on the host side cannot."""
    started: list[Emulator] = []
    request.node.meterkit_emulators = started

    def start(board: str = "esp32_devkitc", speed: str = "1", state_name: str = "meter", **kw) -> Emulator:
        emu = Emulator(tmp_path / state_name, board=board, speed=speed, **kw)
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and call.when == "call":
        for emu in getattr(item, "meterkit_emulators", ()):
            log = emu.state / "console.log"
            try:
                text = log.read_text(errors="replace")
            except OSError as e:
                text = f"(no console transcript: {e})"
            report.sections.append((f"meter console {emu.state.name} ({emu.board}), last {CONSOLE_TAIL} characters",
                                    text[-CONSOLE_TAIL:]))
    return report
