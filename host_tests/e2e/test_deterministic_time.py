"""Same inputs, same run: a scenario (load steps, a sag, a power cut at a device time) run twice with one seed, once
with two CPU hogs beside it, leaves a byte-identical flash image (registers, events, ledger, every record) and
console transcript. Device time advances by modelled cost only (emulator/device/_emu_clock.py), so the host's load
cannot move a sample, a save or a cut."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import littlefs
import pytest

from host_tests.bench.clock import SCENARIO  # load steps, a cut at 70 s for 5 s, a sag, a lighter load
from host_tests.emu import BIN

pytestmark = pytest.mark.e2e

RUN_S = 180
HOG = "while True:\n    pass\n"


def run_once(tmp_path: Path, name: str, board: str, hogs: int) -> tuple[str, str, bytes]:
    """One fixed-end run in a fresh state folder: (flash sha256, console sha256, events.json)."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(SCENARIO))
    state = tmp_path / name
    log = tmp_path / f"{name}.console"
    busy = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
    try:
        p = subprocess.run([str(BIN / "meter-emu"), "run", "--board", board, "--state", str(state), "--speed", "max",
                            "--seed", "11", "--rtc", "2026-03-01T00:00:00Z", "--for", str(RUN_S),
                            "--scenario", str(plan), "--console-log", str(log)],
                           capture_output=True, text=True, timeout=600)
    finally:
        for h in busy:
            h.kill()
            h.wait()
    assert p.returncode == 0, p.stdout + p.stderr
    assert "scenario power cut" in p.stderr and "run's end" in p.stderr, p.stderr
    flash = (state / "flash.bin").read_bytes()
    return hashlib.sha256(flash).hexdigest(), hashlib.sha256(log.read_bytes()).hexdigest(), read_file(flash, board)


def read_file(flash: bytes, board: str, path: str = "/meter/events.json") -> bytes:
    from meterkit.boards import load_board

    geo = load_board(board)["flash"]
    fs = littlefs.LittleFS(block_size=geo["block_size"], block_count=geo["block_count"], mount=False)
    fs.context.buffer[:] = flash
    fs.mount()
    with fs.open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("board", ["esp32_devkitc", "rpi_pico_bl0942"])
def test_one_seed_one_run_on_an_idle_and_a_busy_host(tmp_path, board):
    quiet = run_once(tmp_path, "quiet", board, hogs=0)
    busy = run_once(tmp_path, "busy", board, hogs=2)
    assert busy == quiet
    ring = json.loads(quiet[2])["data"]["ring"]
    # the scenario happened: power failed at the cut (70 s) and came back 5 s later on the RTC
    start = 1772323200  # 2026-03-01T00:00:00Z
    assert [e[1] for e in ring][-2:] == [101, 102] and ring[-1][2] == start + 75, ring
