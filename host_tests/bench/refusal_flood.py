"""Benchmark and report: what a flood of refused commands costs the meter's flash (issue 6, docs/relay-and-credit.md).

Anyone on the open port can send commands the meter refuses (unsigned relay operations here), each an event 408.
The event log writes refusals at most twice per burst of 30 s; this measures it on an emulated board at 1x:
flash operations (programs and erases, `ctl status` flash_ops) for one lone refusal, for a flood of N over one SMP
session, for the same device time idle, and after the burst's end; and what the ring shows of the flood.

    python -m host_tests.bench.refusal_flood [--board B] [--count N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from host_tests.emu import Emulator
from ota_tool import supply
from ota_tool.errors import DeviceRefused
from ota_tool.link import MeterLink
from ota_tool.supply_groups import RelayWrite

HOLD_S = 30  # firmware/app/events.py HOLD_MS


def _device_s(emu: Emulator) -> float:
    return emu.status()["device"]["us"] / 1e6


def _ops(emu: Emulator) -> int:
    return emu.status()["device"]["flash_ops"]


async def _refuse(port: str, n: int) -> int:
    refused = 0
    async with MeterLink(port, timeout=5) as link:
        for _ in range(n):
            try:
                await link.request(RelayWrite(action="disconnect", envelope=None), "relay")
            except DeviceRefused:
                refused += 1
    return refused


async def _events(port: str) -> list[dict]:
    async with MeterLink(port, timeout=5) as link:
        return await supply.events(link)


def run(board: str, count: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        emu = Emulator(Path(tmp) / "meter", board=board)
        try:
            emu.wait_boots(1)
            time.sleep(2)
            # idle: the metering loop's own writes over a stretch of device time
            o0, d0 = _ops(emu), _device_s(emu)
            time.sleep(10)
            idle_ops, idle_s = _ops(emu) - o0, _device_s(emu) - d0
            # one refusal alone: one write of the event ring
            o0 = _ops(emu)
            asyncio.run(_refuse(emu.console, 1))
            lone = _ops(emu) - o0
            time.sleep(HOLD_S + 2)  # its burst ends (and gives its reserved numbers back)
            # the flood: one SMP session, as fast as the line carries it
            o0, d0, w0 = _ops(emu), _device_s(emu), time.monotonic()
            refused = asyncio.run(_refuse(emu.console, count))
            flood_ops, flood_s, wall = _ops(emu) - o0, _device_s(emu) - d0, time.monotonic() - w0
            o0 = _ops(emu)
            time.sleep(HOLD_S + 2)
            flush_ops = _ops(emu) - o0
            ring = [e for e in asyncio.run(_events(emu.console)) if e.get("code") == 408]
        finally:
            emu.stop()
    counted = sum(int(e["detail"].rsplit("+", 1)[1]) for e in ring if "+" in e.get("detail", ""))
    idle_rate = idle_ops / idle_s if idle_s > 0 else 0.0
    return {"board": board, "refusals": count, "refused": refused, "flood_device_s": round(flood_s, 1),
            "flood_wall_s": round(wall, 1), "lone_refusal_ops": lone, "flood_ops": flood_ops,
            "idle_ops_same_time": round(idle_rate * flood_s, 1), "after_burst_ops": flush_ops,
            "one_write_per_refusal_would_be": lone * count, "events_408_in_ring": len(ring),
            "counted_on_newest": counted}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", default="rpi_pico_bl0942", help="Board id.")
    ap.add_argument("--count", type=int, default=200, help="Refused commands in the flood.")
    ap.add_argument("--json", action="store_true", help="One JSON object on stdout.")
    a = ap.parse_args()
    r = run(a.board, a.count)
    if a.json:
        print(json.dumps(r))
        return
    print(f"{r['board']}: {r['refused']}/{r['refusals']} refused in {r['flood_device_s']} s of device time "
          f"({r['flood_wall_s']} s wall); flash ops: one lone refusal {r['lone_refusal_ops']}, the flood "
          f"{r['flood_ops']} (idle over the same time ≈ {r['idle_ops_same_time']}), after the burst's end "
          f"{r['after_burst_ops']}; one write per refusal would be {r['one_write_per_refusal_would_be']}; "
          f"the ring shows {r['events_408_in_ring']} events 408 and counts {r['counted_on_newest']} on the newest",
          file=sys.stdout)


if __name__ == "__main__":
    main()
