"""The emulator's `select` shim (emulator/device/select.py) in the real MicroPython VM: a poll that holds a
non-descriptor object (an emulated UART) beside more real sockets than MicroPython's poll array starts with. The
VM's own poll re-points every entry when its descriptor array moves, a non-descriptor's NULL pointer too, and the
next poll() then read garbage: the VM died with SIGSEGV once a meter opened its fifth descriptor (the DLMS wrapper's
socket beside the SMP one, the bus and the DLMS line), and the board reset in a loop. The shim makes the array
large enough at the poll's start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BUS = """
import socket
config = {}
_s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
_s.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])
def sock():
    return _s
def idle():
    pass
def pump():
    pass
def take_interrupt():
    pass
def shim_work(fn, arg):
    fn(arg)
def on(kind, fn):
    pass
def send(msg):
    pass
"""

SCRIPT = """
import io, socket, select

class Uart(io.IOBase):  # no file descriptor: polled through its ioctl, as the emulated UARTs are
    def ioctl(self, req, arg):
        return 0 if req == 3 else -1

class Owner:  # the NB-IoT module's model: real sockets, polled by the shim beside the firmware's objects
    def __init__(self):
        self.socks = []
    def net_sockets(self):
        return self.socks
    def net_input(self, s):
        pass

class Sock:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])

owner = Owner()
select.net.append(owner)
p = select.poll()
p.register(Uart(), select.POLLIN)
keep = []
for i in range(COUNT):
    owner.socks.append(Sock())
    keep.append(bytearray(64))  # right after the array: it cannot grow in place
    assert p.poll(0) == []
print("polled", COUNT)
"""


def _run(tmp_path: Path, n: int) -> subprocess.CompletedProcess:
    (tmp_path / "_emu_bus.py").write_text(BUS)
    (tmp_path / "t.py").write_text(SCRIPT.replace("COUNT", str(n)))
    path = [str(tmp_path), str(ROOT / "host_tests" / "vm" / "emu_stubs"), str(ROOT / "emulator" / "device")]
    env = dict(os.environ, MEMU_CONFIG=os.devnull, MICROPYPATH=os.pathsep.join(path))
    exe = Path(sys.executable).with_name("micropython")
    return subprocess.run([str(exe), str(tmp_path / "t.py")], capture_output=True, text=True, env=env, timeout=60)


def test_a_poll_holds_a_uart_beside_many_sockets(tmp_path):
    p = _run(tmp_path, 12)
    assert p.returncode == 0 and "polled 12" in p.stdout, (p.returncode, p.stdout, p.stderr)


def test_more_sockets_than_the_poll_has_room_for_are_refused_not_a_crash(tmp_path):
    p = _run(tmp_path, 40)
    assert p.returncode == 1 and "room for" in p.stderr + p.stdout, (p.returncode, p.stdout, p.stderr)
