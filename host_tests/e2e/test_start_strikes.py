"""Power cuts and resets during start-up never set a meter's signed settings aside (loader/starts.py). Found by
`meter-fuzz attack`: before the fix, three quick power cuts or resets counted as three failed starts, and the
fourth start renamed meter/config.json and meter/supply.json to *.set-aside (event 411) — on a prepaid meter the
defaults never disconnect. The firmware test (host_tests/firmware/test_strict.py) covers the counting; this one
covers the wiring: the loader's start, the reset causes the emulator gives, the flash."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from host_tests.emu import BIN
from host_tests.flash_files import files, read

pytestmark = pytest.mark.e2e
BLOCK = 4096  # boards/esp32_devkitc.json


def app_starts(emu) -> int:
    log = emu.state / "console.log"
    return log.read_text(errors="replace").count("loader: app ") if log.exists() else 0


def wait_app_start(emu, n: int, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if app_starts(emu) >= n:
            time.sleep(0.5)  # the start is counted right after that line (starts.begin)
            return
        time.sleep(0.1)
    raise TimeoutError(f"the app did not start {n} times: {app_starts(emu)}")


def test_power_cuts_and_resets_at_start_up_leave_the_settings_in_place(start_emulator):
    emu = start_emulator("esp32_devkitc")
    emu.wait_boots(1)
    wait_app_start(emu, 1)
    # a stored setting, written as a tester with a cable would (a development meter's REPL), then a reset
    code = "f = open('meter/config.json', 'w'); f.write('{\"md_period_s\": 900}'); f.close(); print('written')"
    p = subprocess.run([str(BIN / "mpremote"), "connect", emu.console, "exec", code], capture_output=True, text=True,
                       timeout=60)
    assert "written" in p.stdout, p.stdout + p.stderr
    emu.ctl("reset")
    emu.wait_boots(2, timeout=60)
    wait_app_start(emu, 2)
    for k in range(3, 7):  # two power cuts, then two hard resets, each soon after the app started
        if k <= 4:
            emu.ctl("power-cut", "--off", "0.2")
        else:
            emu.ctl("reset")
        emu.wait_boots(k, timeout=60)
        wait_app_start(emu, k)
    emu.stop()
    image = (emu.state / "flash.bin").read_bytes()
    flash = files(image, BLOCK)
    assert "/meter/config.json" in flash, sorted(flash)  # the setting this attack took away
    assert not [p for p in flash if p.endswith(".set-aside")], sorted(flash)
    starts = json.loads(read(image, BLOCK, "/meter/starts.json") or b"{}")
    assert starts.get("failed", 0) == 0, starts
