"""Signed-image upload over the emulated serial console: `ota push` and smpmgr deliver, the meter judges the
image with its own policy and says why it refuses one; uploads resume; a power cut mid-upload loses nothing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import pytest
from smp import image_management as imgm

from host_tests.conftest import BOARDS
from host_tests.e2e.test_emulator import echo_ok
from host_tests.emu import BIN, SmpLink

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DEV_IMAGE_KEY = ROOT / "keys" / "dev" / "image-DEVELOPMENT-ONLY-ed25519.pem"


def build(tmp_path: Path, board: str, version: str = "1.1.0", counter: int = 1) -> Path:
    out = tmp_path / f"{board}-{version}.img"
    p = subprocess.run([str(BIN / "ota"), "build", str(ROOT / "firmware"), "--board", board, "--version", version,
                        "--security-counter", str(counter), "--key", str(DEV_IMAGE_KEY), "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return out


def ota(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ota"), *map(str, args)], capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("board", BOARDS)
def test_push_is_judged_accepted_and_shown_in_slot_1(start_emulator, tmp_path, board):
    emu = start_emulator(board)
    echo_ok(emu)
    img = build(tmp_path, board)
    p = ota("push", img, "--port", emu.console, "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(p.stdout)
    assert r["state"] == "accepted" and r["version"] == "1.1.0+0" and r["uploaded"] == img.stat().st_size
    slots = json.loads(ota("status", "--port", emu.console, "--json").stdout)["slots"]
    assert [s["slot"] for s in slots] == [0, 1]
    assert slots[0]["active"] and slots[0]["version"] == "0.1.0"
    assert slots[1]["version"] == "1.1.0" and not slots[1]["active"]
    assert bytes.fromhex(slots[1]["hash"]) == hashlib.sha256(img.read_bytes()[: -(4 + 36 * 2 + 68)]).digest()


def test_rejections_name_the_reason_and_keep_the_app(start_emulator, tmp_path):
    emu = start_emulator("rpi_pico")
    echo_ok(emu)
    wrong_board = build(tmp_path, "esp32_devkitc")
    p = ota("push", wrong_board, "--port", emu.console, "--json")
    r = json.loads(p.stdout)
    assert p.returncode == 11 and r["ok"] is False and r["reason"] == "wrong-board" and r["exit"] == 11, p.stdout
    status = json.loads(ota("status", "--port", emu.console, "--json").stdout)
    assert status["update"] == "none", "refused before a byte was sent (the meter reports its board)"
    p = ota("push", wrong_board, "--port", emu.console, "--json", "--no-local-check")
    assert p.returncode == 11 and json.loads(p.stdout)["reason"] == "wrong-board", "and the meter refuses it too"
    good = build(tmp_path, "rpi_pico")
    bad = bytearray(good.read_bytes())
    bad[300] ^= 0x01
    tampered = tmp_path / "tampered.img"
    tampered.write_bytes(bytes(bad))
    p = ota("push", tampered, "--port", emu.console)
    assert p.returncode == 8 and "local check" in p.stderr
    p = ota("push", tampered, "--port", emu.console, "--no-local-check")
    assert p.returncode == 8 and "hash-mismatch" in p.stderr
    low = build(tmp_path, "rpi_pico", "1.2.0", counter=40)  # more than 16 above the meter's counter
    p = ota("push", low, "--port", emu.console)
    assert p.returncode == 12 and "counter-step" in p.stderr
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\x00" * 2000)
    p = ota("push", junk, "--port", emu.console, "--no-local-check")
    assert p.returncode == 8 and "bad-magic" in p.stderr  # refused at the first chunk
    slots = json.loads(ota("status", "--port", emu.console, "--json").stdout)["slots"]
    assert [s["slot"] for s in slots] == [0]
    echo_ok(emu)


def test_upload_offsets_and_resume(start_emulator, tmp_path):
    emu = start_emulator()
    echo_ok(emu)
    data = build(tmp_path, "esp32_devkitc").read_bytes()
    sha = hashlib.sha256(data).digest()
    link = SmpLink(emu.console)
    try:
        r = link.request(imgm.ImageUploadWriteRequest(off=0, len=len(data), sha=sha, data=data[:500]))
        assert r.off == 500
        r = link.request(imgm.ImageUploadWriteRequest(off=700, data=data[700:800]))
        assert r.off == 500, "a wrong offset gets the expected one back, the data is dropped"
        r = link.request(imgm.ImageUploadWriteRequest(off=0, len=len(data), sha=sha, data=data[:500]))
        assert r.off == 500, "same sha and len: the transfer resumes"
    finally:
        link.close()
    p = ota("push", tmp_path / "esp32_devkitc-1.1.0.img", "--port", emu.console, "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["state"] == "accepted", p.stdout + p.stderr


def test_power_cut_during_upload_then_push_again(start_emulator, tmp_path):
    emu = start_emulator("rpi_pico")
    echo_ok(emu)
    img = build(tmp_path, "rpi_pico")
    # the cut is armed at the 6th flash write from now, which must be the upload's: the app's start writes the day's
    # daily load profile row at its tenth reading (8 writes, device time at 1x), and on a busy host the push began
    # after it, the cut fell in the row and the push never saw it (a flaky failure, 2026-12-07)
    end = time.monotonic() + 60
    while json.loads(ota("meter", "read", "--port", emu.console, "--json").stdout)["readings"] < 11:
        assert time.monotonic() < end, "the app took no tenth reading"
        time.sleep(0.5)
    emu.ctl("power-cut", "--at-write", "6", "--off", "0.3")
    first = ota("push", img, "--port", emu.console, "--timeout", "2", "--json")
    assert "power cut before flash operation" in emu.output()
    # ota push retries while the meter is off; when it is back within the retries, the upload resumes and completes
    assert first.returncode != 0 or json.loads(first.stdout)["retries"] > 0, first.stdout
    time.sleep(1.0)
    echo_ok(emu, timeout=30)
    p = ota("push", img, "--port", emu.console, "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["state"] == "accepted", p.stdout + p.stderr
    assert emu.ctl("status")["formatted"] == 0


@pytest.mark.interop
def test_smpmgr_upload_is_judged_by_the_meter(start_emulator, tmp_path):
    emu = start_emulator()
    echo_ok(emu)
    img = build(tmp_path, "esp32_devkitc", "2.0.0", counter=2)
    p = subprocess.run([str(BIN / "smpmgr"), "--port", emu.console, "--timeout", "5", "image", "upload", str(img)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = json.loads(ota("status", "--port", emu.console, "--json").stdout)["slots"]
    assert rows[-1]["version"] == "2.0.0"
