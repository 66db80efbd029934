"""`meter-emu` as a user runs it, against a running emulator: bad values and files are refused in one line with the
documented exit code and the board runs on; the emulated board says which MCU it is, as a real one does, so `ota
provision --board` refuses a board of another MCU at once; `meter-emu console` shows what the meter printed (a
crashing app's traceback) without the SMP frames. The full table of bad inputs without a running emulator:
host_tests/unit/test_emu_cli_errors.py."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from smp import os_management as osm

from emulator.cli import main
from host_tests.e2e.test_emulator import ask, echo_ok
from host_tests.e2e.test_upload import ROOT
from host_tests.emu import BIN, ota

pytestmark = pytest.mark.e2e


def emu_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "meter-emu"), *args], capture_output=True, text=True, timeout=timeout)


def one_line(p: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in p.stdout + p.stderr, p.stdout + p.stderr
    err = p.stderr.strip()
    assert len(err.splitlines()) == 1, err
    return err


# every numeric `ctl set` key, with the number where the key takes one
NUMERIC = ["speed={}", "rtc.drift_ppm={}", "rtc.lost={}", "power.restore_delay={}", "wire.error_rate={}",
           "wire.drop_rate={}", "adc.26={}", "grid.voltage={}", "grid.frequency={}", "grid.drift_hz={}",
           "grid.drift_period_s={}", "grid.harmonics=3:{}", "grid.sag={}:2", "grid.sag=0.7:{}", "load.current={}",
           "load.pf={}", "load.steps={}:60", "load.steps=5:{}", "bl0942.error_rate={}"]


def test_non_finite_settings_are_refused_by_name_and_the_board_runs_on(start_emulator, tmp_path):
    emu = start_emulator("rpi_pico")
    echo_ok(emu)
    before = emu.status()
    # the reported case, as a user types it: refused, one line naming the key, exit 8
    p = emu_cli("ctl", "--state", str(emu.state), "set", "speed=inf")
    assert p.returncode == 8 and json.loads(p.stdout)["ok"] is False
    assert one_line(p) == "meter-emu: refused: speed: 'inf' is not a finite number; expected 0.001..1000000, or 'max'"
    runner = CliRunner()
    for template in NUMERIC:
        for v in ("nan", "inf", "-inf", "1e309"):
            pair = template.format(v)
            r = runner.invoke(main, ["ctl", "--state", str(emu.state), "set", pair], prog_name="meter-emu")
            assert r.exit_code == 8, (pair, r.stdout, r.stderr)
            key = pair.split("=")[0]
            assert r.stderr.startswith(f"meter-emu: refused: {key}: ") and len(r.stderr.splitlines()) == 1, r.stderr
    # all or nothing: a good value next to a bad one is not applied either
    r = runner.invoke(main, ["ctl", "--state", str(emu.state), "set", "grid.voltage=241", "load.current=nan"],
                      prog_name="meter-emu")
    assert r.exit_code == 8 and "load.current" in r.stderr
    after = emu.status()
    assert after["speed"] == before["speed"] == 1.0 and after["grid"] == before["grid"]
    assert after["boots"] == before["boots"] and emu.ctl("time")["speed"] == 1.0
    echo_ok(emu)
    # a scenario file saved as UTF-16: one line, exit 2, nothing started
    f = tmp_path / "day.json"
    f.write_text(json.dumps({"steps": [{"at": 0, "set": {"load.current": 5}}]}), encoding="utf-16")
    p = emu_cli("ctl", "--state", str(emu.state), "scenario", str(f))
    assert p.returncode == 2 and one_line(p) == f"meter-emu: {f}: UTF-16 text; save it as UTF-8; expected a JSON file"
    assert emu.status()["scenario"] is None


def test_requests_of_the_wrong_shape_leave_the_emulator_running(start_emulator):
    """Another client on the control socket: malformed values are refused, the emulator's loop goes on."""
    from emulator import control

    emu = start_emulator("rpi_pico")
    echo_ok(emu)
    for req in ({"verb": "time", "advance": "inf"}, {"verb": "time", "advance": 1e300},
                {"verb": "power-cut", "off": "soon"}, {"verb": "run", "for": "nan"}, {"verb": "press", "for": "x"},
                {"verb": "set", "values": [1]}, {"verb": "run", "until": 10**30}, {"verb": 7}):
        rep = control.request(emu.endpoints["control"], req)
        assert rep["ok"] is False and rep["error"], (req, rep)
    assert emu.status()["power"] == "on"
    echo_ok(emu)


def test_a_killed_emulators_folder_says_so(start_emulator):
    import signal

    emu = start_emulator("rpi_pico")
    vm = emu.status()["pid"]
    os.killpg(emu.proc.pid, signal.SIGKILL)  # no clean-up: endpoints.json stays behind
    emu.proc.wait()
    try:
        os.killpg(vm, signal.SIGKILL)  # the VM runs in a session of its own
    except ProcessLookupError:
        pass
    p = emu_cli("ctl", "--state", str(emu.state), "status")
    assert p.returncode == 7 and "nothing listens" in one_line(p) and str(emu.state) in p.stderr


