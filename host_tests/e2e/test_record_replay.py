"""Record and replay (`meter-emu run --record`, `meter-emu replay`): a run with outside input — an `ota push --test`
over the console, a setting, a power cut, a reset — recorded with the device time the firmware met each input, then
replayed with no tools attached: the same outcome (flash image, console transcript). A changed firmware is reported;
a recording that is not one is refused with the line and the problem."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from host_tests import flash_files
from host_tests.conftest import sweep_only
from host_tests.e2e.test_update import wait_running
from host_tests.e2e.test_upload import build, ota
from host_tests.emu import BIN

pytestmark = pytest.mark.e2e


def emu_board_block_size(board: str) -> int:
    from meterkit.boards import load_board

    return load_board(board)["flash"]["block_size"]


def replay(path, *args: str) -> tuple[int, dict]:
    p = subprocess.run([str(BIN / "meter-emu"), "replay", str(path), "--json", *map(str, args)],
                       capture_output=True, text=True, timeout=600)
    return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else {"stderr": p.stderr})


# rpi_pico: an ADC board (the burst, the DSP); the ESP32 ADC app's heap is the thinnest (a push on a busy host once
# ended in a MemoryError in the SMP deframer there during a recorded run: issue 17's headroom). The ADC board's replay
# redoes every burst through the ADC model (165 s of the suite, 2026-12-06): `make sweeps` runs it; the default run
# replays the BL0942 board (the ADC model's determinism: test_deterministic_time.py)
@pytest.mark.parametrize("board", [pytest.param("rpi_pico", marks=sweep_only("an ADC board's replay (about 165 s)")),
                                   "rpi_pico_bl0942"])
def test_a_recorded_push_and_power_cut_replays_to_the_same_outcome(start_emulator, tmp_path, board):
    rec = tmp_path / "run.rec"
    live = tmp_path / "live.console"
    emu = start_emulator(board, seed=4, args=("--rtc", "2026-04-01T00:00:00Z", "--record", str(rec),
                                             "--console-log", str(live)))
    emu.ctl("set", "load.current=3", "load.pf=0.9")
    img = build(tmp_path, board, "1.3.0", counter=2)
    p = ota("push", img, "--port", emu.console, "--test", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    wait_running(emu, "1.3.0", confirmed=True)
    cut = emu.ctl("power-cut", "--off", "1")
    assert cut["precise"], cut
    wait_running(emu, "1.3.0", confirmed=True)
    for _ in range(4):  # status queries (wall-timed, not recorded) just before a reset: the world time the reset
        emu.status()  # carries over the reboot is the VM's at the reset's point, not a query's (a replay has none)
        time.sleep(0.3)
    emu.ctl("reset")
    wait_running(emu, "1.3.0", confirmed=True)
    emu.proc.send_signal(signal.SIGINT)
    assert emu.proc.wait(timeout=60) == 0, emu.output()
    lines = [json.loads(x) for x in rec.read_text().splitlines()]
    kinds = {next(iter(i)) for row in lines[1:-1] for i in row.get("in", ())}
    assert {"console", "bus", "cut", "reset", "stop"} <= kinds, kinds
    end = lines[-1]["end"]
    assert end["boots"] >= 4  # power-up, the test boot, after the cut, after the reset

    replayed = tmp_path / "replay.console"
    rc, res = replay(rec, "--console-log", replayed, "--state", tmp_path / "replayed")
    flash_diff = [] if res.get("flash_sha256") == end["flash_sha256"] else flash_files.differences(
        emu.state / "flash.bin", tmp_path / "replayed" / "flash.bin", emu_board_block_size(board))
    assert rc == 0 and res["ok"], (res, flash_diff)
    assert res["delivered"] == res["recorded"] == end["inputs"] and not res["firmware_changed"]
    assert replayed.read_bytes() == live.read_bytes()
    assert res["flash_sha256"] == end["flash_sha256"], flash_diff  # which files differ, if the images do


def test_a_changed_firmware_or_a_bad_recording_is_reported(tmp_path):
    """Recorded without --seed: the fresh meter's seed (hence its unique id) is drawn and written down, so the
    replay builds the same meter."""
    rec = tmp_path / "run.rec"
    p = subprocess.run([str(BIN / "meter-emu"), "run", "--board", "rpi_pico_bl0942", "--state", str(tmp_path / "m"),
                        "--speed", "max", "--rtc", "2026-04-01T00:00:00Z", "--for", "30",
                        "--record", str(rec)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert type(json.loads(rec.read_text().splitlines()[0])["start"]["fresh"]["seed"]) is int
    rc, res = replay(rec)
    assert rc == 0 and res["ok"], res
    # the same recording against another firmware tree: the header says which tree it was made with
    lines = rec.read_text().splitlines()
    head = json.loads(lines[0])
    head["firmware_tree"] = "0" * 64
    other = tmp_path / "other.rec"
    other.write_text("\n".join([json.dumps(head)] + lines[1:]) + "\n")
    rc, res = replay(other)
    assert rc == 0 and res["firmware_changed"], res
    # not a recording: exit 2 with the line and the problem
    bad = tmp_path / "bad.rec"
    bad.write_text(lines[0] + "\n" + '{"boot": 1, "n": -1, "us": 5, "in": []}\n')
    p = subprocess.run([str(BIN / "meter-emu"), "replay", str(bad)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "bad.rec:2: 'n' must be an integer >= 0" in p.stderr, p.stderr
