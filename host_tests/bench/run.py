"""Benchmarks of the emulated meter (issue 2): start to console-ready, SMP echo round trip at 115200 baud, idle heap
free per board, and the --speed max factor of an idle meter. Prints a table and writes JSON; figures go into
docs/BENCHMARKS.md with the machine and date. Usage: python -m host_tests.bench.run [--json out.json] [--rounds N]"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from smp import os_management as osm

from host_tests.emu import Emulator, SmpLink

BOARDS = ["esp32_devkitc", "rpi_pico"]


def start_to_ready(state: Path, board: str) -> tuple[float, Emulator]:
    t0 = time.monotonic()
    emu = Emulator(state, board=board)
    ready = time.monotonic() - t0
    return ready, emu


def echo_rtt(emu: Emulator, rounds: int) -> list[float]:
    link = SmpLink(emu.console)
    out = []
    try:
        link.request(osm.EchoWriteRequest(d="warm-up"), timeout=15)
        for _ in range(rounds):
            t0 = time.perf_counter()
            rsp = link.request(osm.EchoWriteRequest(d="hello"))
            out.append(time.perf_counter() - t0)
            assert rsp.r == "hello"
    finally:
        link.close()
    return out


def idle_speed_factor(emu: Emulator, wall: float = 5.0) -> float:
    emu.ctl("set", "speed=max")
    time.sleep(2.5)  # let the line go quiet so the clock is no longer held
    a = emu.ctl("time")["uptime_s"]
    t0 = time.monotonic()
    time.sleep(wall)
    b = emu.ctl("time")["uptime_s"]
    return (b - a) / (time.monotonic() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    results: dict = {"machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
                     "date": time.strftime("%Y-%m-%d"), "boards": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for board in BOARDS:
            r: dict = {}
            t0 = time.monotonic()
            cold, emu = start_to_ready(Path(tmp) / f"{board}-1", board)
            r["start_cold_s"] = round(cold, 3)
            try:
                link = SmpLink(emu.console)
                try:
                    while True:
                        try:
                            link.request(osm.EchoWriteRequest(d="up"), timeout=0.2)
                            break
                        except TimeoutError:
                            pass
                finally:
                    link.close()
                r["start_cold_to_first_smp_answer_s"] = round(time.monotonic() - t0, 3)
                rtts = echo_rtt(emu, args.rounds)
                r["echo_rtt_ms_median"] = round(statistics.median(rtts) * 1000, 2)
                r["echo_rtt_ms_p95"] = round(sorted(rtts)[int(len(rtts) * 0.95) - 1] * 1000, 2)
                time.sleep(2.5)
                st = emu.ctl("status")
                r["board_heap_bytes"] = st["device"]["heap_board_bytes"]
                r["idle_heap_free_vm"] = st["device"]["heap_free"]
                r["idle_heap_free_board_estimate"] = st["device"]["heap_free_board_estimate"]
                r["shim_heap_used_vm"] = st["shim_heap"]["used"]
                r["speed_max_factor"] = round(idle_speed_factor(emu))
            finally:
                emu.stop()
            warm, emu = start_to_ready(Path(tmp) / f"{board}-1", board)
            emu.stop()
            r["start_warm_s"] = round(warm, 3)
            results["boards"][board] = r
    print(json.dumps(results, indent=1))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
