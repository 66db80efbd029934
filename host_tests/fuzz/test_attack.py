"""`meter-fuzz attack`, the black-box attacker: a short seeded run against a locked emulated meter (the Ctrl-C sweep
across resets included) finds nothing, and each monitor can fail — the prompt monitor on a development meter held to
a locked meter's rules (a Ctrl-C shows `>>>` there), the record monitor on a protected file altered in a real flash
image between two snapshots, the event monitor on an event only a signed command causes. Runs use a fixed number of
inputs, never a time budget."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from smp import packet

from meter_fuzz import attack as atk
from meter_fuzz.emu_launch import Emulator

BIN = Path(sys.executable).parent
BOARD = "esp32_devkitc"


def meter_fuzz(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "meter-fuzz"), "attack", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy())


def findings_of(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("findings/*/*/finding.json"))]


# -- the attacker's own pieces ---------------------------------------------------------------------------------------

def test_serial_framing_matches_the_smp_library_and_the_deframer_reads_it_back():
    g = atk.Grammar(__import__("random").Random(5))
    d = atk.Deframer()
    for seq in range(40):
        _, pkt = g.smp(seq)
        assert atk.serial_lines(pkt) == b"".join(packet.encode(pkt)), pkt.hex()
        # log text and noise between frames are skipped
        got = d.feed(b"loader: noise\n\x00\xff" + atk.serial_lines(pkt, 40) + b"app: x\n")
        assert got == [pkt]


def test_usage_and_unreachable_exit_codes(tmp_path):
    assert meter_fuzz("--emulator", BOARD).returncode == 2  # neither --time nor --inputs
    assert meter_fuzz("--emulator", BOARD, "--port", "/dev/null", "--inputs", "1").returncode == 2
    assert meter_fuzz("--emulator", "no_such_board", "--inputs", "1").returncode == 2
    assert meter_fuzz("--port", "/dev/x", "--locked", "--inputs", "1").returncode == 2
    assert meter_fuzz("--emulator", BOARD, "--inputs", "1", "--kinds", "smp,bogus").returncode == 2
    assert meter_fuzz("--replay", str(tmp_path)).returncode == 2  # not a finding
    p = meter_fuzz("--port", str(tmp_path / "no-such-port"), "--inputs", "1", "--out", str(tmp_path))
    assert p.returncode == 3, p.stderr


def _bare_attack(tmp_path: Path, locked: bool) -> atk.Attack:
    a = atk.Attack(atk.Options(board=BOARD, locked=locked, inputs=1, out=tmp_path / "out"))
    a.mode = "locked" if locked else "development"
    return a


@pytest.mark.parametrize("locked", [True, False])
def test_the_event_monitor_reports_an_event_only_a_signed_command_causes(tmp_path, locked, monkeypatch):
    a = _bare_attack(tmp_path, locked)
    a.events_before = [[1, 102, None, ""]]
    monkeypatch.setattr(a, "read_events", lambda: [[1, 102, None, ""], [2, 408, None, "image.state: no-envelope"],
                                                   [3, 410, None, "settings"]])
    a.check_events()
    kinds = [f["kind"] for f in findings_of(tmp_path / "out")]
    assert kinds == (["unauthorised-state-change"] if locked else []), kinds
    assert a.stats.events_new == {"408": 1, "410": 1}


# -- against the emulator ----------------------------------------------------------------------------------------------

@pytest.mark.e2e
def test_a_seeded_run_against_a_locked_meter_finds_nothing(tmp_path):
    p = meter_fuzz("--emulator", BOARD, "--locked", "--inputs", "40", "--seed", "3", "--no-record", "--json",
                   "--out", str(tmp_path / "out"))
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(p.stdout)
    assert r["inputs"] == 40 and r["findings"] == 0 and r["locked"], r
    assert r["echoes"] >= 4 and r["answered"] == r["echoes"], r
    assert r["by_kind"].get("sweep", 0) >= 1 and r["by_kind"].get("control", 0) >= 1, r["by_kind"]
    assert r["reboots"] == r["expected_reboots"], r
    assert not (tmp_path / "out" / "findings").exists()


@pytest.mark.e2e
def test_the_prompt_monitor_fails_on_a_development_meter_and_the_finding_replays(tmp_path):
    """A development meter answers a Ctrl-C with `>>>`: held to a locked meter's rules (--expect-locked) it must fail
    the prompt monitor, leave a finding folder with its steps, and the steps must bring the prompt back."""
    out = tmp_path / "out"
    p = meter_fuzz("--emulator", BOARD, "--expect-locked", "--kinds", "control", "--inputs", "6", "--seed", "1",
                   "--out", str(out))
    assert p.returncode == 1, p.stdout + p.stderr
    found = {f["kind"]: f for f in findings_of(out)}
    assert "console-prompt" in found, list(found)
    f = found["console-prompt"]
    assert f["target"] == f"attack-{BOARD}-locked" and f["repro"].startswith("meter-fuzz attack --replay ")
    folder = out / "findings" / f["target"] / f"console-prompt-{f['signature']}"
    steps = [json.loads(line) for line in (folder / "inputs.jsonl").read_text().splitlines()]
    assert steps and all(set(s) >= {"t", "via", "send"} for s in steps)
    assert any("03" in s["send"] for s in steps)  # a Ctrl-C among them
    # a development meter is set back to its app afterwards (Ctrl-D): the session went on, nothing hung
    assert "unrecovered-hang" not in found, found["unrecovered-hang"]["summary"] if "unrecovered-hang" in found else ""
    p = meter_fuzz("--replay", str(folder), "--json")
    assert p.returncode == 1, p.stdout + p.stderr
    assert json.loads(p.stdout)["reproduced"] is True


@pytest.mark.e2e
def test_the_record_monitor_reports_a_protected_file_altered_in_the_flash(tmp_path, monkeypatch):
    """Two snapshots of a real locked meter's flash image: the same image gives no finding; the image with its mode
    file rewritten (what an unauthorised change would leave) gives an unauthorised-state-change naming the file."""
    from littlefs import LittleFS, UserContext

    emu = Emulator(tmp_path / "meter", board=BOARD)
    try:
        emu.wait_boots(1)
        atk.lock_over_repl(emu.console)
    finally:
        emu.stop()
    before = tmp_path / "before.bin"
    shutil.copy(emu.flash, before)
    after = tmp_path / "after.bin"
    image = bytearray(before.read_bytes())
    ctx = UserContext(len(image))
    ctx.buffer[:] = image
    fs = LittleFS(context=ctx, mount=False, block_size=4096, block_count=len(image) // 4096, read_size=32,
                  prog_size=32, cache_size=128, lookahead_size=32, block_cycles=100)
    fs.mount()
    with fs.open("/meter/mode.json", "rb") as fh:
        assert b"locked" in fh.read()
    with fs.open("/meter/mode.json", "wb") as fh:
        fh.write(b'{"mode": "development"}')
    fs.unmount()
    after.write_bytes(bytes(ctx.buffer))

    a = _bare_attack(tmp_path, locked=True)
    snaps = iter([atk.flash_records(before, BOARD), atk.flash_records(before, BOARD), atk.flash_records(after, BOARD)])
    monkeypatch.setattr(a, "records", lambda: next(snaps))
    a.records_before = a.records()
    assert "flash:meter/mode.json" in a.records_before and any(k.startswith("flash:slots/") for k in a.records_before)
    a.check_records()
    assert findings_of(tmp_path / "out") == []
    a.check_records()
    got = findings_of(tmp_path / "out")
    assert [f["kind"] for f in got] == ["unauthorised-state-change"], got
    assert "meter/mode.json" in got[0]["summary"]


@pytest.mark.e2e
def test_a_seeded_run_over_udp_against_a_locked_meter_finds_nothing(tmp_path):
    """--udp: the emulator runs with its NB-IoT module, the attacker is the head-end (set with the development key
    before the meter is locked) and sends datagrams — single, back to back, oversized, empty — besides the console."""
    p = meter_fuzz("--emulator", BOARD, "--locked", "--udp", "--inputs", "24", "--seed", "3", "--json",
                   "--out", str(tmp_path / "out"))
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(p.stdout)
    assert r["findings"] == 0 and r["by_kind"].get("udp", 0) >= 5, r
    # each liveness check echoed over the console and over UDP (the run starts only once a UDP echo came back)
    assert r["answered"] >= 2 * (24 // 10) + 1, r  # a lost datagram is retried: echoes may exceed answers
