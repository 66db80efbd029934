from __future__ import annotations

import pytest

from host_tests.emu import Emulator

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
