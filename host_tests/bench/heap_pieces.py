"""Report (emulator): how the heap breaks into pieces as an app works, and what the collections that keep it whole
cost. An emulated meter boots at 1x; the free heap and its largest free block are sampled a few seconds into the app,
after some SMP work (meter reads and a signed command, which load modules and let them go again), and after a DLMS
session on the optical port (a public client reads the object list and the registers, the session ends and its code
leaves). The VM's CPU use over a quiet stretch of metering at 1x, and how fast a meter runs at `--speed max`, are the
price of the collections that keep the heap whole: the loader collects each time 1/16 of the heap has been allocated
(loader/startup.py _COLLECT_SHARE). Before that, an emulated ESP32 kept 45 KB free in pieces of at most 2 KB after
this work (board bytes), and a DLMS read failed to load its code in about 1 run of 6 (docs/BENCHMARKS.md, "Heap in
pieces").

    python -m host_tests.bench.heap_pieces [--board B ...] [--rounds N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from emulator.supervisor import CLOCK_TICKS
from host_tests.bench.boot_heap import sample
from host_tests.bench.supply import networked_meter
from host_tests.emu import Emulator, ota
from host_tests.supply_scenario import KEY, SIGNED_FOR

SETTLE_S = 5  # wall seconds into the app before the first sample
QUIET_S = 30  # wall seconds of metering alone for the CPU figure
READS_PER_ROUND = 10
MAX_S = 20  # wall seconds at --speed max for the speed figure


def smp_work(emu, rounds: int) -> None:
    """`rounds` times: READS_PER_ROUND `ota meter read`s and one signed command (the meter reader's secret)."""
    env = dict(os.environ, METER_READER="reader 2468")
    for _ in range(rounds):
        for _ in range(READS_PER_ROUND):
            p = ota("meter", "read", "--port", emu.console, "--json")
            if p.returncode != 0:
                raise RuntimeError(f"ota meter read: {p.stderr.strip()}")
        p = ota("meter", "reader-secret", "--set", "--secret-env", "METER_READER", "--port", emu.console, "--key",
                str(KEY), "--expires-in", str(SIGNED_FOR), "--json", env=env)
        if p.returncode != 0:
            raise RuntimeError(f"ota meter reader-secret: {p.stderr.strip()}")


def dlms_session(emu) -> int:
    """A public client's session: the object list, then every register's value it may read (the load profiles'
    registers are the meter reader's); the number of registers read. Waits until the port's session has ended (its
    code off the heap)."""
    from gurux_dlms.objects import GXDLMSRegister

    from host_tests.dlms_client import DlmsClient

    with DlmsClient(emu.endpoints["optical"], timeout=20) as c:
        c.connect()
        read = 0
        for o in c.objects():
            if isinstance(o, GXDLMSRegister):
                try:
                    c.read(o, 2)
                    read += 1
                except LookupError:  # read-write-denied: a load profile's register
                    pass
        c.disconnect()
    time.sleep(7)  # the port's idle time (app/dlms_port.py _IDLE_MS, 5 s) and a margin: the session's code is gone
    return read


def vm_cpu(emu, seconds: float) -> float:
    """The VM process's CPU use over `seconds` of wall time, in percent of one core."""
    pid = emu.status()["pid"]

    def cpu() -> float:  # (as the emulator's watchdog backstop reads it: emulator/supervisor.py _vm_cpu_s)
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    c0, t0 = cpu(), time.monotonic()
    time.sleep(seconds)
    return round(100 * (cpu() - c0) / (time.monotonic() - t0), 1)


def speed_at_max(board: str, seconds: float = MAX_S) -> float:
    """Device seconds the emulated meter runs per wall second at `--speed max` (metering alone): what the collections
    cost where the emulator skips no idle time, the price a board pays in CPU."""
    with tempfile.TemporaryDirectory() as tmp:
        emu = Emulator(Path(tmp) / "meter", board=board, speed="max")
        try:
            emu.wait_boots(1)
            time.sleep(SETTLE_S)
            d0, t0 = emu.ctl("time")["uptime_s"], time.monotonic()
            time.sleep(seconds)
            return round((emu.ctl("time")["uptime_s"] - d0) / (time.monotonic() - t0), 1)
        finally:
            emu.stop()


def run(board: str, rounds: int) -> dict:
    out: dict = {"board": board, "rounds": rounds, "device_s_per_wall_s_at_max": speed_at_max(board)}
    with networked_meter(board, False) as (emu, _):
        time.sleep(SETTLE_S)
        out["boot"] = sample(emu)
        out["vm_cpu_pct_metering"] = vm_cpu(emu, QUIET_S)
        smp_work(emu, rounds)
        out["after_smp_work"] = sample(emu)
        if "optical" in emu.endpoints:
            out["registers_read"] = dlms_session(emu)
            out["after_dlms_session"] = sample(emu)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", action="append", help="Board id (repeatable; default: esp32_devkitc and rpi_pico).")
    ap.add_argument("--rounds", type=int, default=3,
                    help=f"Rounds of SMP work ({READS_PER_ROUND} meter reads and a signed command each; default 3).")
    ap.add_argument("--json", action="store_true", help="One JSON object per board on stdout.")
    a = ap.parse_args()
    for board in a.board or ["esp32_devkitc", "rpi_pico"]:
        r = run(board, a.rounds)
        if a.json:
            print(json.dumps(r), flush=True)
            continue
        print(f"{board}: free / largest free block, board bytes; VM CPU {r['vm_cpu_pct_metering']} % metering alone "
              f"at 1x, {r['device_s_per_wall_s_at_max']} device s per wall s at --speed max", flush=True)
        for k in ("boot", "after_smp_work", "after_dlms_session"):
            if k in r:
                print(f"  {k:20} {r[k]['free']:7,} / {r[k]['largest_free']:7,}", file=sys.stdout, flush=True)


if __name__ == "__main__":
    main()
