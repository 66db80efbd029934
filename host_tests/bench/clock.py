"""Deterministic device time (issue 15): the same fixed run of every board on a quiet host and beside CPU hogs —
identical flash image and console transcript — with the wall time per simulated day at --speed max and where an ADC
board's time goes (the DSP per burst, measured on the VM, against the whole reading).

Usage: python -m host_tests.bench.clock [--board B ...] [--hogs N] [--adc-seconds S] [--bl0942-seconds S]
       [--json out.json]"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from host_tests.bench.metering import BOARDS, bench_dsp
from host_tests.emu import BIN

SCENARIO = {"steps": [{"at": 0, "set": {"load.current": 5.0, "load.pf": 0.8, "load.type": "inductive"}},
                      {"at": 40, "set": {"load.current": 12.0}},
                      {"at": 70, "cut": 5},
                      {"at": 100, "set": {"grid.sag": "0.7:2"}},
                      {"at": 130, "set": {"load.current": 0.5, "load.type": "capacitive"}}],
            "repeat": False}
HOG = "while True:\n    pass\n"


def fixed_run(board: str, seconds: float, hogs: int, tmp: Path, name: str) -> dict:
    plan = tmp / "plan.json"
    plan.write_text(json.dumps(SCENARIO))
    log = tmp / f"{name}.console"
    busy = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
    t0 = time.monotonic()
    try:
        p = subprocess.run([str(BIN / "meter-emu"), "run", "--board", board, "--state", str(tmp / name),
                            "--speed", "max", "--seed", "11", "--rtc", "2026-03-01T00:00:00Z", "--for", str(seconds),
                            "--scenario", str(plan), "--console-log", str(log)],
                           capture_output=True, text=True, timeout=7200)
    finally:
        wall = time.monotonic() - t0
        for h in busy:
            h.kill()
            h.wait()
    if p.returncode != 0:
        raise SystemExit(f"{board}: meter-emu failed ({p.returncode}): {p.stderr[-2000:]}")
    return {"wall_s": wall,
            "flash_sha256": hashlib.sha256((tmp / name / "flash.bin").read_bytes()).hexdigest(),
            "console_sha256": hashlib.sha256(log.read_bytes()).hexdigest()}


def steady_speed(board: str, tmp: Path, wall_s: float = 15.0) -> float:
    """Device seconds per wall second at --speed max once booted (no console traffic, no cuts)."""
    from host_tests.emu import Emulator

    emu = Emulator(tmp / "steady", board=board, speed="max")
    try:
        time.sleep(4)
        u0 = emu.ctl("time")["uptime_s"]
        t0 = time.monotonic()
        time.sleep(wall_s)
        u1 = emu.ctl("time")["uptime_s"]
        return (u1 - u0) / (time.monotonic() - t0)
    finally:
        emu.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", action="append", dest="boards")
    ap.add_argument("--hogs", type=int, default=2, help="CPU hogs beside the second run (default 2).")
    ap.add_argument("--adc-seconds", type=float, default=600.0, help="Device seconds of the ADC boards' run.")
    ap.add_argument("--bl0942-seconds", type=float, default=3600.0, help="Device seconds of the BL0942 boards' run.")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    boards = args.boards or BOARDS
    report: dict = {"machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
                    "date": time.strftime("%Y-%m-%d"), "hogs": args.hogs, "runs": []}
    dsp = {r["board"]: r for r in bench_dsp(boards)}
    for b in boards:
        bl = json.loads((Path(__file__).resolve().parents[2] / "boards" / f"{b}.json").read_text())[
            "frontend"]["type"] == "bl0942"
        seconds = args.bl0942_seconds if bl else args.adc_seconds
        with tempfile.TemporaryDirectory(prefix="bench-clock-") as tmp:
            quiet = fixed_run(b, seconds, 0, Path(tmp), "quiet")
            busy = fixed_run(b, seconds, args.hogs, Path(tmp), "busy")
            speed = steady_speed(b, Path(tmp))
        same = quiet["flash_sha256"] == busy["flash_sha256"] and quiet["console_sha256"] == busy["console_sha256"]
        row = {"board": b, "device_s": seconds, "quiet": quiet, "busy": busy, "identical": same,
               "speed_max_factor": speed, "wall_per_day_s": 86400 / speed}
        extra = ""
        if b in dsp:  # one reading per device second: its wall time, and the DSP's part of it
            row["wall_per_reading_ms"] = 1000 / speed
            row["dsp_per_burst_ms"] = dsp[b]["burst_us"] / 1000
            extra = f" ({row['wall_per_reading_ms']:.1f} ms per reading, the DSP {row['dsp_per_burst_ms']:.2f} ms)"
        report["runs"].append(row)
        print(f"clock {b:22} {seconds:.0f} device s (boot, a cut, a reboot): quiet {quiet['wall_s']:.1f} s wall, with "
              f"{args.hogs} hogs {busy['wall_s']:.1f} s; {'IDENTICAL' if same else 'DIFFERENT'} flash and console; "
              f"steady {speed:.0f}x: {row['wall_per_day_s']:.0f} s wall per simulated day{extra}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1))
    if not all(r["identical"] for r in report["runs"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
