"""Issue 18's acceptance over the real app's NB-IoT path: a meter-emu meter (esp32_devkitc, its BC660K module
`--modem`, --speed max) with a signed head-end serves SMP over UDP from its own app (app/network.py), and the host is
that head-end (`udp://METER:1337?from=HEADEND_PORT`, as in test_network_e2e.py). Through `nb1-good`:

- `ota push --test` of a signed app (also through `nb1-edge`) through a link outage mid-upload (`link.loss=1` for a while) completes; the new
  app test-boots, brings its network back (the head-end is in meter/config.json, outside the slots) and confirms;
- a power cut mid-upload: the rerun resumes from the offset the meter kept (meter/upload.json) and completes;
- through the field engineer's USB modem (`modem://`, `meter-emu modem`): `ota meter read`, `relay status`, a push;
- a locked meter refuses unsigned commands over UDP exactly as over its console.

The pushed app is a minimal one (heartbeat, console, network and self-test: about 15 kB, built as test_update.py
builds its variants), so an upload through nb1-good fits the suite's budget; the reference app's push through the
NB-IoT profiles is the benchmark's. Virtual time at --speed max: nothing here asserts wall-clock timing, and every
wait is generous."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from host_tests.conftest import sweep_only
from host_tests.e2e.test_update import variant
from host_tests.emu import BIN, SmpLink
from host_tests.supply_scenario import KEY, SIGNED_FOR

from .test_modem_link_e2e import field_modem  # noqa: F401 (a fixture)
from .test_network_e2e import _free_udp_port, _ota

pytestmark = pytest.mark.e2e

BOARD = "esp32_devkitc"
# the minimal app: what a test boot needs to come back on its network and confirm itself
KEEP = {"__init__.py", "console.py", "heartbeat.py", "main.py", "selftest.py", "network.py", "network_link.py", "events.py",
        "modem.py", "modem_at.py", "modem_bc660k.py", "modem_smp.py", "adc_frontend.py", "bl0942.py"}
MINIMAL_MAIN = '''# A minimal app for the NB-IoT push tests: heartbeat, console, network (SMP over UDP) and the self-test.
import asyncio

from app import console, events, heartbeat


def run(ctx):
    asyncio.run(_main(ctx))


async def _main(ctx):
    from app.network import Network

    beat = heartbeat.Heartbeat(ctx)
    serve = console.ConsoleTask(ctx)
    ctx.reset_scheduler = serve.schedule_reset
    log = events.EventLog()
    log.load()
    net = Network(ctx, log)
    ctx.server.register(67, 0, net.status, write=False)  # as app/main.py registers group 67
    ctx.server.register(67, 1, net.headend_cmd)
    tasks = [beat.run(), serve.run(), net.run()]
    if ctx.test_boot:
        from app import selftest

        tasks.append(selftest.run(ctx, beat))
    await asyncio.gather(*tasks)
'''
PROFILE_LOSS = {"nb1-good": 0.01, "nb1-edge": 0.05}  # emulator/device/_emu_link.py PROFILES
TIMEOUT = "10"  # ota's per-request deadline over the radio (retransmissions happen inside it)


def minimal_app(tmp_path: Path, version: str, counter: int = 1) -> Path:
    def edit(app: Path) -> None:
        for f in app.glob("*.py"):
            if f.name not in KEEP:
                f.unlink()
        (app / "main.py").write_text(MINIMAL_MAIN)
        spec = json.loads((app / "modules.json").read_text())
        spec["optical"] = []  # the DLMS port's modules went with the rest: none to list
        (app / "modules.json").write_text(json.dumps(spec))

    return variant(tmp_path, f"minimal-{version}", BOARD, version, counter, edit)


@pytest.fixture
def networked(start_emulator):
    """A meter on its NB-IoT network: its head-end (this host, a free port) set by a signed command, then reset so
    its app opens the module's socket. Returns (emulator, its udp:// link URL)."""
    emu = start_emulator(BOARD, speed="max", seed=11, args=("--modem",))
    emu.wait_boots(1)
    port = _free_udp_port()
    _ota("meter", "network", "--port", emu.console, "--headend", f"127.0.0.1:{port}", "--uplink", 0, "--key", KEY,
         "--expires-in", SIGNED_FOR, "--json")
    _ota("reset", "--port", emu.console)
    emu.wait_boots(2)
    socket_open(emu)
    udp = emu.endpoints["udp"]
    return emu, f"udp://{udp['address']}:{udp['port']}?from={port}"


