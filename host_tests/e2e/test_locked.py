"""Provisioning a blank board over its REPL (`ota provision`), locking it, and what a locked meter then allows:
uploads and state reads stay open (smpmgr too); installing, erasing and early resets need a signed command from a
non-development command key; development-signed images are refused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from host_tests.e2e.test_update import wait_running
from host_tests.e2e.test_upload import DEV_IMAGE_KEY, ROOT, ota
from host_tests.emu import BIN

pytestmark = pytest.mark.e2e
DEV_COMMAND_KEY = ROOT / "keys" / "dev" / "command-DEVELOPMENT-ONLY-ed25519.pem"


def production_keys(d: Path) -> dict[str, Path]:
    keys = {r: d / f"{r}.pem" for r in ("root", "image", "command")}
    for p in keys.values():
        assert ota("keygen", "-o", p).returncode == 0
    store = d / "trust.cbor"
    p = ota("trust", "create", "--root", keys["root"], "--add", f"{keys['root']}:root",
            "--add", f"{keys['image']}:image", "--add", f"{keys['command']}:command", "--counter", "1", "-o", store)
    assert p.returncode == 0, p.stderr
    keys["trust"] = store
    return keys


def image(tmp: Path, key: Path, version: str, counter: int) -> Path:
    out = tmp / f"app-{version}.img"
    p = subprocess.run([str(BIN / "ota"), "build", str(ROOT / "firmware"), "--board", "rpi_pico", "--version",
                        version, "--security-counter", str(counter), "--key", str(key), "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return out


def test_provision_lock_and_signed_update(start_emulator, tmp_path):
    # the Pico's console is USB CDC, where the line rate is nominal: the emulated line runs at 921600
    emu = start_emulator("rpi_pico", blank=True, baud=921600)
    keys = production_keys(tmp_path)
    port = emu.console
    p = ota("provision", "--port", port, "--board", "rpi_pico", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    first = json.loads(p.stdout)
    assert first["app"] == "app-0.1.0" and first["mode"] == "development"
    # a development meter can be provisioned again, here to lock it; --lock without a store is refused first
    assert ota("provision", "--port", port, "--board", "rpi_pico", "--lock").returncode == 1
    p = ota("provision", "--port", port, "--board", "rpi_pico", "--lock", "--trust", keys["trust"], "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["mode"] == "locked"
    p = ota("provision", "--port", port, "--board", "rpi_pico", "--json")
    assert p.returncode == 9, p.stdout + p.stderr  # the REPL is closed now

    # a development-signed image: refused before a byte is sent (the meter reports the image keys it trusts), and by
    # the meter itself when sent anyway (its production store does not know that key)
    dev_image = image(tmp_path, DEV_IMAGE_KEY, "1.9.0", 1)
    p = ota("push", dev_image, "--port", port, "--json")
    assert p.returncode == 10 and json.loads(p.stdout)["reason"] == "unknown-key", p.stdout
    assert json.loads(ota("status", "--port", port, "--json").stdout)["update"] == "none", "nothing was uploaded"
    p = ota("push", dev_image, "--port", port, "--json", "--no-local-check")
    assert p.returncode == 10 and json.loads(p.stdout)["reason"] == "unknown-key", p.stdout
    new = image(tmp_path, keys["image"], "2.0.0", 1)
    # upload and state read stay open, for smpmgr as well
    s = subprocess.run([str(BIN / "smpmgr"), "--port", port, "--timeout", "5", "image", "upload", str(new)],
                       capture_output=True, text=True, timeout=180)
    assert s.returncode == 0, s.stdout + s.stderr
    s = subprocess.run([str(BIN / "smpmgr"), "--port", port, "image", "state-read"], capture_output=True, text=True,
                       timeout=60)
    assert s.returncode == 0 and "2.0.0" in s.stdout, s.stdout + s.stderr
    # installing needs a command key; the development one is not one
    p = ota("push", new, "--port", port, "--test", "--json")
    assert p.returncode == 9 and json.loads(p.stdout)["reason"] == "no-envelope", p.stdout
    # envelopes are checked before any is spent: with the state envelope alone, nothing is sent (issue 16 item 4)
    meter_id = json.loads(ota("info", "--port", port, "--json").stdout)["meter_id"]
    state_env = tmp_path / "state.cbor"
    p = ota("envelope", "--key", keys["command"], "--meter", meter_id, "--cmd", "image.state", "--args",
            '{"confirm": false}', "--image", new, "-o", state_env)
    assert p.returncode == 0, p.stderr
    p = ota("push", new, "--port", port, "--test", "--json", "--envelope", state_env)
    r = json.loads(p.stdout)
    assert p.returncode == 9 and r["reason"] == "no-envelope" and "os.reset" in r["message"], p.stdout
    rows = json.loads(ota("status", "--port", port, "--json").stdout)["slots"]
    assert not any(row["pending"] for row in rows), "nothing was spent: the state write was not sent"
    p = ota("push", new, "--port", port, "--test", "--json", "--key", DEV_COMMAND_KEY)
    assert p.returncode == 9 and json.loads(p.stdout)["reason"] == "unknown-key", p.stdout
    assert ota("erase", "--port", port).returncode == 9
    p = ota("push", new, "--port", port, "--test", "--json", "--key", keys["command"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["after"] == "app-2.0.0"
    wait_running(emu, "2.0.0", confirmed=True)
    # just booted: an unsigned reset is refused (busy), a signed one is not
    assert ota("reset", "--port", port).returncode == 5
    assert ota("reset", "--port", port, "--key", keys["command"]).returncode == 0
    wait_running(emu, "2.0.0", confirmed=True)


def test_a_rerun_push_does_not_send_a_pending_state_write_again(start_emulator, tmp_path):
    """A push to a locked meter whose state write went through but whose reset was refused leaves the image pending.
    The rerun, with only a new os.reset envelope (docs/field-team.md: "a rerun needs only the reset envelope"), does
    not send the state write again (its envelope is spent: the meter would refuse it as replayed), sends the reset
    and reports the test boot's verdict: the meter ends running the new image, confirmed."""
    emu = start_emulator("rpi_pico", blank=True, baud=921600)
    keys = production_keys(tmp_path)
    port = emu.console
    p = ota("provision", "--port", port, "--board", "rpi_pico", "--lock", "--trust", keys["trust"], "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["mode"] == "locked", p.stdout + p.stderr
    new = image(tmp_path, keys["image"], "2.1.0", 1)
    meter_id = json.loads(ota("info", "--port", port, "--json").stdout)["meter_id"]

    def envelope(name: str, key: Path, *args: str) -> Path:
        out = tmp_path / f"{name}.cbor"
        q = ota("envelope", "--key", key, "--meter", meter_id, *args, "-o", out)
        assert q.returncode == 0, q.stdout + q.stderr
        return out

    state_env = envelope("state", keys["command"], "--cmd", "image.state", "--args", '{"confirm": false}',
                         "--image", new)
    # a reset envelope the meter refuses (signed with a key it does not trust): the state write is spent, no reset
    bad_reset = envelope("bad-reset", DEV_COMMAND_KEY, "--cmd", "os.reset")
    p = ota("push", new, "--port", port, "--test", "--json", "--envelope", state_env, "--envelope", bad_reset)
    r = json.loads(p.stdout)
    # the update status says why the os group refused the reset: a key the meter does not trust, not "no-envelope"
    assert p.returncode == 9 and r["message"].startswith("reset:"), p.stdout + p.stderr
    assert r["reason"] not in ("", "no-envelope") and r["reason"] in r["message"], r
    st = json.loads(ota("status", "--port", port, "--json").stdout)
    running = next(row for row in st["slots"] if row["active"])
    assert running["version"] == "0.1.0", st["slots"]
    assert st["slots"][1]["version"].removesuffix("+0") == "2.1.0" and st["slots"][1]["pending"], st["slots"]
    want = st["slots"][1]["hash"]

    good_reset = envelope("reset", keys["command"], "--cmd", "os.reset")
    p = ota("push", new, "--port", port, "--test", "--json", "--envelope", good_reset)
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(p.stdout)
    assert r["skipped_state_write"] is True, r
    assert "already has this image pending: only the reset is sent" in p.stderr, p.stderr
    assert r["before"] == "app-0.1.0" and r["after"] == "app-2.1.0", r
    assert r["trial"]["hash"] == want and r["trial"]["outcome"] == "confirmed", r  # the verdict, not just the boot
    rows = wait_running(emu, "2.1.0", confirmed=True)
    assert not any(row["pending"] for row in rows), rows
