"""The emulator's halt (emulator/device/_emu_bus.py) in the real MicroPython VM, on a heap the firmware has filled: a
board's reset never fails for want of heap, so neither may the message that tells the host of it. A reset once
raised MemoryError there (595 bytes of JSON on an ESP32 heap in pieces) and the meter never reset: `ota push` waited
240 s for the reboot of an install."""

from __future__ import annotations

import json
from pathlib import Path

from host_tests import vm_script

BUS = Path(__file__).resolve().parents[2] / "emulator" / "device" / "_emu_bus.py"

SCRIPT = """
import gc, json
ns = {"__name__": "_emu_bus"}
exec(open(%(bus)r).read(), ns)


class Wire:  # the host's end: what the halt sent, in a buffer taken before the heap is full
    def __init__(self):
        self.buf = bytearray(4096)
        self.n = 0

    def send(self, b):  # byte by byte: a slice would take heap, which the test has filled
        i = 0
        k = len(b)
        while i < k:
            self.buf[self.n] = b[i]
            self.n += 1
            i += 1
        return k

    def setblocking(self, on):
        pass

    def readinto(self, b):
        return 0  # the host ends the VM: the halt's wait sees the line close


wire = Wire()
ns["_sock"] = wire
ns["keep_spare"](%(room)d)
ns["halt_hooks"].append(lambda msg: msg.update(truth="x" * %(extra)d))  # the hooks' extras
code = None
msg = {"t": "reset", "cause": "hard"}  # the firmware's reset asks with this, made before the heap is full
gc.collect()
head = None
%(fill)s
try:
    ns["halt"](msg)
except SystemExit as e:
    code = e.args[0] if e.args else 0
head = None
gc.collect()
lines = [ln for ln in bytes(wire.buf[:wire.n]).split(b"\\n") if ln]
print("OUT " + json.dumps({"exit": code, "lines": [ln.decode() for ln in lines]}))
"""


def _run(tmp_path: Path, room: int, pieces: tuple[int, ...], extra: int = 560) -> dict:
    out = vm_script.run(tmp_path, SCRIPT % {"bus": str(BUS), "room": room, "fill": vm_script.FILL % (pieces,),
                                            "extra": extra})
    out["messages"] = []
    for ln in out["lines"]:
        try:
            out["messages"].append(json.loads(ln))
        except ValueError:  # a line cut short: the host drops it (emulator/bus.py)
            pass
    return out


def test_with_the_shims_room_the_whole_halt_goes(tmp_path):
    out = _run(tmp_path, 4096, (1024, 256, 64, 16))
    assert out["exit"] == 3  # the halt's wait saw the host end it: the reset happened
    assert out["messages"][-1]["t"] == "reset" and out["messages"][-1]["truth"] == "x" * 560


def test_without_room_the_bare_halt_goes(tmp_path):
    # extras of 20 KB on a heap whose holes are under 4 KB: they cannot go, the bare halt can
    out = _run(tmp_path, 0, (4096,), extra=20000)
    assert out["exit"] == 3
    assert out["messages"][-1] == {"t": "reset", "cause": "hard"}


def test_with_no_heap_at_all_the_vm_ends_and_the_host_takes_it_as_a_reset(tmp_path):
    out = _run(tmp_path, 0, (1024, 256, 64, 16))
    assert out["exit"] in (3, 4)  # the bare halt went (3) or the VM ended (4): never a MemoryError into the firmware
