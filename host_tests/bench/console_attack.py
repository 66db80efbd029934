"""Report (security issue): one Ctrl-C on the console of a locked emulated meter at every one of N moments from the
start of boot.py through the loader and the app's start-up (half of them every millisecond from 0 ms, the rest
spread to 1.5 s), for each board and for a mode file that says locked and one that is garbage. After each: no Python
prompt appeared, the meter answers SMP, an unsigned erase is still refused. The e2e test runs 30 + 20 of these
moments per board; this runs them all.

Usage: python -m host_tests.bench.console_attack [--board B ...] [--points N] [--json out.json]"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from host_tests.console_attack import attempt, delays, set_mode_file
from host_tests.emu import Emulator

MODES = {"locked": b'{"mode": "locked"}', "garbage": b"\x00\xfe{mode: development"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", action="append", dest="boards")
    ap.add_argument("--points", type=int, default=200, help="Moments per board and mode file.")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    rows = []
    failures = []
    with tempfile.TemporaryDirectory() as tmp_:
        for board in args.boards or ["esp32_devkitc", "rpi_pico"]:
            for mode, content in MODES.items():
                t0 = time.monotonic()
                emu = Emulator(Path(tmp_) / f"{board}-{mode}", board=board)
                row = {"board": board, "mode_file": mode, "points": 0, "interrupted": 0, "extra_resets": 0}
                try:
                    set_mode_file(emu, content)
                    for k, ms in enumerate(delays(args.points)):
                        try:
                            r = attempt(emu, ms)
                        except AssertionError as e:
                            failures.append(f"{board} {mode}: {e}")
                            continue
                        row["points"] += 1
                        row["interrupted"] += r["interrupted"]
                        row["extra_resets"] += r["boots"] - 1
                        print(f"\r{board} {mode}: {k + 1}/{args.points}", end="", file=sys.stderr, flush=True)
                finally:
                    emu.stop()
                row["seconds"] = round(time.monotonic() - t0, 1)
                print(file=sys.stderr)
                rows.append(row)
                print(json.dumps(row), flush=True)
    result = {"machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
              "date": time.strftime("%Y-%m-%d"), "rows": rows, "failures": failures}
    for f in failures:
        print("FAILED: " + f, file=sys.stderr)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
