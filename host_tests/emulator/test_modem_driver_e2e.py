"""The firmware's own modem driver end to end in a running meter-emu: the board's VM runs app.modem from the board
file (from_board: the real UART and power-key pins) against the emulated BC660K module, and serves SMP over UDP
(app.modem_smp) with the loader's own SMP server and OS group. The host is the meter's head-end at a fixed
address:port (a BC660K "UDP" socket sends only to the remote it was opened with) and talks to the meter's address
from endpoints.json with ota's own link (`udp://ADDR:1337?from=PORT`). Through the link profiles `none`, `nb2-good`
and `nb1-good`, with the module wedged (the driver must pulse the power key), registration denied and allowed
again, and the link lost for a while in the middle of a series of echoes. Virtual time at --speed max: nothing
here asserts wall-clock timing."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from smpclient.requests.os_management import EchoWrite

from meterkit.boards import load_board
from ota_tool.link import MeterLink

ROOT = Path(__file__).resolve().parents[2]

# the test firmware: boot.py is the program (as in test_modem_e2e.py); it never returns, so main.py never runs
PROGRAM = r"""
import asyncio
import json
import os
import sys
import time

_root = os.getcwd().rstrip("/")  # a freshly provisioned meter: loader folder a, app slot a
sys.path[:0] = [_root + "/loaders/a", _root + "/loaders/a/lib", _root + "/slots/a"]

from app import modem, modem_smp
from loader import smp
from loader.os_group import OsGroup

BOARD = json.loads({board!r})
HEAD_END = ({head_end!r}, {host_port})


class Ctx:
    board = BOARD
    meter_id = "e2e-1"
    mode = "development"
    app_version = "0.0.0"

    def request_reset(self, force=False):
        pass


def notify(event):
    print("MODEM", event, m.pulses, m.failures)


async def main():
    global m
    m = modem.from_board(BOARD, notify)
    server = smp.Server()
    OsGroup(Ctx()).register(server)
    supervisor = asyncio.create_task(m.run())
    sock = await m.open(HEAD_END[0], HEAD_END[1], modem_smp.PORT)  # opened by the supervisor once registered
    udp = modem_smp.SmpOverUdp(server, sock)
    print("MODEM serving")
    await udp.run()
    await supervisor


m = None
asyncio.run(main())
while True:
    time.sleep(3600)
"""


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _console(emu) -> str:
    p = emu.state / "console.log"
    return p.read_text(errors="replace") if p.exists() else ""


def _wait_console(emu, pattern: str, after: int = 0, timeout: float = 60) -> int:
    """Wait for `pattern` on the console past offset `after`; the offset after the match."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = re.compile(pattern).search(_console(emu), after)
        if m:
            return m.end()
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not on the console:\n{_console(emu)[-3000:]}\n{emu.output()[-2000:]}")


def _echoes(meter: tuple, texts: list[str], timeout: float = 60) -> list[str]:
    """Each text echoed by the meter, through ota's link (params read at connect, echoes safe to repeat)."""
    _, url, buf_count = meter

    async def go() -> list[str]:
        out = []
        async with MeterLink(url, timeout=timeout) as link:
            # the loader's OS group answers over UDP with this transport's buffers, not the console's: the datagram
            # cap and the socket's receive slots (docs/smp-groups.md)
            assert await link.params() == (512, buf_count)
            for t in texts:
                rsp = await link.request(EchoWrite(d=t), "echo", retries=3)
                out.append(rsp.r)
        return out

    return asyncio.run(go())


def _echo_across(meter: tuple, text: str, action, timeout: float = 300) -> str:
    """An echo asked (the link's params read first) while `action()` is done (the host sends again until answered):
    the echo."""

    async def later() -> None:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(action)

    async def go() -> str:
        acting = asyncio.ensure_future(later())  # from the link's start: its connect reads params through it too
        async with MeterLink(meter[1], timeout=timeout) as link:
            rsp = await link.request(EchoWrite(d=text), "echo", retries=3)
        await acting
        return rsp.r

    return asyncio.run(go())


@pytest.fixture
def driver_meter(start_emulator, tmp_path):
    """A meter running the firmware's modem driver and SMP over UDP; (emu, link URL, the buf_count its OS group
    reports over UDP: the socket's two receive slots on every board, docs/smp-groups.md)."""

    def start(board: str, seed: int = 5, head_end: str = "127.0.0.1", port: int | None = None,
              program: str = PROGRAM):
        """`head_end`, `port`: the address and port the meter's socket answers (this computer's UDP port, or a
        field modem's address and the local port its socket opens); `program`: boot.py, formatted as PROGRAM."""
        port = port or _free_udp_port()
        fw = tmp_path / "firmware"
        shutil.copytree(ROOT / "firmware", fw)
        # this tree's app ships the driver the real app does not start yet (modules.json "not_started")
        spec = json.loads((fw / "app" / "modules.json").read_text())
        spec["not_started"] = []
        (fw / "app" / "modules.json").write_text(json.dumps(spec))
        (fw / "boot.py").write_text(program.format(board=json.dumps(load_board(board)), head_end=head_end,
                                                   host_port=port))
        emu = start_emulator(board, speed="max", seed=seed, args=("--modem", "--firmware", str(fw)))
        udp = emu.endpoints["udp"]
        _wait_console(emu, "MODEM up")
        return emu, f"udp://{udp['address']}:{udp['port']}?from={port}", 2

    return start