def socket_open(emu, timeout: float = 120) -> dict:
    return emu.wait_status(lambda s: s["device"].get("modem", {}).get("sockets") == [0], timeout=timeout,
                           what="the head-end's socket")


def downlinked(emu) -> int:
    """Datagrams the meter's module has taken from the network since its VM started (the last boot)."""
    return emu.status()["device"].get("modem", {}).get("stats", {}).get("down", 0)


def push(image: Path, url: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "ota"), "push", str(image), "--port", url, "--json", "--timeout", TIMEOUT,
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_downlinked(emu, p: subprocess.Popen, n: int, timeout: float = 120) -> int:
    """Until the module has taken `n` datagrams (the upload is under way); fails if the push ended first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = downlinked(emu)
        if got >= n:
            return got
        assert p.poll() is None, f"the push ended before the test's moment: {p.communicate()}"
        time.sleep(0.1)
    raise TimeoutError(f"the module took fewer than {n} datagrams in {timeout:g} s")


def finished(p: subprocess.Popen, timeout: float = 240) -> tuple[int, dict, str]:
    """The push's exit, its JSON and its stderr; a push still running after `timeout` is stopped (no orphan holds
    the head-end's port or the modem's pty for the next test)."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGINT)  # as a field engineer gives up: ota says where the push stood
        try:
            out, err = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        raise AssertionError(f"the push did not end in {timeout:g} s: {out}{err[-2000:]}") from None
    return p.returncode, (json.loads(out) if out.strip() else {}), err


def running_slot(url: str) -> dict:
    st = _ota("status", "--port", url, "--timeout", 30, "--json")
    return next(r for r in st["slots"] if r["active"])


# nb1-good runs in the default suite (about 57 s with its meter's start, 2026-12-06); nb1-edge's slower radio takes
# about 72 s, so it stays in `make sweeps`. Both once stalled at byte 0 under load: the emulator's module model lost
# every copy of the first 512-byte chunk when building its URC needed the shims' room (fixed in
# emulator/device/_emu_modem.py, tested in test_modem_model.py).
@pytest.mark.parametrize("profile", [
    "nb1-good",
    pytest.param("nb1-edge", marks=sweep_only("a long radio link (about 72 s)")),
])
def test_push_survives_a_link_outage_and_the_new_app_confirms(networked, tmp_path, profile):
    emu, url = networked
    img = minimal_app(tmp_path, "1.2.0")
    emu.ctl("set", f"link.profile={profile}")
    p = push(img, url, "--test", "--reset-wait", "240", "--verdict-wait", "240")
    # a third of the way through the upload (about 30 chunks, beside the reads before it) the radio loses every
    # datagram both ways for a while: ota's timer backs off and it resends from the meter's offset when it is back
    seen = wait_downlinked(emu, p, 15)
    emu.ctl("set", "link.loss=1")
    time.sleep(1)  # what was on its way already when the radio failed arrives (the link drew its fate at sending)
    lost_from = downlinked(emu)
    time.sleep(6)  # wall seconds: several of ota's retransmission timeouts
    assert downlinked(emu) == lost_from, "nothing reached the meter during the outage"
    emu.ctl("set", f"link.loss={PROFILE_LOSS[profile]}")  # back to the profile's own loss
    try:
        rc, r, err = finished(p)
    except AssertionError as e:  # (it once stalled after the outage: what the meter and the module held then)
        raise AssertionError(f"{e}\nthe meter: {emu.ctl('status')}\ndatagrams the module took: {downlinked(emu)}") \
            from None
    assert rc == 0, (rc, r, err)
    assert r["before"] == "app-0.1.0" and r["after"] == "app-1.2.0", r
    assert r["retries"] > 0 and seen >= 15, r
    assert r["trial"]["outcome"] == "confirmed", r  # the self-test's verdict, read over UDP after the test boot
    # the new app's network is up (the head-end outlived the slot change) and it runs confirmed
    run = running_slot(url)
    assert run["version"] == "1.2.0" and run["confirmed"], run
    net = _ota("meter", "network", "--port", url, "--timeout", 30, "--json")
    assert net["link"] == "up" and net["headend"]["ip"] == "127.0.0.1", net


