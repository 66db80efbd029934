"""Report (MicroPython VM, no emulator): the RAM the DLMS layers (firmware/app/hdlc.py, app/cosem.py) cost beyond
their import (`python -m host_tests.bench.module_ram` has that): the objects a port keeps while it serves (a deframer,
a link and an association at the default 128-byte information field and 512-byte APDU), and what one client session
allocates: SNRM, AARQ, GETs of a register's value and scaler, RLRQ, DISC, as a real client (gurux-dlms 1.0.203)
sends them, with the collector off so every byte allocated is counted, and the bytes each way (the line time at
9600 baud 8N1: what the session costs on an optical probe, turnarounds aside). Compare: the SMP serial console's decoder
and server (smp_serial.Decoder at the console's BUF_SIZE, loader.smp.Server). Then a session through the port itself
(app/dlms_port.py: its module, the three layers and their objects, as a meter loads them at a client's first flag):
the heap it holds while in, and what stays on the heap after it ends (its modules forgotten; MicroPython never frees
interned names, so the first session leaves those). And the same through the UDP wrapper (app/dlms_wrapper.py
WrapperPort, as the network's task starts it at a datagram on port 4059): AARQ, a GET, RLRQ.

Usage: python -m host_tests.bench.dlms_ram [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"

SCRIPT = r"""
import gc, sys
sys.path[:0] = [%(fw)r, %(lib)r]
from app import hdlc, cosem
import smp_serial
from loader import smp
SNRM = bytes.fromhex("7ea0070321930f017e")
AARQ = bytes.fromhex("7ea02b032110fbafe6e600601da109060760857405080101be10040e01000000065f1f0400401e5dffff91237e")
V = cosem.obis("1.0.12.7.0.255")
VAL = cosem.number(cosem.LONG_UNSIGNED, 23012)
SU = cosem.scaler_unit(-2, 35)
def model(cls, obis, attr, access, client):
    if cls == 3 and obis == V:
        return VAL if attr == 2 else SU
    return cosem.OBJECT_UNDEFINED
def frame(buf, control, info):
    n = hdlc.encode(buf, 1, 1, 16, 1, control, info)
    return bytes(buf[:n])
scratch = bytearray(64)
session = [SNRM, AARQ]
ns = 1
for k in range(20):
    get = b"\xe6\xe6\x00\xc0\x01\xc1\x00\x03" + V + (b"\x02" if k %% 2 else b"\x03") + b"\x00"
    session.append(frame(scratch, (ns << 1) | 0x10 | (((ns + 0) & 7) << 5), get))
    ns = (ns + 1) & 7
session.append(frame(scratch, (ns << 1) | 0x10 | (ns << 5), b"\xe6\xe6\x00\x62\x00"))
session.append(frame(scratch, 0x53, None))
gc.collect()
a = gc.mem_free()
assoc = cosem.Association(model)
link = hdlc.Link(1, 1, assoc.apdu)
link.on_disconnect = assoc.release
d = hdlc.Deframer()
answers = []
sent = [0]
def on(f):
    r = link.receive(f, 0)
    answers.append(r is not None)
    if r is not None:
        sent[0] += len(r)
d.on_frame = on
gc.collect()
objects = a - gc.mem_free()
gc.collect()
gc.disable()
before = gc.mem_alloc()
for fr in session:
    d.feed(fr)
allocated = gc.mem_alloc() - before
gc.enable()
ok = answers.count(True) == len(session) and assoc.refused == 0 and link.state == hdlc.DISCONNECTED
gc.collect()
b = gc.mem_free()
dec = smp_serial.Decoder(smp.BUF_SIZE)
srv = smp.Server()
gc.collect()
smp_objects = b - gc.mem_free()
print("RESULT", objects, allocated, len(session), 1 if ok else 0, smp_objects, sum(len(x) for x in session), sent[0])
"""

SESSION = r"""
import gc, sys
sys.path[:0] = [%(fw)r, %(lib)r, %(tests)r]
import fwtest
import loader
from app import console
class Line:  # counts the answers; keeping them (fwtest.Line) would show as heap left behind
    def __init__(self):
        self.out = 0
    def write(self, b):
        self.out += 1
        return len(b)
line = Line()
parts = fwtest.meter_parts()
buf = bytearray(64)
FRAMES = [bytes.fromhex(h) for h in ("7ea0070321930f017e",
          "7ea02b032110fbafe6e600601da109060760857405080101be10040e01000000065f1f0400401e5dffff91237e",
          "7ea00703215303c77e")]
def session():
    from app import dlms_port
    p = dlms_port.OpticalPort(*parts, line, buf)
    for f in FRAMES:
        p.buf[:len(f)] = f
        p.feed(len(f))
    return p
""" + "SESSIONS = ('SESSION', line, 'app.hdlc')\n"

WRAPPER = r"""
import gc, sys
sys.path[:0] = [%(fw)r, %(lib)r, %(tests)r]
import fwtest
import loader
from app import console  # (a meter has it: the console's task; app/dlms_port.py imports from it)
class Sock:  # counts the answers; keeping them would show as heap left behind
    def __init__(self):
        self.modem = fwtest._Parts()
        self.modem.max_datagram = 512
        self.out = 0
    async def send(self, data, n=-1):
        self.out += 1
