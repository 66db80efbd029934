"""The field engineer's modem (`meter-emu modem`, emulator/field_modem.py): BG95-dialect AT on a pty, "UDP SERVICE"
sockets on its own loopback address; alone against a host socket, and end to end with an emulated meter whose VM
program echoes through the meter's module."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from emulator import radio

from .test_modem_e2e import PROGRAM, _wait_console

BIN = Path(sys.executable).parent


class AT:
    """An engineer's terminal on the modem's pty."""

    def __init__(self, path: str):
        self.port = serial.Serial(path, 115200, timeout=0.1, exclusive=True)
        self.buf = b""

    def _fill(self) -> None:
        self.buf += self.port.read(4096)

    def wait_for(self, text: bytes, timeout: float = 10) -> bytes:
        end = time.monotonic() + timeout
        while text not in self.buf:
            if time.monotonic() > end:
                raise AssertionError(f"{text!r} never came; got {self.buf!r}")
            self._fill()
        i = self.buf.index(text) + len(text)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def cmd(self, c: str, until: bytes = b"OK\r\n", timeout: float = 10) -> str:
        return self.raw(c, until, timeout).decode(errors="replace")

    def raw(self, c: str, until: bytes = b"OK\r\n", timeout: float = 10) -> bytes:
        self.port.write(c.encode() + b"\r")
        return self.wait_for(until, timeout)

    def result(self, c: str, timeout: float = 10) -> str:
        """The command's final result line (OK, ERROR, +CME ERROR: n)."""
        self.port.write(c.encode() + b"\r")
        end = time.monotonic() + timeout
        while True:
            for ln in self.buf.split(b"\r\n"):
                if ln in (b"OK", b"ERROR") or ln.startswith(b"+CME ERROR"):
                    self.buf = self.buf[self.buf.index(ln) + len(ln) :]
                    return ln.decode()
            if time.monotonic() > end:
                raise AssertionError(f"no result for {c!r}: {self.buf!r}")
            self._fill()


@pytest.fixture
def field_modem(tmp_path):
    procs = []

    def start(name: str = "fm", *args: str) -> tuple[AT, dict]:
        state = tmp_path / name
        p = subprocess.Popen(
            [str(BIN / "meter-emu"), "modem", "--state", str(state), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(p)
        line = p.stdout.readline()
        assert line.startswith("modem: /dev/pts/"), line + p.stderr.read()
        eps = json.loads((state / "endpoints.json").read_text())
        assert line.split()[1] == eps["modem"] and line.split()[3] == eps["address"]
        at = AT(eps["modem"])
        at.wait_for(b"RDY")
        at.cmd("ATE0")
        at.cmd("AT+CMEE=1")
        end = time.monotonic() + 10
        while "+CEREG: 0,1" not in at.cmd("AT+CEREG?"):
            assert time.monotonic() < end
            time.sleep(0.1)
        assert at.cmd("AT+QIACT=1").endswith("OK\r\n")
        assert f'+QIACT: 1,1,1,"{eps["address"]}"' in at.cmd("AT+QIACT?")
        return at, eps

    yield start
    for p in procs:
        p.terminate()
        p.wait(10)


def test_udp_service_send_receive_and_errors(field_modem):
    at, eps = field_modem()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(10)
    try:
        assert at.result('AT+QIOPEN=1,0,"UDP","127.0.0.1",9,0,0') == "+CME ERROR: 552"
        assert "+QIOPEN: 0,0" in at.cmd('AT+QIOPEN=1,0,"UDP SERVICE","127.0.0.1",0,0,0', b"+QIOPEN: 0,0\r\n")
        assert at.result('AT+QIOPEN=1,0,"UDP SERVICE","127.0.0.1",0,0,0') == "+CME ERROR: 563"
        assert at.result('AT+QISEND=0,1461,"127.0.0.1",9') == "+CME ERROR: 50"
        assert at.result("AT+QIRD=3") == "+CME ERROR: 552"
        at.port.write(f'AT+QISEND=0,6,"127.0.0.1",{peer.getsockname()[1]}\r'.encode())
        at.wait_for(b"> ")
        at.port.write(b"he\r\nl\x00")  # raw bytes after the prompt, CR and LF included
        at.wait_for(b"SEND OK\r\n")
        data, src = peer.recvfrom(2048)
        assert data == b"he\r\nl\x00" and src[0] == eps["address"]
        peer.sendto(b"\x00\xffreply", src)
        at.wait_for(b'+QIURC: "recv",0\r\n')
        got = at.raw("AT+QIRD=0")
        assert got == f'\r\n+QIRD: 7,"127.0.0.1",{peer.getsockname()[1]}\r\n'.encode() + b"\x00\xffreply\r\n\r\nOK\r\n"
        assert "+QIRD: 0" in at.cmd("AT+QIRD=0")
        assert at.cmd("AT+QICLOSE=0").endswith("OK\r\n")
    finally:
        peer.close()
        at.port.close()


def test_a_field_modem_reaches_an_emulated_meter_through_its_module(field_modem, start_emulator, tmp_path):
    """The radio network between them: the engineer's modem sends to the meter's address:1337; the meter's program
    (through its BC660K module and the nb1-good link) answers to the modem's address and port."""
    fm_address = radio.meter_address(tmp_path / "fm")
    fw = tmp_path / "firmware"
    import shutil

    from meterkit.boards import load_board

    shutil.copytree(Path(__file__).resolve().parents[2] / "firmware", fw)
    modem = load_board("rpi_pico")["uarts"]["modem"]
    program = PROGRAM.format(modem=json.dumps(modem), host_port=40555).replace('"127.0.0.1"', f'"{fm_address}"')
    (fw / "boot.py").write_text(program)
    emu = start_emulator("rpi_pico", speed="max", seed=5, args=("--modem", "--firmware", str(fw)))
    _wait_console(emu, "RESULT READY")
    emu.set(link__profile="nb1-good", link__loss=0)
    at, eps = field_modem("fm")
    assert eps["address"] == fm_address
    assert "+QIOPEN: 0,0" in at.cmd('AT+QIOPEN=1,0,"UDP SERVICE","127.0.0.1",0,40555,0', b"+QIOPEN: 0,0\r\n")
    meter = emu.endpoints["udp"]
    at.port.write(f'AT+QISEND=0,4,"{meter["address"]}",1337\r'.encode())
    at.wait_for(b"> ")
    at.port.write(b"smp!")
    at.wait_for(b"SEND OK\r\n")
    at.wait_for(b'+QIURC: "recv",0\r\n', timeout=60)
    got = at.cmd("AT+QIRD=0")
    assert got == f'\r\n+QIRD: 9,"{meter["address"]}",1337\r\necho:smp!\r\n\r\nOK\r\n'
    at.port.close()
