"""Benchmark (issue 3): signed-image verification in the MicroPython VM under each board's heap — Ed25519 signature
check, SHA-256 of 100 kB and 500 kB images streamed from a file in 1 KB chunks, the bundle check, and the peak
extra heap. Usage: python -m host_tests.bench.image_verify [--json out.json]"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meterkit import layout
from meterkit.boards import load_board
from ota_tool import bundle, image, keys

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
BOARDS = ["esp32_devkitc", "rpi_pico"]
WORD_SCALE = 2  # the VM's object slots are twice a board's (see docs/ARCHITECTURE.md)

# The smallest heap in which imports + read + accept + bundle check succeed, found by bisection, minus the heap the
# imports alone leave allocated: the peak extra heap of a verification.
PEAK_SCRIPT = r"""
import gc, sys, os
from loader import image, bundle
gc.collect()
print("IMPORTED", gc.mem_alloc())
if sys.argv[3] != "-":
    trust = [{"key": bytes.fromhex(sys.argv[2]), "roles": ["image"], "dev": True}]
    with open(sys.argv[3], "rb") as f:
        i = image.read(f, os.stat(sys.argv[3])[6], 1 << 20)
        image.accept(i, trust, i["board"].decode(), 1, i["counter"], 16, True)
        bundle.check(f, i, 1 << 20)
print("OK")
"""

VM_SCRIPT = r"""
import gc, time, sys, json, os
from loader import image, bundle
trust = [{"key": bytes.fromhex(sys.argv[2]), "roles": ["image"], "dev": True}]
res = {}
def best(fn, n):
    t = []
    for _ in range(n):
        gc.collect()
        t0 = time.ticks_us(); fn(); t.append(time.ticks_diff(time.ticks_us(), t0))
    t.sort()
    return t[len(t) // 2] / 1000
import ed25519
info0 = None
for path in sys.argv[3:]:
    size = os.stat(path)[6]
    def rd():
        with open(path, "rb") as f:
            return image.read(f, size, 1 << 20)
    info = rd()
    res[path.rsplit("/", 1)[1] + "_hash_ms"] = best(rd, 5)
    res[path.rsplit("/", 1)[1] + "_bundle_ms"] = best(lambda: bundle.check(open(path, "rb"), info, 1 << 20), 3)
    info0 = info
res["signature_ms"] = best(lambda: ed25519.verify(trust[0]["key"], info0["digest"], info0["signature"]), 9)
res["heap_free_after"] = gc.mem_free()
print(json.dumps(res))
"""


def make_image(path: Path, size: int, key: Ed25519PrivateKey, board: str) -> None:
    files = [(f"app/m{i}.mpy", os.urandom(min(20000, size - i * 20000))) for i in range((size + 19999) // 20000)]
    payload = bundle.pack(files, board=board, version="1.0.0", loader_api=layout.loader_api(), security_counter=1)
    path.write_bytes(image.sign(image.unsigned_prefix(payload, image.Version.parse("1.0.0"), 1, board, 1), key))


def _run_peak(tmp: Path, env: dict, heap: int, pub: str, img: str) -> tuple[bool, int]:
    script = tmp / "peak.py"
    script.write_text(PEAK_SCRIPT)
    p = subprocess.run([str(Path(sys.executable).with_name("micropython")), "-X", f"heapsize={heap}", str(script),
                        "x", pub, img], capture_output=True, text=True, env=env, timeout=300)
    imported = next((int(line.split()[1]) for line in p.stdout.splitlines() if line.startswith("IMPORTED")), 0)
    return p.returncode == 0 and "OK" in p.stdout, imported


def peak_extra(tmp: Path, env: dict, key: Ed25519PrivateKey, img: str) -> int:
    pub = keys.raw(key.public_key()).hex()
    lo, hi = 4096, 1 << 20
    while hi - lo > 512:
        mid = (lo + hi) // 2
        if _run_peak(tmp, env, mid, pub, img)[0]:
            hi = mid
        else:
            lo = mid
    _, imported = _run_peak(tmp, env, 1 << 20, pub, "-")
    return hi - imported


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    key = Ed25519PrivateKey.generate()
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench_vm.py"
        script.write_text(VM_SCRIPT)
        for board in BOARDS:
            imgs = []
            for kb in (100, 500):
                p = Path(tmp) / f"img{kb}k"
                make_image(p, kb * 1000, key, board)
                imgs.append(str(p))
            heap = load_board(board)["heap_bytes"] * WORD_SCALE
            env = dict(os.environ, MICROPYPATH=f"{FIRMWARE / 'lib'}:{FIRMWARE}:.frozen")
            p = subprocess.run([str(Path(sys.executable).with_name("micropython")), "-X", f"heapsize={heap}",
                                str(script), "x", keys.raw(key.public_key()).hex(), *imgs],
                               capture_output=True, text=True, env=env, timeout=600)
            if p.returncode != 0:
                raise SystemExit(p.stdout + p.stderr)
            out[board] = {"vm_heap_bytes": heap, **json.loads(p.stdout.strip().splitlines()[-1])}
            out[board]["peak_extra_heap_vm_bytes"] = peak_extra(Path(tmp), env, key, imgs[1])
    print(json.dumps(out, indent=1))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