sock = Sock()
parts = fwtest.meter_parts()
REQS = [fwtest.wrap(a) for a in (fwtest.AARQ_PUBLIC, bytes.fromhex("c001c1000301000c0700ff0200"), b"\x62\x00")]
def run(coro):
    try:
        coro.send(None)
    except StopIteration:
        pass
def session():
    from app import dlms_wrapper
    p = dlms_wrapper.WrapperPort(*parts, sock)
    for r in REQS:
        run(p.answer(memoryview(r)))
    return p
""" + "SESSIONS = ('WRAPPER', sock, 'app.cosem')\n"

OBJECT_LIST = r"""
import gc, sys
sys.path[:0] = [%(fw)r, %(lib)r, %(tests)r]
import fwtest
from app import cosem, dsp, registers, dlms_objects
from app.tick import Tick
import app.dlms_profiles as profiles
tick = Tick(dsp.Reading(), registers.Registers())
objects = dlms_objects.Objects(tick, fwtest.disconnect_control(), b"MKT0000000000042", lambda: 330, period=lambda: 900)
a = cosem.Association(objects.get)
assert a.apdu(fwtest.AARQ_PUBLIC)[0] == 0x61
import app.dlms_profiles
sys.modules["app.dlms_profiles"] = profiles
gc.collect()
base = gc.mem_free()
r = a.apdu(b"\xc0\x01\xc1\x00\x0f\x00\x00\x28\x00\x00\xff\x02\x00")
blocks, held, total = 1, 0, 0
while True:
    gc.collect()
    held = max(held, base - gc.mem_free())
    total += len(r)
    if r[1] != 2 or r[3]:
        break
    r = a.apdu(b"\xc0\x02\xc1" + r[4:8])
    blocks += 1
print("OBJECT_LIST", blocks, total, held, 1 if r[1] == 2 and r[3] and r[8] == 0 else 0)
"""

# Two sessions one after the other (the port's script gives session(): a port that has served its requests): the heap
# each holds before its close, and what the heap keeps after each (the names the first interns), then the answers,
# the releasers left registered and whether the layers' first module is still loaded.
MEASURE = r"""
def held():
    p = session()
    gc.collect()
    inside = base - gc.mem_free()
    p.close()
    return inside
gc.collect()
base = gc.mem_free()
first = held()
gc.collect()
left1 = base - gc.mem_free()
second = held()
gc.collect()
left2 = base - gc.mem_free()
print(SESSIONS[0], first, left1, second, left2, SESSIONS[1].out, len(parts[0].server.releasers),
      1 if SESSIONS[2] in sys.modules else 0)
"""


def _vm(code: str, tag: str) -> list[int]:
    """Run `code` in the MicroPython VM (320 KB heap: the fixture supply imports the credit store and load limit, as a meter has them): the numbers of its output line that starts with `tag`."""
    vm = Path(sys.executable).with_name("micropython")
    p = subprocess.run([str(vm), "-X", "heapsize=320K", "-c", code], capture_output=True, text=True, timeout=120,
                       env={"MICROPYPATH": ".frozen"})
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith(tag)), None)
    if p.returncode or line is None:
        raise RuntimeError(p.stdout + p.stderr)
    return [int(x) for x in line.split()[1:]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    paths = {"fw": str(FIRMWARE), "lib": str(FIRMWARE / "lib"), "tests": str(ROOT / "host_tests" / "firmware")}
    try:
        objects, allocated, frames, ok, smp_objects, bytes_in, bytes_out = _vm(SCRIPT % paths, "RESULT")
        inside1, left1, inside2, left2, answers, releasers, layers_left = _vm((SESSION + MEASURE) % paths, "SESSION")
        w_in1, w_left1, w_in2, w_left2, w_answers, w_releasers, w_layers = _vm((WRAPPER + MEASURE) % paths, "WRAPPER")
        ol_blocks, ol_bytes, ol_held, ol_ok = _vm(OBJECT_LIST % paths, "OBJECT_LIST")
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 1
    ok = ok and answers == 6 and releasers == 0 and layers_left == 0
    ok = ok and w_answers == 6 and w_releasers == 0 and w_layers == 0 and ol_ok
    res = {"objects_vm_bytes": objects, "objects_board_estimate": objects // 2, "session_frames": frames,
           "session_allocated_vm_bytes": allocated, "per_frame_vm_bytes": round(allocated / frames),
           "session_ok": bool(ok), "smp_console_objects_vm_bytes": smp_objects,
           "session_bytes_to_meter": bytes_in, "session_bytes_from_meter": bytes_out,
           "session_line_seconds_at_9600": round((bytes_in + bytes_out) * 10 / 9600, 2),
           "port_session_held_vm_bytes": inside1, "port_session_held_board_estimate": inside1 // 2,
           "left_after_first_session_vm_bytes": left1, "port_second_session_held_vm_bytes": inside2,
           "left_after_second_session_vm_bytes": left2,
           "wrapper_session_held_vm_bytes": w_in1, "wrapper_session_held_board_estimate": w_in1 // 2,
           "wrapper_left_after_first_session_vm_bytes": w_left1, "wrapper_second_session_held_vm_bytes": w_in2,
           "wrapper_left_after_second_session_vm_bytes": w_left2,
           "object_list_blocks": ol_blocks, "object_list_answer_bytes": ol_bytes,
           "object_list_held_vm_bytes": ol_held}
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for k, v in res.items():
            print(f"{k:38} {v}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
