"""`ota` as a field engineer and a firmware engineer use it against a running meter (issue 16): the console view,
a port that answers without SMP, and the meter's policy shown by `ota info`/`ota status`."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from host_tests.e2e.test_upload import echo_ok, ota
from host_tests.emu import BIN

pytestmark = pytest.mark.e2e


def test_console_shows_what_the_meter_prints_between_frames(start_emulator):
    emu = start_emulator("rpi_pico", speed="max")
    echo_ok(emu)
    viewer = subprocess.Popen([str(BIN / "ota"), "console", "--port", emu.console, "--seconds", "60"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert viewer.stderr is not None and "listening on" in viewer.stderr.readline()  # the port is open
        emu.ctl("reset")
        out = ""
        end = time.monotonic() + 60
        while "loader: app 0.1.0 from slot" not in out and time.monotonic() < end:
            line = viewer.stdout.readline() if viewer.stdout else ""
            if not line and viewer.poll() is not None:
                break
            out += line
    finally:
        viewer.kill()
        viewer.wait()
    assert "loader: app 0.1.0 from slot" in out, out
    assert "\x06\x09" not in out and "\x04\x14" not in out, "SMP frames are left out"


def test_a_port_that_answers_without_smp_is_named(start_emulator, tmp_path):
    """A stopped app at the REPL prompt answers text, not SMP: ota says so and how to get the app back."""
    emu = start_emulator("rpi_pico", speed="max")
    echo_ok(emu)
    p = subprocess.run([str(BIN / "mpremote"), "connect", emu.console, "exec", "pass"], capture_output=True,
                       text=True, timeout=90)  # leaves the board at its REPL, the app stopped
    assert p.returncode == 0, p.stdout + p.stderr
    q = ota("info", "--port", emu.console, "--timeout", "2", "--json")
    r = json.loads(q.stdout)
    assert q.returncode == 4 and "no SMP reply" in r["message"] and "mpremote connect" in r["message"], q.stdout


def test_info_and_status_show_the_meter_s_update_policy(start_emulator):
    emu = start_emulator("rpi_pico", speed="max")
    echo_ok(emu)
    info = json.loads(ota("info", "--port", emu.console, "--json").stdout)
    assert info["ok"] is True and info["board"] == "rpi_pico"
    st = json.loads(ota("status", "--port", emu.console, "--json").stdout)
    assert st["ok"] is True and st["slots"][0]["active"] and st["update"] == "none"
