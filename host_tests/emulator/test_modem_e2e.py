"""The meter's NB-IoT module end to end in a running meter-emu: a small MicroPython program in the board's VM (a
firmware tree whose boot.py is the program: the least invasive real way to run code there, see docs/emulator.md)
talks AT to the module over uarts.modem with asyncio streams, registers, opens a UDP socket on port 1337 and echoes
what a host socket sends to the meter's own loopback address, through the link model, at --speed max."""

from __future__ import annotations

import json
import re
import shutil
import socket
import time
from pathlib import Path

import pytest

from emulator import radio
from meterkit.boards import load_board

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = r"""
import asyncio
import machine
import time

MODEM = {modem}
HOST_PORT = {host_port}


async def main():
    u = machine.UART(MODEM["id"], baudrate=MODEM["baud"], tx=MODEM["tx"], rx=MODEM["rx"], rxbuf=2048)
    r = asyncio.StreamReader(u)
    w = asyncio.StreamWriter(u, {{}})

    async def line():
        while True:
            s = (await r.readline()).strip()
            if s:
                return s.decode()

    urcs = []

    async def cmd(c):
        w.write(c.encode() + b"\r")
        await w.drain()
        out = []
        while True:
            s = await line()
            if s.startswith('+QIURC: "recv"'):
                urcs.append(s)  # a datagram that came during the command: handled after it
                continue
            out.append(s)
            if s in ("OK", "ERROR", "SEND OK", "SEND FAIL") or s.startswith("+CME ERROR"):
                return out

    print("RESULT first", await line())
    for c in ("ATE0", "AT+CMEE=1", "AT+CEREG=1"):
        print("RESULT", c, await cmd(c))
    while not (await line()).startswith("+CEREG: 1"):
        pass
    print("RESULT addr", await cmd("AT+CGPADDR=0"))
    print("RESULT fmt", await cmd('AT+QICFG="dataformat",1,1'))
    print("RESULT open", await cmd('AT+QIOPEN=0,0,"UDP","127.0.0.1",%d,1337,1' % HOST_PORT))
    print("RESULT opened", await line())
    print("RESULT READY")
    while True:
        s = urcs.pop(0) if urcs else await line()
        print("RESULT line", s)
        if s.startswith('+QIURC: "recv",0,'):
            data = bytes.fromhex(s.split(",")[3].strip('"'))
            reply = b"echo:" + data
            print("RESULT send", await cmd('AT+QISEND=0,%d,"%s"' % (len(reply), reply.hex())))


asyncio.run(main())
while True:
    time.sleep(3600)
"""


def _console(emu) -> str:
    p = emu.state / "console.log"
    return p.read_text(errors="replace") if p.exists() else ""


def _wait_console(emu, pattern: str, timeout: float = 60) -> re.Match:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = re.search(pattern, _console(emu))
        if m:
            return m
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not on the console:\n{_console(emu)[-3000:]}\n{emu.output()[-2000:]}")


def _exchange(host: socket.socket, addr: tuple[str, int], payload: bytes, timeout: float = 60) -> tuple[bytes, tuple]:
    host.sendto(payload, addr)
    host.settimeout(timeout)
    return host.recvfrom(2048)


@pytest.fixture
def program_firmware(tmp_path):
    def make(board_id: str, host_port: int) -> Path:
        fw = tmp_path / "firmware"
        shutil.copytree(ROOT / "firmware", fw)
        modem = load_board(board_id)["uarts"]["modem"]
        (fw / "boot.py").write_text(PROGRAM.format(modem=json.dumps(modem), host_port=host_port))
        return fw

    return make


@pytest.mark.parametrize("board", ["esp32_devkitc", "rpi_pico"])
def test_a_vm_program_talks_at_and_exchanges_datagrams_with_the_host(start_emulator, program_firmware, board):
    host = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    host.bind(("127.0.0.1", 0))
    try:
        fw = program_firmware(board, host.getsockname()[1])
        emu = start_emulator(board, speed="max", seed=3, args=("--modem", "--firmware", str(fw)))
        udp = emu.endpoints["udp"]
        assert udp["port"] == 1337 and udp["address"].startswith("127.") and udp["address"] != "127.0.0.1"
        _wait_console(emu, "RESULT READY")
        con = _console(emu)
        assert "RESULT first RDY" in con
        assert f"RESULT addr ['+CGPADDR: 0,\"{udp['address']}\"', 'OK']" in con
        assert "RESULT opened +QIOPEN: 0,0" in con
        meter = (udp["address"], 1337)
        # no link model: the datagram comes back from the meter's own address and port
        data, src = _exchange(host, meter, b"ping-1")
        assert data == b"echo:ping-1" and src == meter
        # binary-safe both ways
        data, src = _exchange(host, meter, bytes(range(256)))
        assert data == b"echo:" + bytes(range(256))
        # through nb2-good: an idle radio reconnects, the datagram still comes back (at --speed max the link's
        # seconds of device time cost no wall time)
        emu.set(link__profile="nb2-good", link__loss=0)
        emu.ctl("time", "--advance", "30")  # 30 s without traffic: the radio has gone idle
        data, src = _exchange(host, meter, b"ping-2")
        assert data == b"echo:ping-2" and src == meter
        st = emu.status()["device"]["modem"]
        assert st["state"] == "on" and st["stat"] == 1 and st["reconnects"] >= 1
        assert st["stats"]["up"] == 3 and st["stats"]["down"] == 3
        assert st["link"]["down_kbps"] == 70 and st["link"]["loss"] == 0
        # a scenario step sets the link at its device time
        day = emu.state.parent / "day.json"
        day.write_text(json.dumps({"steps": [{"at": 0, "set": {"link.profile": "nb1-edge"}}]}))
        emu.scenario(day)
        emu.wait_status(lambda s: s["device"]["modem"]["link"]["up_kbps"] == 1, what="the scenario's link step")
        # the network denies registration: the socket closes and the module says so
        emu.ctl("modem", "deny")
        _wait_console(emu, r'RESULT line \+QIURC: "closed",0')
        _wait_console(emu, r"RESULT line \+CEREG: 3")
        assert emu.status()["device"]["modem"]["stat"] == 3
        emu.ctl("modem", "remove")
        st = emu.status()["device"]["modem"]
        assert st["present"] is False and st["state"] == "off"
    finally:
        host.close()


def test_a_meter_address_is_its_folders_and_moves_when_taken(tmp_path):
    a = radio.meter_address(tmp_path / "a")
    assert a == radio.meter_address(tmp_path / "a")  # the same folder, the same address
    assert a != radio.meter_address(tmp_path / "b")
    held = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    held.bind((a, radio.SMP_UDP_PORT))  # another meter (or anything else) holds ADDR:1337
    try:
        b = radio.meter_address(tmp_path / "a")
        assert b != a and b.startswith("127.")
    finally:
        held.close()
