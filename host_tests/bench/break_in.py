"""Report (emulator): one Ctrl-C into a running development app, N times per board, as mpremote's first byte does.
Counts how each ended: at the REPL (as on a board), the VM dead with its heap locked (the SIGINT crash, see
docs/emulator.md "How a Ctrl-C reaches the firmware"), or no prompt within 5 s; and how the wire delivered the
interrupts (at a point, dropped, SIGINT). The board is reset between tries.

Usage: python -m host_tests.bench.break_in [--board B ...] [--tries N] [--speed S] [--json out.json]"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import serial

from host_tests.emu import Emulator, running


def tries(emu: Emulator, n: int, board: str) -> dict:
    row = {"board": board, "tries": n, "repl": 0, "heap_locked": 0, "no_prompt": 0}
    for i in range(n):
        end = time.monotonic() + 60
        while time.monotonic() < end and running(emu) is None:
            time.sleep(0.2)
        time.sleep(0.5 + (i % 5) * 0.4)  # into the app at different moments of its loop
        with serial.Serial(emu.console, 115200, timeout=0.1) as s:
            s.reset_input_buffer()
            s.write(b"\r\x03")
            buf = b""
            end = time.monotonic() + 5
            while time.monotonic() < end and b">>> " not in buf and b"heap is locked" not in buf:
                buf += s.read(4096)
        key = "heap_locked" if b"heap is locked" in buf else "repl" if b">>> " in buf else "no_prompt"
        row[key] += 1
        print(f"\r{board}: {i + 1}/{n}", end="", file=sys.stderr, flush=True)
        emu.ctl("reset")
    print(file=sys.stderr)
    row["vm_died"] = emu.output().count("the VM ended with status")
    row["interrupts"] = emu.ctl("status")["interrupts"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", action="append", dest="boards")
    ap.add_argument("--tries", type=int, default=40)
    ap.add_argument("--speed", default="max")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for board in args.boards or ["esp32_devkitc", "rpi_pico"]:
            t0 = time.monotonic()
            emu = Emulator(Path(tmp) / board, board=board, speed=args.speed)
            try:
                row = tries(emu, args.tries, board)
            finally:
                emu.stop()
            row["speed"] = args.speed
            row["seconds"] = round(time.monotonic() - t0, 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {"machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
              "date": time.strftime("%Y-%m-%d"), "rows": rows}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1))
    sys.exit(1 if any(r["heap_locked"] or r["no_prompt"] or r["vm_died"] for r in rows) else 0)


if __name__ == "__main__":
    main()
