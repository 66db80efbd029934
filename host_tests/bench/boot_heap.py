"""Report (emulator): the heap an app runs on, in pieces: after an ordinary boot, after recovery mode (the button held
at a reset, then a reset out of it) and after a power cut, the free heap and the largest block it can give
(`meter-emu ctl status --largest-free`; VM bytes halved as the board's estimate), a few seconds into the app. A
MemoryError with plenty free comes from the second figure: an app start after recovery mode once failed reading a
3 KB manifest whole, an upload's check after a power cut with the network up once failed on a 1 KB buffer (both
fixed; docs/BENCHMARKS.md). With --network the meter first gets a head-end (as `bench.supply --network`).

    python -m host_tests.bench.boot_heap [--board B ...] [--network] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from host_tests.bench.supply import networked_meter
from host_tests.emu import Emulator

SETTLE_S = 5  # wall seconds into the app before sampling (its start-up's work done, its first readings taken)


def sample(emu: Emulator, n: int = 3) -> dict:
    """The smallest of n samples, a second apart, of the free heap and of the largest free block (board bytes)."""
    free, largest = [], []
    for _ in range(n):
        dev = emu.ctl("status", "--largest-free")["device"]
        free.append(dev["heap_free_board_estimate"])
        largest.append(dev["heap_largest_free_board_estimate"])
        time.sleep(1)
    return {"free": min(free), "largest_free": min(largest)}


def settle(emu: Emulator, network: bool) -> None:
    """SETTLE_S into the app; with a network, once its module has registered and its socket is open (the driver's
    start-up allocations are over)."""
    if network:
        emu.wait_status(lambda st: st["device"].get("modem", {}).get("sockets") == [0], timeout=120,
                        what="the head-end's socket")
    time.sleep(SETTLE_S)


def run(board: str, network: bool) -> dict:
    out: dict = {"board": board, "network": network}
    with networked_meter(board, network) as (emu, _):
        settle(emu, network)
        out["ordinary_boot"] = sample(emu)
        boots = emu.status()["boots"]
        emu.ctl("press", "button", "--for", "3")
        emu.ctl("reset")
        emu.wait_boots(boots + 1)
        emu.wait_status(lambda st: not st["held_s"], timeout=60, what="the button let go")  # 3 s of device time
        time.sleep(1)  # recovery mode serves SMP until it is reset
        out["recovery_mode"] = sample(emu)
        emu.ctl("reset")
        emu.wait_boots(boots + 2)
        settle(emu, network)
        out["after_recovery"] = sample(emu)
        emu.ctl("power-cut", "--off", "1")
        emu.wait_boots(boots + 3, timeout=60)
        settle(emu, network)
        out["after_power_cut"] = sample(emu)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", action="append", help="Board id (repeatable; default: esp32_devkitc and rpi_pico).")
    ap.add_argument("--network", action="store_true", help="Fit the NB-IoT module and give the meter a head-end first "
                                                           "(boards whose file names uarts.modem).")
    ap.add_argument("--json", action="store_true", help="One JSON object per board on stdout.")
    a = ap.parse_args()
    for board in a.board or ["esp32_devkitc", "rpi_pico"]:
        r = run(board, a.network)
        if a.json:
            print(json.dumps(r), flush=True)
            continue
        print(f"{board}{' (network up)' if a.network else ''}: free / largest free block, board bytes", flush=True)
        for k in ("ordinary_boot", "recovery_mode", "after_recovery", "after_power_cut"):
            print(f"  {k:16} {r[k]['free']:7,} / {r[k]['largest_free']:7,}", file=sys.stdout, flush=True)


if __name__ == "__main__":
    main()
