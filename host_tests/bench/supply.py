"""Benchmark and report: prepaid days in the emulator (issue 6). Each day: 3000 of credit at 17:00 local runs out
inside the 18:00-08:00 window, no cut until 08:00, the cut within 60 s after it, then a top-up closes the relay.
Records the top-up round trip (command sent to the relay closed, as `ota meter topup` sees it), where each cut came,
and the wall time per simulated day (full speed between the scenario's steps, slower near each step).

    python -m host_tests.bench.supply [--board rpi_pico_bl0942] [--days 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from host_tests import supply_scenario as S
from host_tests.emu import Emulator


def run(board: str, days: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        emu = Emulator(Path(tmp) / "meter", board=board)
        try:
            emu.wait_boots(1)
            base = time.time() + 86400
            day = [time.strftime("%Y-%m-%d", time.gmtime(base + k * 86400)) for k in range(days + 1)]
            s = S.start_day(emu, day[0])
            t0 = time.monotonic()
            cuts = []
            for k in range(days):
                cuts.append(S.day_cycle(s, day[k], day[k + 1])["cut_after_s"])
                print(f"{board} day {k + 1}/{days}: cut {cuts[-1]} s after 08:00, top-up {s.topup_s[-1]:.3f} s",
                      flush=True)
            wall = time.monotonic() - t0
        finally:
            emu.stop()
    return {"board": board, "days": days, "wall_s_per_day": wall / days, "cut_after_s": (min(cuts), max(cuts)),
            "topup_s_median": statistics.median(s.topup_s), "topup_s_max": max(s.topup_s)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", action="append", help="Board id (repeatable; default: both BL0942 boards).")
    ap.add_argument("--days", type=int, default=30)
    a = ap.parse_args()
    for board in a.board or ["rpi_pico_bl0942", "esp32_devkitc_bl0942"]:
        r = run(board, a.days)
        print(f"{r['board']}: {r['days']} days, {r['wall_s_per_day']:.1f} s wall per day, cut {r['cut_after_s'][0]}-{r['cut_after_s'][1]} s after the window, "
              f"top-up to relay closed (SMP round trip) median {r['topup_s_median']:.3f} s, max "
              f"{r['topup_s_max']:.3f} s")


if __name__ == "__main__":
    main()
