"""Third-party tools work against the emulated board exactly as against a real one: smpmgr speaks SMP to it,
mpremote interrupts the app and executes code in its REPL, and our own `ota` reads it."""

from __future__ import annotations

import json
import subprocess

import pytest

from host_tests.conftest import BOARDS
from host_tests.e2e.test_emulator import echo_ok
from host_tests.emu import BIN

pytestmark = pytest.mark.interop


PTY_RACE = "device reports readiness to read but returned no data"


def run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0 and PTY_RACE in p.stderr:
        # pyserial saw a readable pty return no data while the emulated board restarted (seen about once in ten
        # runs of this test under load, never outside pytest; see docs/BENCHMARKS.md notes). One retry, as a user
        # would; a second failure fails the test.
        p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    return p


@pytest.mark.parametrize("board", BOARDS)
def test_smpmgr_os_echo(start_emulator, board):
    emu = start_emulator(board)
    echo_ok(emu)
    p = run(BIN / "smpmgr", "--port", emu.console, "--timeout", "5", "os", "echo", "hello")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "hello" in p.stdout


def test_mpremote_interrupts_the_app_and_execs(start_emulator):
    emu = start_emulator()
    echo_ok(emu)
    p = run(BIN / "mpremote", "connect", emu.console, "exec",
            "import sys, machine; print('board', sys.implementation.name, machine.unique_id().hex())")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "board micropython" in p.stdout
    uid = json.loads(emu.state.joinpath("meta.json").read_text())["unique_id"]
    assert uid in p.stdout
    # the file system is the meter's littlefs, mounted at /
    p = run(BIN / "mpremote", "connect", emu.console, "fs", "ls", ":/meter")
    assert p.returncode == 0 and "board.json" in p.stdout, p.stdout + p.stderr
    # as on a board, mpremote's soft reset returns to the raw REPL without running main.py, and a hard reset
    # (machine.reset()) brings the app back
    boots = emu.ctl("status")["boots"]
    p = run(BIN / "mpremote", "connect", emu.console, "soft-reset", "exec", "print('raw', 6 * 7)")
    assert p.returncode == 0 and "raw 42" in p.stdout, p.stdout + p.stderr
    p = run(BIN / "mpremote", "connect", emu.console, "reset")
    assert p.returncode == 0, p.stdout + p.stderr
    emu.wait_status(lambda st: st["boots"] > boots + 1 and st["reset_cause"] == "hard", what="hard reset")
    echo_ok(emu)


def test_ota_info_reads_the_meter(start_emulator):
    emu = start_emulator("rpi_pico")
    echo_ok(emu)
    p = run(BIN / "ota", "info", "--port", emu.console, "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    info = json.loads(p.stdout)
    assert info["board"] == "rpi_pico" and info["app"] == "app-0.1.0" and info["buf_size"] == 2048
    assert info["arch"] == "armv6m"
    p = run(BIN / "ota", "echo", "--port", emu.console, "field check")
    assert p.returncode == 0 and p.stdout.strip() == "field check"


def test_ota_reports_a_missing_port(tmp_path):
    p = run(BIN / "ota", "info", "--port", tmp_path / "ttyNOPE")
    assert p.returncode == 3 and f"no port {tmp_path / 'ttyNOPE'}" in p.stderr
