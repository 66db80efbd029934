"""The emulator's bus module (emulator/device/_emu_bus.py) in the real MicroPython VM: the shims' run-time room.
A shim's work at run time allocates in the heap the firmware shares; when a long-running firmware has left no hole
for it, the room is given up for that message and taken back, and a need beyond the room drops the message rather
than raising into the firmware."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BUS = Path(__file__).resolve().parents[2] / "emulator" / "device" / "_emu_bus.py"

SCRIPT = """
import gc, json
ns = {"__name__": "_emu_bus"}
exec(open(%(bus)r).read(), ns)
got = []
ns["on"]("query", lambda msg: got.append(bytearray(msg["n"])))  # a shim building its reply
ns["keep_spare"](%(room)d)
out = {"served": False, "dropped": False, "raised": False, "room": None}  # made before the heap is full
gc.collect()
head = None
for size in (1024, 256, 64, 16):  # the firmware's heap, in pieces too small for the reply
    try:
        while True:
            head = [bytearray(size), head]
    except MemoryError:
        pass
try:
    ns["_dispatch"](b'{"t": "query", "n": 3000}')
    out["served"] = len(got) == 1
    got.clear()
    ns["_dispatch"](b'{"t": "query", "n": 20000}')  # beyond the room
    out["dropped"] = not got
except MemoryError:
    out["raised"] = True
head = None
gc.collect()
ns["_dispatch"](b'{"t": "none"}')
out["room"] = [len(b) for b in ns["_spare"]]
print("OUT " + json.dumps(out))
"""


def _run(tmp_path: Path, room: int) -> dict:
    script = tmp_path / "t.py"
    script.write_text(SCRIPT % {"bus": str(BUS), "room": room})
    exe = Path(sys.executable).with_name("micropython")
    p = subprocess.run([str(exe), "-X", "heapsize=300000", str(script)], capture_output=True, text=True, timeout=60)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("OUT ")), None)
    assert p.returncode == 0 and line, p.stdout + p.stderr
    return json.loads(line[4:])


def test_a_shim_reply_the_fragmented_heap_cannot_hold_uses_the_room_and_gives_it_back(tmp_path):
    assert _run(tmp_path, 8192) == {"served": True, "dropped": True, "raised": False, "room": [8192]}


def test_without_the_room_the_reply_is_dropped_not_raised_into_the_firmware(tmp_path):
    assert _run(tmp_path, 0) == {"served": False, "dropped": True, "raised": False, "room": [0]}