@pytest.mark.parametrize("board", ["esp32_devkitc", "rpi_pico"])
def test_the_driver_serves_smp_over_udp_and_recovers_a_wedged_module_and_a_denial(driver_meter, board):
    meter = driver_meter(board)
    emu = meter[0]
    # no link model
    # the largest: a 498-character echo is a 512-byte SMP frame each way, the BC660K datagram cap
    assert _echoes(meter, ["a", "b" * 498]) == ["a", "b" * 498]
    st = emu.status()["device"]["modem"]
    assert st["state"] == "on" and st["sockets"] == [0] and st["dropped_rx"] == 0
    # `ota echo` as a field engineer runs it, over the same link (`ota info` also reads the update group, which
    # this test's server does not have)
    r = subprocess.run(
        [str(Path(sys.executable).parent / "ota"), "echo", "--port", meter[1], "--timeout", "30", "--json", "cli"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and json.loads(r.stdout) == {"ok": True, "echo": "cli"}, r.stdout + r.stderr
    # nb2-good, its own loss included: an idle radio reconnects, a lost datagram is sent again
    emu.set(link__profile="nb2-good")
    emu.ctl("time", "--advance", "30")
    assert _echoes(meter, [f"nb2-{i}" for i in range(5)]) == [f"nb2-{i}" for i in range(5)]
    assert emu.status()["device"]["modem"]["reconnects"] >= 1
    # the module stops answering: the driver's keep-alive finds it silent, pulses the power key, brings it back
    con = len(_console(emu))
    emu.ctl("modem", "wedge")
    # an echo asked now is answered once the driver has the module back (the host sends it again meanwhile)
    assert _echoes(meter, ["during-wedge"], timeout=300) == ["during-wedge"]
    at = _wait_console(emu, r"MODEM silent", con)
    at = _wait_console(emu, r"MODEM pulsed 1", at)
    at = _wait_console(emu, r"MODEM restarted", at)
    at = _wait_console(emu, r"MODEM up", at)
    assert emu.status()["device"]["modem"]["state"] == "on"
    assert _echoes(meter, ["after-wedge"]) == ["after-wedge"]
    # the network denies registration: the socket closes, the driver says so; allowed again, the link comes back
    con = len(_console(emu))
    emu.ctl("modem", "deny")
    at = _wait_console(emu, r"MODEM lost", con)
    at = _wait_console(emu, r"MODEM denied", at)
    assert emu.status()["device"]["modem"]["stat"] == 3
    # an echo asked while denied is answered once the network allows the module again
    assert _echo_across(meter, "across-denial", lambda: emu.ctl("modem", "allow")) == "across-denial"
    _wait_console(emu, r"MODEM up", at)
    assert _echoes(meter, ["after-denial"]) == ["after-denial"]


def test_echoes_through_nb1_good_come_back_after_a_link_outage(driver_meter):
    meter = driver_meter("esp32_devkitc", seed=11)
    emu = meter[0]
    emu.set(link__profile="nb1-good")
    assert _echoes(meter, [f"before-{i}" for i in range(3)]) == [f"before-{i}" for i in range(3)]

    async def series() -> list[str]:
        """Echoes one after another over one link while the radio loses everything for 20 s of device time."""
        out = []
        async with MeterLink(meter[1], timeout=120) as link:
            for i in range(6):
                if i == 2:
                    emu.set(link__loss=1)
                    emu.ctl("time", "--advance", "20")
                    # the request goes out into the outage; the link comes back while the host retransmits
                    waiting = asyncio.ensure_future(link.request(EchoWrite(d=f"during-{i}"), "echo", retries=3))
                    await asyncio.sleep(0.5)
                    emu.set(link__loss=0)
                    out.append((await waiting).r)
                    continue
                out.append((await link.request(EchoWrite(d=f"series-{i}"), "echo", retries=3)).r)
            out.append(str(link._transport.retransmissions >= 1))
        return out

    assert asyncio.run(series()) == ["series-0", "series-1", "during-2", "series-3", "series-4", "series-5", "True"]
    st = emu.status()["device"]["modem"]
    assert st["state"] == "on" and st["stat"] == 1 and st["stats"]["lost"] >= 1