def kept_offset(emu, image: Path) -> int:
    """The offset the meter holds for the upload of `image`: its answer to that upload's first chunk sent again
    (same length and hash: the meter resumes, it takes no byte and answers where it stands), over the console."""
    from smp import image_management as imgm

    data = image.read_bytes()
    link = SmpLink(emu.console)
    try:
        r = link.request(imgm.ImageUploadWriteRequest(off=0, len=len(data), sha=hashlib.sha256(data).digest(),
                                                      data=data[:64]), timeout=30)
    finally:
        link.close()
    return r.off


def test_a_power_cut_mid_upload_over_udp_then_the_rerun_resumes_from_the_meter_s_offset(networked, tmp_path):
    emu, url = networked
    img = minimal_app(tmp_path, "1.3.0")
    size = img.stat().st_size
    emu.ctl("set", "link.profile=nb1-good")
    p = push(img, url)
    wait_downlinked(emu, p, 25)
    boots = emu.ctl("status")["boots"]
    emu.ctl("power-cut", "--off", "manual")
    time.sleep(3)  # the push retries into the silence; then the field engineer gives up on it (Ctrl-C)
    p.send_signal(signal.SIGINT)
    rc, r, err = finished(p, timeout=60)
    assert rc == 130, (rc, r, err)
    # ota says where it stood: the bytes the meter had confirmed, and that a rerun resumes
    assert r["message"].startswith("interrupted: the meter had confirmed ") and "a rerun resumes" in r["message"], r
    emu.ctl("power-on")
    emu.wait_boots(boots + 1, timeout=60)
    socket_open(emu)
    kept = kept_offset(emu, img)
    assert 0 < kept < size, kept  # the upload under way outlived the cut (meter/upload.json)
    chunks_from_zero = -(-size // 490)  # at most 490 image bytes ride in one 512-byte datagram
    p = push(img, url)
    rc, r, err = finished(p)
    assert rc == 0 and r["state"] == "accepted" and r["uploaded"] == size, (rc, r, err)
    # the rerun sent from the meter's offset: fewer datagrams reached the meter (its reads, the rest of the image,
    # what was lost and sent again) than the image alone takes from the start
    assert downlinked(emu) < chunks_from_zero, (downlinked(emu), chunks_from_zero, r)
    run = running_slot(url)
    assert run["version"] == "0.1.0", run
    assert emu.ctl("status")["formatted"] == 0


def test_meter_commands_and_a_push_through_the_field_modem(start_emulator, field_modem, tmp_path):  # noqa: F811
    """The field engineer's USB modem (`meter-emu modem`, BG95 dialect, driven by ota with AT commands) to the real
    app's BC660K: the meter's head-end is the modem's address and the local port its socket opens (`from=`);
    the meter's radio is nb1-good. `ota meter read` and `relay status` answer, and a push --test completes."""
    fm = field_modem(tmp_path / "fm")
    lport = _free_udp_port()
    emu = start_emulator(BOARD, speed="max", seed=13, args=("--modem",))
    emu.wait_boots(1)
    _ota("meter", "network", "--port", emu.console, "--headend", f"{fm['address']}:{lport}", "--uplink", 0,
         "--key", KEY, "--expires-in", SIGNED_FOR, "--json")
    _ota("reset", "--port", emu.console)
    emu.wait_boots(2)
    socket_open(emu)
    emu.ctl("set", "link.profile=nb1-good")
    udp = emu.endpoints["udp"]
    url = f"modem://{fm['modem']}?to={udp['address']}:{udp['port']}&from={lport}"

    read = _ota("meter", "read", "--port", url, "--timeout", 30, "--json")
    assert read["obis"] and read["ok"], read
    relay = _ota("meter", "relay", "status", "--port", url, "--timeout", 30, "--json")
    over_serial = _ota("meter", "relay", "status", "--port", emu.console, "--json")
    assert relay["output"] is True and relay["relay"]["feedback"], relay
    assert (relay["output"], relay["state"], relay["relay"]) == (over_serial["output"], over_serial["state"],
                                                                  over_serial["relay"]), (relay, over_serial)

    img = minimal_app(tmp_path, "1.4.0")
    rc, r, err = finished(push(img, url, "--test", "--reset-wait", "240", "--verdict-wait", "240"))
    assert rc == 0, (rc, r, err)
    assert r["after"] == "app-1.4.0" and r["trial"]["outcome"] == "confirmed", r
    run = running_slot(url)
    assert run["version"] == "1.4.0" and run["confirmed"], run


def test_a_locked_meter_over_udp_refuses_unsigned_commands_exactly_as_over_serial(start_emulator, tmp_path):
    """A meter provisioned locked (production keys, as in test_locked.py), its head-end set with the production
    command key: over UDP an unsigned relay command and an unsigned image state write are refused with the same
    exit and the same message as over its console (the port named aside)."""
    from host_tests.e2e.test_locked import production_keys

    emu = start_emulator(BOARD, blank=True, baud=921600, speed="max", seed=17, args=("--modem",))
    keys = production_keys(tmp_path)
    con = emu.console
    p = subprocess.run([str(BIN / "ota"), "provision", "--port", con, "--board", BOARD, "--lock", "--trust",
                        str(keys["trust"]), "--json"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and json.loads(p.stdout)["mode"] == "locked", p.stdout + p.stderr
    port = _free_udp_port()
    # unsigned, and signed with the development key: refused; the production command key sets it
    _ota("meter", "network", "--port", con, "--headend", f"127.0.0.1:{port}", expect=9)
    _ota("meter", "network", "--port", con, "--headend", f"127.0.0.1:{port}", "--uplink", 0, "--key", KEY,
         "--expires-in", SIGNED_FOR, expect=9)
    _ota("meter", "network", "--port", con, "--headend", f"127.0.0.1:{port}", "--uplink", 0, "--key",
         keys["command"], "--expires-in", SIGNED_FOR, "--json")
    boots = emu.ctl("status")["boots"]
    _ota("reset", "--port", con, "--key", keys["command"])
    emu.wait_boots(boots + 1, timeout=60)
    socket_open(emu)
    udp = emu.endpoints["udp"]
    url = f"udp://{udp['address']}:{udp['port']}?from={port}"

    def refused(link: str, *args: str) -> tuple[int, str, dict]:
        text = subprocess.run([str(BIN / "ota"), *args, "--port", link, "--timeout", "30"], capture_output=True,
                              text=True, timeout=180)
        js = subprocess.run([str(BIN / "ota"), *args, "--port", link, "--timeout", "30", "--json"],
                            capture_output=True, text=True, timeout=180)
        assert text.returncode == js.returncode, (text, js)
        return text.returncode, (text.stdout + text.stderr).replace(link, "PORT"), json.loads(js.stdout)

    for cmd in (("meter", "relay", "disconnect"), ("confirm",)):
        over_serial = refused(con, *cmd)
        over_udp = refused(url, *cmd)
        assert over_serial[0] == 9 and "not authorised" in over_serial[1], over_serial
        assert over_udp == over_serial, (cmd, over_udp, over_serial)
    st = _ota("meter", "relay", "status", "--port", url, "--timeout", 30, "--json")
    assert st["output"] is True, st  # nothing was done
