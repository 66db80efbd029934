"""ota's `modem://` link end to end: `ota` drives the emulated field modem (`meter-emu modem`, a BG95 on a pty whose
datagrams leave on real loopback sockets, through its own link model) with AT commands, and reaches a meter whose
VM runs the firmware's own modem driver and SMP-over-UDP server (the program of test_modem_driver_e2e.py) through the
meter's BC660K module (with the loader's context, OS and image groups, so `ota info` gets its update status). The
meter's socket answers only its head-end: the field modem's address and the local port
the link opens (`from=`). With no link model and through `nb2-good`; then what a field engineer meets when the
modem cannot carry the link: registration denied, still searching, no SIM. Nothing here asserts wall-clock timing.
A modem that answers SEND FAIL, and a port nobody answers: host_tests/unit/test_modem_link.py."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from emulator import radio
from meterkit import layout
from ota_tool import image, keys, meter_info
from ota_tool.cli.exits import Exit
from ota_tool.errors import ModemError
from ota_tool.link import MeterLink
from ota_tool.modem_link import ModemDatagrams

from .test_modem_driver_e2e import PROGRAM, _free_udp_port, driver_meter  # noqa: F401 (a fixture)

# the meter's program with the loader's own context, OS and image groups (the update status `ota info` reads)
SERVED = """
    from loader.context import Context
    from loader.image_group import ImageGroup

    ctx = Context()
    server = ctx.server
    OsGroup(ctx).register(server)
    ImageGroup(ctx).register(server)
"""
PROGRAM_INFO = PROGRAM.replace("""
    server = smp.Server()
    OsGroup(Ctx()).register(server)
""", SERVED)
assert PROGRAM_INFO != PROGRAM

BIN = Path(sys.executable).parent
DEV_IMAGE_KEY = layout.ROOT / "keys" / "dev" / "image-DEVELOPMENT-ONLY-ed25519.pem"


@pytest.fixture
def field_modem(tmp_path):
    """Start `meter-emu modem` in STATE (extra options as given); its endpoints.json. Stopped at teardown."""
    procs: list[subprocess.Popen] = []

    def start(state: Path, *args: str) -> dict:
        p = subprocess.Popen([str(BIN / "meter-emu"), "modem", "--state", str(state), *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(p)
        line = p.stdout.readline()
        assert line.startswith("modem: "), line + p.stderr.read()
        return json.loads((state / "endpoints.json").read_text())

    yield start
    for p in procs:
        p.terminate()
        p.wait(10)


def ota(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ota"), *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("profile", ["none", "nb2-good"])
def test_ota_reaches_the_meter_through_the_field_modem(driver_meter, field_modem, tmp_path, profile):  # noqa: F811
    fm_state = tmp_path / "fm"
    lport = _free_udp_port()
    emu = driver_meter("rpi_pico", head_end=radio.meter_address(fm_state), port=lport, program=PROGRAM_INFO)[0]
    fm = field_modem(fm_state, "--link", profile)
    meter = emu.endpoints["udp"]
    url = f"modem://{fm['modem']}?to={meter['address']}:{meter['port']}&from={lport}"

    r = ota("echo", "--port", url, "--timeout", "60", "--json", "over the air")
    assert r.returncode == 0 and json.loads(r.stdout) == {"ok": True, "echo": "over the air"}, r.stdout + r.stderr
    r = ota("info", "--port", url, "--timeout", "60", "--json")
    info = json.loads(r.stdout)
    assert r.returncode == 0 and info["ok"] and info["board"] == "rpi_pico", r.stdout + r.stderr
    assert info["app"] == "recovery" and info["mode"] == "development"  # what the test program's context reports

    async def go() -> tuple[tuple[int, int], list[str], int]:
        async with MeterLink(url, timeout=60) as link:
            if profile == "none":  # no loss on the way: a stranger's datagram to the modem's socket arrives
                stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                stranger.sendto(b"\x01\x00\x00\x00\x00\x00\x01\x00", (fm["address"], lport))
                stranger.close()
            params = await link.params()
            # the largest: a 498-character echo is a 512-byte SMP frame each way
            echoes = [await meter_info.echo(link, t) for t in ("a", "b" * 498, "\r\n\x00")]
            return params, echoes, link._transport.endpoint.strangers

    params, echoes, strangers = asyncio.run(go())
    assert params == (info["buf_size"], info["buf_count"])
    assert echoes == ["a", "b" * 498, "\r\n\x00"]
    assert strangers == (1 if profile == "none" else 0)  # dropped: only the meter's address and port are heard


def test_ota_push_uploads_an_image_through_the_field_modem(driver_meter, field_modem, tmp_path):  # noqa: F811
    """An upload (no install: the test program is no app to test-boot) through nb2-good, chunks resent from the
    meter's offset where the link loses them; the meter verifies the whole image and accepts it."""
    fm_state = tmp_path / "fm"
    lport = _free_udp_port()
    emu = driver_meter("rpi_pico", head_end=radio.meter_address(fm_state), port=lport, program=PROGRAM_INFO)[0]
    fm = field_modem(fm_state, "--link", "nb2-good", "--seed", "3")
    meter = emu.endpoints["udp"]
    payload = bytes((i * 131 + (i >> 7)) & 0xFF for i in range(6000))
    img = tmp_path / "app.img"
    img.write_bytes(image.sign(image.unsigned_prefix(payload, image.Version.parse("1.2.3"), 5, "rpi_pico",
                                                     layout.loader_api()), keys.load_private(DEV_IMAGE_KEY)))
    url = f"modem://{fm['modem']}?to={meter['address']}:{meter['port']}&from={lport}"
    # not a bundle: the local check would refuse it; the meter checks the bundle only when it installs
    r = ota("push", str(img), "--port", url, "--timeout", "60", "--no-local-check", "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["state"] == "accepted", r.stdout + r.stderr
    assert out["uploaded"] == img.stat().st_size


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--registration", "denied"), "modem registration denied by the network"),
        (("--no-sim",), "no SIM in the modem on"),
    ],
)
def test_a_modem_that_cannot_carry_the_link_is_named_with_its_exit(field_modem, tmp_path, args, words):
    fm = field_modem(tmp_path / "fm", *args)
    r = ota("echo", "--port", f"modem://{fm['modem']}?to=127.0.0.2", "--timeout", "5", "--json")
    out = json.loads(r.stdout)
    assert r.returncode == Exit.MODEM and out["ok"] is False and out["error"] == "modem", r.stdout + r.stderr
    assert words in out["message"]


def test_a_modem_still_searching_is_named_with_how_long(field_modem, tmp_path):
    fm = field_modem(tmp_path / "fm", "--registration", "searching")

    async def go() -> None:
        link = ModemDatagrams(fm["modem"], "127.0.0.2", 1337, register_wait=3)
        await link.open(5)

    with pytest.raises(ModemError, match=r"modem not registered: searching for [0-9]+ s"):
        asyncio.run(go())


def test_no_answer_on_the_modem_s_port_is_named(tmp_path):
    import os
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    try:
        r = ota("echo", "--port", f"modem://{path}?to=127.0.0.2", "--json")
    finally:
        os.close(master)
        os.close(slave)
    out = json.loads(r.stdout)
    assert r.returncode == Exit.MODEM and f"modem not answering on {path}" in out["message"], r.stdout + r.stderr
