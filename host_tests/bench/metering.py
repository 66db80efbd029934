"""Benchmarks of the metering engine (issue 5):

  dsp    the DSP's cost per burst and per sample pair inside the MicroPython VM, and its real-time factor (seconds
         of signal processed per second of CPU) at each ADC board's configured rate and burst;
  wear   register persistence on each board's littlefs geometry (CPython over littlefs-python, NOR rules): flash
         program/erase operations per save, per day at the configured interval, the most-erased block per day and
         its 15-year projection against the board's rated erase cycles;
  day    simulated time of the whole firmware at --speed max in the emulator, per board (front end), with a
         constant 5 A load: wall time per simulated day (BL0942 boards: a whole day; ADC boards: --adc-hours,
         scaled), registered energy against the emulator's true integral, register saves;
  class  the class-1 report: factory calibration, then every class-1 point of STANDARDS.md on every board, with
         the limits and whether the board claims the point (metering.accuracy).

Prints tables, writes JSON (--json); figures go into docs/BENCHMARKS.md with the machine and date.
Usage: python -m host_tests.bench.metering [--only dsp|wear|day|class ...] [--board B ...] [--adc-hours H]
       [--json out.json]"""

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

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ["esp32_devkitc", "rpi_pico", "esp32_devkitc_bl0942", "rpi_pico_bl0942"]
YEARS = 15

DSP_SCRIPT = r"""
import json, time, math
from array import array
from app import dsp, calibration
board = json.load(open(%(board)r))
fe = board["frontend"]
rate = fe["rate_hz"]; fn = board["metering"]["nominal_frequency"]
n = (fe["burst_cycles"] + 1) * rate // int(fn) + 8
d = dsp.Dsp(rate, fn, board["adc"]["bits"], n)
scale = calibration.AdcScale(board, calibration.defaults(board))
v = array("H", bytes(2 * n)); i = array("H", bytes(2 * n))
for k in range(n):
    t = k / rate
    cv = int(2048 + 1000 * math.sin(2 * math.pi * fn * t)); ci = int(2048 + 600 * math.sin(2 * math.pi * fn * t - 1.0))
    v[k] = cv << 4; i[k] = ci << 4
out = dsp.Reading()
reps = 50
t0 = time.ticks_us()
for _ in range(reps):
    d.measure(v, i, n, scale, out)
us = time.ticks_diff(time.ticks_us(), t0) / reps
print(json.dumps({"samples": n, "rate_hz": rate, "burst_us": us, "per_pair_us": us / n,
                  "realtime_factor": (n / rate) * 1e6 / us}))
"""


def bench_dsp(boards: list[str]) -> list[dict]:
    rows = []
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([str(ROOT / "firmware" / "lib"), str(ROOT / "firmware"), ".frozen"])
    exe = Path(sys.executable).with_name("micropython")
    for b in boards:
        board_file = ROOT / "boards" / f"{b}.json"
        if json.loads(board_file.read_text())["frontend"]["type"] != "adc":
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write(DSP_SCRIPT % {"board": str(board_file)})
        try:
            out = subprocess.run([str(exe), f.name], env=env, capture_output=True, text=True, check=True)
        finally:
            os.unlink(f.name)
        row = {"board": b, **json.loads(out.stdout.strip().splitlines()[-1])}
        rows.append(row)
        print(f"dsp  {b:22} {row['samples']} pairs/burst at {row['rate_hz']} Hz: {row['burst_us'] / 1000:.2f} ms "
              f"per burst, {row['per_pair_us']:.2f} µs per pair, {row['realtime_factor']:.0f}× real time")
    return rows


def bench_wear(boards: list[str], saves: int = 30000) -> list[dict]:
    from host_tests.registers_flash import Flash, energy_step, registers
    from meterkit.boards import load_board

    sys.path.insert(0, str(ROOT / "firmware"))
    from app import meter_settings

    interval = meter_settings.DEFAULTS["persist_interval_s"]
    per_day = 86400 // interval
    rows = []
    seen: set[tuple] = set()
    for b in boards:
        board = load_board(b)
        geo = (board["flash"]["block_size"], board["flash"]["block_count"])
        if geo in seen:
            continue
        seen.add(geo)
        flash = Flash(board)
        regs = registers.Registers()
        persist = registers.Persist()
        ops0 = flash.flash.ops
        erases0 = dict(flash.flash.erases)
        with flash.bound():
            for _ in range(saves):
                energy_step(regs, 1)
                persist.save(regs)
        ops = flash.flash.ops - ops0
        erased = {k: v - erases0.get(k, 0) for k, v in flash.flash.erases.items() if v - erases0.get(k, 0) > 0}
        erases = sum(erased.values())
        worst = max(erased.values()) if erased else 0
        worst_day = worst * per_day / saves
        rated = board["flash"].get("erase_cycles", 100000)
        row = {"board": b, "geometry": list(geo), "saves": saves, "ops_per_save": ops / saves,
               "erases_per_save": erases / saves, "interval_s": interval, "saves_per_day": per_day,
               "flash_ops_per_day": ops / saves * per_day, "blocks_erased": len(erased),
               "worst_block_erases_per_day": worst_day,
               "worst_block_erases_15y": worst_day * 365.25 * YEARS, "rated_erase_cycles": rated}
        rows.append(row)
        print(f"wear {b:22} {row['ops_per_save']:.2f} flash ops and {row['erases_per_save']:.3f} erases per save; "
              f"every {interval} s: {row['flash_ops_per_day']:.0f} ops/day; most-erased block "
              f"{worst_day:.1f}/day → {row['worst_block_erases_15y']:.0f} in {YEARS} years (rated {rated}) "
              f"over {len(erased)} blocks")
    return rows


