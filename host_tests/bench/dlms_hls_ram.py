"""Report (MicroPython VM, no emulator): what IS 15959's utility association (client SAP 48, HLS-GMAC, every APDU
ciphered: app/dlms_hls.py over lib/gcm.py) costs beyond the public client's association (`dlms_ram`): the heap it
holds while associated (its modules and its security: the GCM key schedule, keys, titles, challenges), what each
ciphered GET and the ACTION allocate (the collector off, so every byte counts: the big-int garbage of GHASH), and
the time of each in the VM (a board is slower: compare, do not quote). The client is host_tests/firmware/
hls_client.py, in the same VM, made before the measure starts.

Usage: python -m host_tests.bench.dlms_hls_ram [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"

SCRIPT = r"""
import gc, os, sys, time
sys.path[:0] = [%(fw)r, %(lib)r, %(tests)r]
os.chdir(%(work)r)
os.mkdir("meter")
EK = bytes(range(16))
AK = bytes(range(16, 32))
with open("meter/dlms-keys.bin", "wb") as f:
    f.write(EK + AK + bytes(4))
from app import cosem
from hls_client import Client, aare_fields
V = cosem.obis("1.0.12.7.0.255")
VAL = cosem.number(cosem.LONG_UNSIGNED, 23012)
GET = bytes.fromhex("c001c1000301000c0700ff0200")
ACTION = bytes.fromhex("c301c1004600006003 0aff01010f00".replace(" ", ""))
def model(cls, obis, attr, access, client):
    return VAL if cls == 3 and obis == V and attr == 2 else cosem.OBJECT_UNDEFINED
def utility(title, ctos):
    from app import dlms_hls
    return dlms_hls.session("m-1", title, ctos)
cl = Client(EK, AK)
aarq = cl.aarq()
gc.collect()
base = gc.mem_free()
a = cosem.Association(model, hls=utility, act=lambda *x: 0)
gc.collect()
plain = base - gc.mem_free()
t0 = time.ticks_us()
stoc = aare_fields(a.apdu(aarq, 48))[0xAA][2:]
r = a.apdu(cl.pass3(stoc), 48)
t_assoc = time.ticks_diff(time.ticks_us(), t0)
ok = a.associated
gc.collect()
held = base - gc.mem_free()
first = cl.request(GET)  # (made in the order they go: each its next client counter)
act = cl.request(ACTION)
gets = [cl.request(GET) for _ in range(10)]
gc.collect()
gc.disable()
before = gc.mem_alloc()
ok = ok and a.apdu(first, 48)[0] == 0xCC
per_get = gc.mem_alloc() - before
gc.enable()
gc.collect()
gc.disable()
before = gc.mem_alloc()
ok = ok and a.apdu(act, 48)[0] == 0xCF
per_action = gc.mem_alloc() - before
gc.enable()
t0 = time.ticks_us()
for g in gets:
    ok = ok and a.apdu(g, 48)[0] == 0xCC
t_get = time.ticks_diff(time.ticks_us(), t0) // len(gets)
print("RESULT", plain, held, per_get, per_action, t_assoc, t_get, 1 if ok else 0)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    vm = Path(sys.executable).with_name("micropython")
    with tempfile.TemporaryDirectory() as work:
        code = SCRIPT % {"fw": str(FIRMWARE), "lib": str(FIRMWARE / "lib"), "tests": str(ROOT / "host_tests" / "firmware"),
                         "work": work}
        p = subprocess.run([str(vm), "-X", "heapsize=1M", "-c", code], capture_output=True, text=True, timeout=120,
                           env={"MICROPYPATH": ".frozen"})
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT")), None)
    if p.returncode or line is None:
        print(p.stdout + p.stderr, file=sys.stderr)
        return 1
    plain, held, per_get, per_action, t_assoc, t_get, ok = (int(x) for x in line.split()[1:])
    res = {"association_object_vm_bytes": plain, "held_while_associated_vm_bytes": held,
           "held_while_associated_board_estimate": held // 2, "allocated_per_ciphered_get_vm_bytes": per_get,
           "allocated_per_ciphered_action_vm_bytes": per_action, "vm_us_aarq_and_hls_passes": t_assoc,
           "vm_us_per_ciphered_get": t_get, "ok": bool(ok)}
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for k, v in res.items():
            print(f"{k:40} {v}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
