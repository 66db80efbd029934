"""How reliably the README demo runs: `python -m emulator.demo` N times in a row, optionally beside CPU hogs (a busy
host: a browser, CI beside another job), reporting passes, failures with the step that failed, and durations.

Usage: python -m host_tests.bench.demo_runs [--runs 10] [--hogs 1] [--board esp32_devkitc] [--json FILE]"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOG = "while True: pass"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--hogs", type=int, default=1, help="CPU-bound processes beside the demo (0: a quiet host).")
    ap.add_argument("--board", default="esp32_devkitc")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(args.hogs)]
    runs = []
    try:
        for i in range(args.runs):
            t0 = time.monotonic()
            p = subprocess.run([sys.executable, "-m", "emulator.demo", "--board", args.board], cwd=ROOT,
                               capture_output=True, text=True, timeout=900)
            seconds = time.monotonic() - t0
            failed = next((ln for ln in (p.stdout + p.stderr).splitlines() if "demo step failed" in ln), "")
            runs.append({"run": i + 1, "ok": p.returncode == 0, "seconds": round(seconds, 1),
                         "failed": failed or (f"exit {p.returncode}" if p.returncode else "")})
            print(f"run {i + 1}: {'ok' if p.returncode == 0 else 'FAILED ' + runs[-1]['failed']} in {seconds:.1f} s",
                  flush=True)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    secs = [r["seconds"] for r in runs]
    out = {"machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
           "date": time.strftime("%Y-%m-%d"), "board": args.board, "hogs": args.hogs,
           "passed": sum(r["ok"] for r in runs), "runs": len(runs), "median_s": statistics.median(secs),
           "min_s": min(secs), "max_s": max(secs), "each": runs}
    print(json.dumps({k: v for k, v in out.items() if k != "each"}))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=1))
    sys.exit(0 if out["passed"] == out["runs"] else 1)


if __name__ == "__main__":
    main()