def bench_day(boards: list[str], adc_hours: float = 1.0) -> list[dict]:
    from host_tests.emu import Emulator, ota

    rows = []
    for b in boards:
        bl = json.loads((ROOT / "boards" / f"{b}.json").read_text())["frontend"]["type"] == "bl0942"
        device_s = 86400 if bl else adc_hours * 3600
        with tempfile.TemporaryDirectory(prefix="bench-day-") as tmp:
            emu = Emulator(Path(tmp) / "m", board=b)
            try:
                emu.ctl("set", "grid.voltage=230", "load.current=5", "load.pf=1", "load.type=resistive")
                time.sleep(3)
                st0 = emu.ctl("status")
                up0 = emu.ctl("time")["uptime_s"]
                emu.ctl("set", "speed=max")
                time.sleep(2.5)
                t0 = time.monotonic()
                while emu.ctl("time")["uptime_s"] - up0 < device_s:
                    time.sleep(0.5)
                wall = time.monotonic() - t0
                elapsed = emu.ctl("time")["uptime_s"] - up0
                emu.ctl("set", "speed=1")
                time.sleep(1)
                st1 = emu.ctl("status")
                read = json.loads(ota("meter", "read", "--port", emu.console, "--json").stdout)
                true_wh = st1["truth"]["import_wh"] - st0["truth"]["import_wh"]
                day_wall = wall * 86400 / elapsed
                row = {"board": b, "wall_s": wall, "device_s": elapsed, "wall_per_day_s": day_wall,
                       "speed_factor": elapsed / wall, "true_import_wh": true_wh,
                       "registered_import_wh": read["obis"]["1.0.1.8.0.255"], "saves": read["saves"],
                       "flash_ops": st1.get("device", {}).get("flash_ops")}
                rows.append(row)
                print(f"day  {b:22} {elapsed / 3600:.1f} simulated h in {wall:.0f} s wall: {day_wall:.0f} s per "
                      f"simulated day ({elapsed / wall:.0f}× real time); registered {row['registered_import_wh']:.1f} "
                      f"Wh vs true {true_wh:.1f} Wh; {read['saves']} register saves; flash ops {row['flash_ops']}")
            finally:
                emu.stop()
    return rows


def bench_class(boards: list[str], seed: int | None = None) -> list[dict]:
    from host_tests import metering_check as M
    from host_tests.emu import Emulator
    from meterkit.boards import load_board

    rows = []
    for b in boards:
        board = load_board(b)
        acc = board["metering"]["accuracy"]
        with tempfile.TemporaryDirectory(prefix="bench-class-") as tmp:
            emu = Emulator(Path(tmp) / "m", board=b, seed=seed)
            try:
                M.factory_calibration(emu, board)
                emu.ctl("set", "speed=max")
                min_wh = 150.0 if board["frontend"]["type"] == "bl0942" else 10.0
                for fraction, pf in M.CLASS_POINTS:
                    pt = M.energy_point(emu, board, fraction, pf, min_wh).as_dict()
                    floor = acc["pf1_from_ib"] if pf >= 0.99 else acc["pf_low_from_ib"]
                    pt.update(board=b, claimed=fraction >= floor - 1e-9)
                    ok = pt["limit_pct"] is None or abs(pt["error_pct"]) <= pt["limit_pct"]
                    pt["within"] = ok
                    rows.append(pt)
                    print(f"class {b:22} {fraction:5} Ib PF {pf:+.1f}: {pt['error_pct']:+.3f} % (limit "
                          f"{pt['limit_pct']}, {'claimed' if pt['claimed'] else 'reported'}) "
                          f"{'ok' if ok else 'OUTSIDE'}")
            finally:
                emu.stop()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", choices=["dsp", "wear", "day", "class"])
    ap.add_argument("--adc-hours", type=float, default=1.0, help="Simulated hours for the ADC boards' day figure.")
    ap.add_argument("--board", action="append", dest="boards")
    ap.add_argument("--json", dest="json_out")
    ap.add_argument("--seed", type=int, default=None, help="Meters with this seed (meter-emu run --seed): the same "
                    "component errors on every run.")
    ap.add_argument("--hogs", type=int, default=0, help="Run this many busy-loop processes beside the benchmark "
                    "(a busy host: the figures must not change).")
    args = ap.parse_args()
    boards = args.boards or BOARDS
    hogs = [subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"]) for _ in range(args.hogs)]
    try:
        run(args, boards)
    finally:
        for h in hogs:
            h.kill()
            h.wait()


def run(args: argparse.Namespace, boards: list[str]) -> None:
    only = args.only or ["dsp", "wear", "day", "class"]
    report: dict = {"machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
                    "date": time.strftime("%Y-%m-%d"), "hogs": args.hogs, "seed": args.seed}
    if "dsp" in only:
        report["dsp"] = bench_dsp(boards)
    if "wear" in only:
        report["wear"] = bench_wear(boards)
    if "day" in only:
        report["day"] = bench_day(boards, args.adc_hours)
    if "class" in only:
        report["class"] = bench_class(boards, args.seed)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
