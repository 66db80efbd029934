"""A Ctrl-C on the console of a locked meter at a sweep of moments from the start of boot.py through the loader and
the app's start-up, on both MCU families, with the mode file saying locked and with a garbage mode file (read as
locked): no Python prompt ever appears, the meter answers SMP afterwards and still refuses unsigned work. The
black-box attack that found the open console (one Ctrl-C 1-4 ms after the board started reading its flash) is in
the sweep. `python -m host_tests.bench.console_attack` runs 200 moments per board and mode."""

from __future__ import annotations

import threading
import time

import pytest
import serial

from host_tests.conftest import BOARDS, sweep_only
from host_tests.console_attack import attempt, delays, set_mode_file

pytestmark = pytest.mark.e2e
MODES = {"locked": (b'{"mode": "locked"}', 30), "garbage": (b"\x00\xfe{mode: development", 20)}


# a garbage mode file on both boards is in `python -m host_tests.bench.console_attack` (make sweeps, 200 moments per
# board and mode); the default run tries it on the ESP32 only (the Pico's took 43 s of the suite, 2026-12-06)
@pytest.mark.parametrize("board,mode", [(b, m) if (b, m) != ("rpi_pico", "garbage") else
                                        pytest.param(b, m, marks=sweep_only("the Pico with a garbage mode file"))
                                        for m in MODES for b in BOARDS])
def test_ctrl_c_during_boot_never_opens_a_locked_console(start_emulator, board, mode):
    content, points = MODES[mode]
    emu = start_emulator(board)
    set_mode_file(emu, content)
    moments = delays(points)
    results = [attempt(emu, ms) for ms in moments]
    assert len(results) == points


def test_a_ctrl_c_flood_across_resets_never_kills_the_emulated_board(start_emulator):
    """A board never dies of a Ctrl-C. The emulator delivers one as SIGINT only once the VM runs the board's files
    (before that its CPython wrapper would end it: "the VM did not connect"), and only while the VM catches it."""
    emu = start_emulator("rpi_pico")  # a development meter: Ctrl-C interrupts, and the flood lands everywhere
    stop = threading.Event()

    def flood() -> None:
        with serial.Serial(emu.console, 115200) as s:
            while not stop.is_set():
                s.write(b"\x03")
                time.sleep(0.002)

    t = threading.Thread(target=flood)
    t.start()
    try:
        for _ in range(8):
            boots = emu.status()["boots"]
            emu.ctl("reset")
            end = time.monotonic() + 30
            while emu.status()["boots"] <= boots and time.monotonic() < end:
                time.sleep(0.05)
            time.sleep(0.3)  # the flood goes on through boot.py, the loader and the app's start
    finally:
        stop.set()
        t.join()
    out = emu.output()
    assert emu.proc.poll() is None, out[-2000:]
    assert "the VM ended with status" not in out and "did not connect" not in out, out[-2000:]