@pytest.mark.parametrize(("board", "claimed", "platform", "machine"), [
    ("rpi_pico", "esp32_devkitc", "rp2", "Raspberry Pi Pico with RP2040"),
    ("esp32_devkitc_bl0942", "rpi_pico_bl0942", "esp32", "Generic ESP32 module with ESP32"),
])
def test_the_board_says_its_mcu_and_provision_refuses_another(start_emulator, board, claimed, platform, machine):
    emu = start_emulator(board, blank=True)
    until_in_output(emu, f"console: {emu.console} board {board} (")
    assert emu.endpoints["board"] == board
    p = subprocess.run([str(BIN / "mpremote"), "connect", emu.console, "exec",
                        "import sys, os; print(repr((sys.platform, tuple(os.uname()), os.uname().machine)))"],
                       capture_output=True, text=True, timeout=60)
    plat, uname, mach = eval(p.stdout.strip().splitlines()[-1])
    assert plat == platform and mach == machine and uname[0] == platform and uname[4] == machine, p.stdout
    # was: provisioning went ahead for a minute, then "did not come back"
    p = ota("provision", "--port", emu.console, "--board", claimed, timeout=45)
    assert p.returncode == 11, p.stdout + p.stderr
    assert f"runs MicroPython for another MCU: {platform} ({machine})" in p.stderr
    assert "Traceback" not in p.stdout + p.stderr


def test_console_shows_a_crashing_apps_traceback(start_emulator, tmp_path):
    """An app that raises at start-up (a fresh meter provisioned with `run --firmware`): its traceback is in
    `meter-emu console`, after the loader's line."""
    fw = tmp_path / "firmware"
    shutil.copytree(ROOT / "firmware", fw)
    (fw / "app" / "main.py").write_text("raise RuntimeError('broken build')\n")
    emu = start_emulator("rpi_pico", args=("--firmware", str(fw)))
    text = until_in_console(emu, "RuntimeError: broken build\n")
    assert re.match(r"--- meter-emu: rpi_pico boot 1, reset cause power ---\n"
                    r"loader: app \S+ from slot a, development mode\n"
                    r"Traceback \(most recent call last\):\n", text), text
    assert '  File "app/main.py", line 1, in <module>\nRuntimeError: broken build\n' in text
    assert "\r" not in text


def test_console_leaves_smp_frames_out_and_follows(start_emulator):
    emu = start_emulator("esp32_devkitc")
    echo_ok(emu)
    follow = subprocess.Popen([str(BIN / "meter-emu"), "console", "--state", str(emu.state), "--follow", "-n", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for n in (1, 100, 300, 1500):  # SMP frames both ways, the longer ones over several lines
            echo_ok(emu, "x" * n)
            assert ask(emu, osm.OSApplicationInfoReadRequest(format="a")).output
        emu.ctl("reset")
        text = until_in_console(emu, "--- meter-emu: esp32_devkitc boot 2, reset cause hard ---\n"
                                     "loader: app ")
        assert [line for line in text.splitlines() if line.startswith("---")] == [
            "--- meter-emu: esp32_devkitc boot 1, reset cause power ---",
            "--- meter-emu: esp32_devkitc boot 2, reset cause hard ---"], text
        assert len(re.findall(r"loader: app \S+ from slot a, development mode\n", text)) == 2, text
        assert not [line for line in text.splitlines() if len(line) > 40 and " " not in line], text  # no base64
        assert "\x06" not in text and "\x04" not in text and "\r" not in text
        # --follow printed the reset's lines as they came
        seen = b""
        end = time.monotonic() + 60
        while b"boot 2, reset cause hard" not in seen and time.monotonic() < end:
            if select.select([follow.stdout], [], [], 1.0)[0]:
                seen += os.read(follow.stdout.fileno(), 65536)
        assert seen.startswith(b"--- meter-emu: esp32_devkitc boot 2, reset cause hard ---\n"), seen
    finally:
        follow.terminate()
        follow.wait(timeout=10)
    raw = (emu.state / "console.log").read_bytes()
    assert b"\x06\x09" not in raw and b"\x04\x14" not in raw


def until_in_console(emu, text: str, timeout: float = 120) -> str:
    """`meter-emu console` until it shows `text`: what it printed."""
    end = time.monotonic() + timeout
    while True:
        p = emu_cli("console", "--state", str(emu.state), "--lines", "1000")
        assert p.returncode == 0 and p.stderr == "", p.stderr
        if text in p.stdout or time.monotonic() > end:
            assert text in p.stdout, p.stdout
            return p.stdout
        time.sleep(0.5)


def until_in_output(emu, text: str, timeout: float = 30) -> str:
    end = time.monotonic() + timeout
    while text not in emu.output() and time.monotonic() < end:
        time.sleep(0.1)
    assert text in emu.output(), emu.output()
    return emu.output()


def test_version_and_help_without_a_state_folder():
    p = emu_cli("--version")
    assert p.returncode == 0 and p.stdout.startswith("meter-emu 0.") and p.stderr == ""
    p = emu_cli("ctl", "set", "--help")
    assert p.returncode == 0 and "speed" in p.stdout and "grid.voltage" in p.stdout
    p = emu_cli("ctl", "status")
    assert p.returncode == 2 and "--state" in one_line(p)


def test_startup_line_and_endpoints_name_the_board(start_emulator):
    emu = start_emulator("esp32_devkitc")
    until_in_output(emu, f"console: {emu.console} board esp32_devkitc (esp32)\n")
    ep = json.loads(Path(emu.state / "endpoints.json").read_text())
    assert ep["board"] == "esp32_devkitc" and ep["mcu"] == "esp32"
    assert json.loads((emu.state / "meta.json").read_text())["board"] == "esp32_devkitc"
