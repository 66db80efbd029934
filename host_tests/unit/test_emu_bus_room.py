"""The emulator's bus module (emulator/device/_emu_bus.py) in the real MicroPython VM: the shims' run-time room.
A shim's work at run time allocates in the heap the firmware shares; when a long-running firmware has left no hole
for it, the room is given up for that message and taken back, and a need beyond the room drops the message rather
than raising into the firmware."""

from __future__ import annotations

from pathlib import Path

from host_tests import vm_script

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
%(fill)s
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
    # the reply needs more than any piece of the filled heap holds
    fill = vm_script.FILL % ((1024, 256, 64, 16),)
    return vm_script.run(tmp_path, SCRIPT % {"bus": str(BUS), "room": room, "fill": fill})


def test_a_shim_reply_the_fragmented_heap_cannot_hold_uses_the_room_and_gives_it_back(tmp_path):
    assert _run(tmp_path, 8192) == {"served": True, "dropped": True, "raised": False, "room": [8192]}


def test_without_the_room_the_reply_is_dropped_not_raised_into_the_firmware(tmp_path):
    assert _run(tmp_path, 0) == {"served": False, "dropped": True, "raised": False, "room": [0]}
