"""Report (issue 4): power cuts during a whole `ota push --test` in the emulator (the real MicroPython VM and its
littlefs on the emulated NOR flash), at every K-th flash operation of the update — upload, verification, state
write, the install at the next boot, the test boot and the app's confirm — clean or torn. Each point starts a fresh
emulated meter; after power returns it must run a valid signed app (old or new, the loader checks every file
against the slot's manifest before importing it) without a reformat, and rerunning the push must end with the new
app confirmed. The CPython sweep (power_cut_sweep) covers every point far faster; this one proves the real stack.

Usage: python -m host_tests.bench.power_cut_vm [--board B ...] [--stride K] [--torn N] [--json out.json]"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from host_tests.emu import BIN, Emulator, cut_during_push

ROOT = Path(__file__).resolve().parents[2]
DEV_IMAGE_KEY = ROOT / "keys" / "dev" / "image-DEVELOPMENT-ONLY-ed25519.pem"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", action="append", dest="boards")
    ap.add_argument("--stride", type=int, default=10)
    ap.add_argument("--torn", type=int, default=0)
    ap.add_argument("--last", type=int, default=140, help="The last operation to cut at.")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    rows = []
    failures = 0
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        for board in args.boards or ["rpi_pico", "esp32_devkitc"]:
            img = tmp / f"{board}.img"
            subprocess.run([str(BIN / "ota"), "build", str(ROOT / "firmware"), "--board", board, "--version",
                            "1.5.0", "--security-counter", "1", "--key", str(DEV_IMAGE_KEY), "-o", str(img)],
                           check=True, capture_output=True)
            for k in range(1, args.last + 1, args.stride):
                t0 = time.monotonic()
                emu = Emulator(tmp / f"{board}-{k}", board=board)
                try:
                    r = cut_during_push(emu, img, "0.1.0", "1.5.0", k, args.torn)
                    r["ok"] = True
                except AssertionError as e:
                    r = {"at_write": k, "torn": args.torn, "ok": False, "error": str(e)}
                    failures += 1
                finally:
                    emu.stop()
                r.update(board=board, seconds=round(time.monotonic() - t0, 1))
                rows.append(r)
                print(json.dumps(r), flush=True)
    result = {"machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
              "date": time.strftime("%Y-%m-%d"), "stride": args.stride, "rows": rows}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
